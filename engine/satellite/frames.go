// Frames on the WebSocket: the read loop, bounded and decoded at the edge,
// and the one writer goroutine behind a bounded queue (back-pressure).

package satellite

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/electric-sql/electric-go/engine/satellite/satpb"
	"github.com/gorilla/websocket"
	"google.golang.org/protobuf/proto"
)

// outFrame is one queued write.
type outFrame struct {
	data  []byte
	next  []byte // a second frame sent in the same TCP segment
	final bool   // close the socket after writing it
}

func (s *session) writer() {
	defer close(s.writerDone)
	done := s.ctx.Done()
	var giveUp <-chan time.Time
	for {
		select {
		case f := <-s.out:
			_ = s.conn.SetWriteDeadline(time.Now().Add(s.srv.opts.WriteTimeout))
			if err := s.writeFrame(f); err != nil {
				s.log.Debug("satellite write failed", "err", err)
				s.hardClose()
				return
			}
			if f.final {
				_ = s.conn.WriteControl(websocket.CloseMessage,
					websocket.FormatCloseMessage(websocket.ClosePolicyViolation, ""), time.Now().Add(time.Second))
				s.hardClose()
				return
			}
		case <-done:
			if !s.failed.Load() {
				s.hardClose()
				return
			}
			// The error frame follows the frames already queued.
			done = nil
			giveUp = time.After(s.srv.opts.WriteTimeout)
		case <-giveUp:
			s.hardClose()
			return
		}
	}
}

func (s *session) writeFrame(f outFrame) error {
	if f.next == nil {
		return s.conn.WriteMessage(websocket.BinaryMessage, f.data)
	}
	// The 0.4.3 client must handle both frames in one socket read: between
	// a SatInStopReplicationReq and the next SatInStartReplicationReq a
	// local write would crash it.
	nc := s.conn.NetConn()
	cork(nc, true)
	defer cork(nc, false)
	if err := s.conn.WriteMessage(websocket.BinaryMessage, f.data); err != nil {
		return err
	}
	return s.conn.WriteMessage(websocket.BinaryMessage, f.next)
}

var errSessionClosed = errors.New("session closed")

// send queues a frame, waiting while the queue is full (back-pressure).
func (s *session) send(ctx context.Context, m proto.Message) error {
	frame, err := satpb.Encode(m)
	if err != nil {
		return err
	}
	return s.sendFrame(ctx, frame)
}

func (s *session) sendFrame(ctx context.Context, frame []byte) error {
	return s.queue(ctx, outFrame{data: frame})
}

func (s *session) queue(ctx context.Context, f outFrame) error {
	select {
	case s.out <- f:
		return nil
	case <-ctx.Done():
		return fmt.Errorf("sending frame: %w", ctx.Err())
	case <-s.writerDone:
		return errSessionClosed
	}
}

func (s *session) readLoop() error {
	max := s.srv.opts.MaxFrameBytes
	for {
		mt, r, err := s.conn.NextReader()
		if err != nil {
			return fmt.Errorf("reading frame: %w", err)
		}
		if mt != websocket.BinaryMessage {
			return perr(satpb.SatErrorResp_INTERNAL, "text frames are not part of the protocol")
		}
		data, err := io.ReadAll(io.LimitReader(r, int64(max)+1))
		if err != nil {
			return fmt.Errorf("reading frame: %w", err)
		}
		if len(data) > max {
			return perr(satpb.SatErrorResp_INVALID_REQUEST, "frame larger than %d bytes", max)
		}
		msg, err := satpb.Decode(data)
		if err != nil {
			return perr(satpb.SatErrorResp_INTERNAL, "%w", err)
		}
		if err := s.handle(msg); err != nil {
			return err
		}
		s.lastRecv.Store(time.Now().UnixNano())
	}
}
