// The subscriber's side of copy-both: its standby status updates, read by a
// goroutine of their own, and the keepalives and reply timeout they answer.

package publisher

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/electric-sql/electric-go/engine/txlog"
)

// ctlKind is what the receive goroutine reports.
type ctlKind int

const (
	ctlReply ctlKind = iota // keepalive requested by the subscriber
	ctlDone                 // CopyDone: back to query mode
	ctlEnd                  // Terminate or connection closed
)

type ctlMsg struct {
	kind ctlKind
	err  error
	// fatalCode and fatalMsg, when set with ctlEnd, are the FATAL error the
	// stream sends before it ends: the receiver never writes, or the error
	// could land between (or before) the stream's CopyData (fuzzed).
	fatalCode, fatalMsg string
}

// tick sends the periodic keepalive, asking for a reply, after checking
// that the subscriber answered recently.
func (st *stream) tick() error {
	timeout := st.se.srv.opts.ReplyTimeout
	if since := time.Since(time.Unix(0, st.lastReply.Load())); since > timeout {
		st.se.fatal("08006", fmt.Sprintf("electric: terminating replication of %s: no status update from the subscriber for %s", st.se.connector, since.Round(time.Second)))
		return fmt.Errorf("replication timeout: no status update for %s", since.Round(time.Second))
	}
	return st.keepalive(true)
}

func (st *stream) keepalive(reply bool) error {
	st.appendKeepalive(reply)
	return st.flush()
}

// control handles a report of the receive goroutine. done means the stream
// is over (err nil: back to query mode).
func (st *stream) control(m ctlMsg) (done bool, err error) {
	se := st.se
	switch m.kind {
	case ctlReply:
		return false, st.keepalive(false)
	case ctlDone:
		<-st.recvDone
		se.send(&pgproto3.CopyDone{})
		se.send(&pgproto3.CommandComplete{CommandTag: []byte("COPY 0")})
		se.send(&pgproto3.CommandComplete{CommandTag: []byte("START_REPLICATION")})
		se.send(&pgproto3.ReadyForQuery{TxStatus: 'I'})
		se.log.Info("replication stopped by the subscriber", "sent_offset", st.sent)
		return true, se.flush()
	default:
		if m.fatalCode != "" {
			se.fatal(m.fatalCode, m.fatalMsg)
		}
		if m.err != nil {
			return true, m.err
		}
		return true, errClosed
	}
}

// receive reads the subscriber's messages in copy-both mode until CopyDone,
// Terminate or an error. It never writes: writes are the stream's.
func (st *stream) receive(ctx context.Context, ctl chan<- ctlMsg) {
	se := st.se
	report := func(m ctlMsg) {
		select {
		case ctl <- m:
		case <-ctx.Done():
		}
	}
	fatal := func(code, msg string) {
		report(ctlMsg{kind: ctlEnd, fatalCode: code, fatalMsg: msg})
	}
	for {
		msg, err := se.be.Receive()
		if err != nil {
			report(ctlMsg{kind: ctlEnd, err: fmt.Errorf("reading from subscriber: %w", err)})
			return
		}
		switch m := msg.(type) {
		case *pgproto3.CopyData:
			if len(m.Data) == 0 {
				fatal("08P01", "electric: empty CopyData message")
				return
			}
			switch m.Data[0] {
			case 'r':
				ss, ok := parseStandbyStatus(m.Data)
				if !ok {
					fatal("08P01", fmt.Sprintf("electric: invalid standby status update (%d bytes)", len(m.Data)))
					return
				}
				now := time.Now()
				st.lastReply.Store(now.UnixNano())
				if uint64(ss.Flush) > st.flushedLSN.Load() {
					st.flushedLSN.Store(uint64(ss.Flush))
				}
				se.srv.updateProgress(se.connector, func(p *ConnectorStatus) {
					p.FlushedOffset = txlog.OffsetOfLSN(ss.Flush)
					p.AppliedOffset = txlog.OffsetOfLSN(ss.Apply)
					p.LastReply = now
				})
				if ss.Reply {
					report(ctlMsg{kind: ctlReply})
				}
			case 'h':
				// Hot standby feedback concerns physical replication only.
			default:
				fatal("08P01", fmt.Sprintf("electric: unexpected CopyData message type %q", m.Data[0]))
				return
			}
		case *pgproto3.CopyDone:
			report(ctlMsg{kind: ctlDone})
			return
		case *pgproto3.CopyFail:
			report(ctlMsg{kind: ctlEnd, err: fmt.Errorf("subscriber aborted replication: %s", m.Message)})
			return
		case *pgproto3.Terminate:
			report(ctlMsg{kind: ctlEnd})
			return
		default:
			fatal("08P01", fmt.Sprintf("electric: unexpected message %T during replication", msg))
			return
		}
	}
}
