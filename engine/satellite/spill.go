// Spilling: a client transaction that grows past Options.SpillAfterBytes
// is moved to a temporary file under Options.SpillDir while it is
// received, so that a slow or hostile client holds at most that much of the
// engine's memory per session; refusing it instead would make 0.4.3 send it
// again forever. Only past MaxTransactionBytes is the session closed
// (countTxBytes).
//
// At its commit the transaction is read back for the merge: the sequencer
// merges a transaction as a whole into one log entry (the log contract: an
// entry is one transaction), so its ops are in memory from then until it is
// durable. At most one spilled transaction at a time is in that state,
// engine-wide (Server.spillSlot), whatever the number of sessions.

package satellite

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/electric-sql/electric-go/engine/merge"
	"github.com/electric-sql/electric-go/engine/satellite/satpb"
)

// spillPrefix names the files of spilled transactions; what is left of them
// after a crash is removed by CleanSpillDir.
const spillPrefix = "satellite-tx-"

// txSpill is the file part of a spilled transaction; the read loop owns it.
type txSpill struct {
	f    *os.File
	w    *bufio.Writer
	ops  int   // ops written to the file
	size int64 // bytes written
	buf  []byte
}

// spillSlot is the engine-wide permit to hold one spilled transaction in
// memory between its read-back and its durability.
func (s *Server) spillPermit() chan struct{} {
	s.spillOnce.Do(func() { s.spillSem = make(chan struct{}, 1) })
	return s.spillSem
}

// CleanSpillDir removes the files of spilled transactions that a crashed
// engine left in dir (their clients re-send them: none was acked). Call it
// before the server starts.
func CleanSpillDir(dir string) error {
	ents, err := os.ReadDir(dir)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("cleaning the spill directory: %w", err)
	}
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), spillPrefix) && !e.IsDir() {
			if err := os.Remove(filepath.Join(dir, e.Name())); err != nil {
				return fmt.Errorf("cleaning the spill directory: %w", err)
			}
		}
	}
	return nil
}

// holdOp adds op to the open transaction: in memory until the transaction
// holds SpillAfterBytes, then in its spill file.
func (s *session) holdOp(op merge.Op) error {
	tx := s.tx
	if tx.spill == nil && tx.bytes <= s.srv.opts.SpillAfterBytes {
		tx.ops = append(tx.ops, op)
		return nil
	}
	if tx.spill == nil {
		if err := s.startSpill(tx); err != nil {
			return err
		}
	}
	if err := tx.spill.write(op); err != nil {
		s.dropTx()
		return perr(satpb.SatErrorResp_INTERNAL, "spilling a client transaction: %w", err)
	}
	return nil
}

func (s *session) startSpill(tx *pendingTx) error {
	dir := s.srv.opts.SpillDir
	if err := os.MkdirAll(dir, 0o700); err != nil {
		s.dropTx()
		return perr(satpb.SatErrorResp_INTERNAL, "spilling a client transaction: %w", err)
	}
	f, err := os.CreateTemp(dir, spillPrefix+"*")
	if err != nil {
		s.dropTx()
		return perr(satpb.SatErrorResp_INTERNAL, "spilling a client transaction: %w", err)
	}
	sp := &txSpill{f: f, w: bufio.NewWriterSize(f, 256<<10)}
	tx.spill = sp
	s.srv.stats.txSpilled.Add(1)
	s.log.Info("large client transaction: spilling it to disk until its commit", "client", s.clientID,
		"lsn", fmt.Sprintf("%x", tx.lsn), "bytes", tx.bytes, "file", f.Name())
	for _, op := range tx.ops {
		if err := sp.write(op); err != nil {
			s.dropTx()
			return perr(satpb.SatErrorResp_INTERNAL, "spilling a client transaction: %w", err)
		}
	}
	tx.ops = nil
	return nil
}

// dropTx forgets the open transaction and removes its spill file.
func (s *session) dropTx() {
	if s.tx != nil && s.tx.spill != nil {
		s.tx.spill.remove()
	}
	s.tx = nil
}

// loadSpilled reads a spilled transaction's ops back, once the engine-wide
// permit is taken; release gives the permit back (call it once the
// transaction is durable or failed). The file is removed.
func (s *session) loadSpilled(ctx context.Context, tx *pendingTx) (release func(), err error) {
	if tx.spill == nil {
		return func() {}, nil
	}
	sp := tx.spill
	tx.spill = nil
	defer sp.remove()
	permit := s.srv.spillPermit()
	select {
	case permit <- struct{}{}:
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	release = func() { <-permit }
	ops, err := sp.readAll()
	if err != nil {
		release()
		return nil, fmt.Errorf("reading a spilled client transaction back: %w", err)
	}
	tx.ops = ops
	return release, nil
}

// The record of one op: kind byte, table, key, column count, then per
// column its name, a NULL flag byte and (not NULL) its text; strings are a
// uvarint length and the bytes. A delete's columns are its old values.
func (sp *txSpill) write(op merge.Op) error {
	b := sp.buf[:0]
	b = append(b, byte(op.Kind))
	b = appendStr(b, op.Table)
	b = appendStr(b, op.Key)
	cols := op.Columns
	if op.Kind == merge.OpDelete {
		cols = op.Old
	}
	b = binary.AppendUvarint(b, uint64(len(cols)))
	for name, v := range cols {
		b = appendStr(b, name)
		if v.Null {
			b = append(b, 1)
			continue
		}
		b = append(b, 0)
		b = appendStr(b, v.Text)
	}
	sp.buf = b
	if _, err := sp.w.Write(b); err != nil {
		return err
	}
	sp.ops++
	sp.size += int64(len(b))
	return nil
}

func appendStr(b []byte, s string) []byte {
	return append(binary.AppendUvarint(b, uint64(len(s))), s...)
}

func (sp *txSpill) readAll() ([]merge.Op, error) {
	if err := sp.w.Flush(); err != nil {
		return nil, err
	}
	if _, err := sp.f.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	r := bufio.NewReaderSize(sp.f, 256<<10)
	ops := make([]merge.Op, 0, sp.ops)
	for range sp.ops {
		op, err := readOp(r, sp.size)
		if err != nil {
			return nil, fmt.Errorf("op %d of %d: %w", len(ops)+1, sp.ops, err)
		}
		ops = append(ops, op)
	}
	return ops, nil
}

func readOp(r *bufio.Reader, limit int64) (merge.Op, error) {
	var op merge.Op
	k, err := r.ReadByte()
	if err != nil {
		return op, err
	}
	op.Kind = merge.OpKind(k)
	if op.Table, err = readStr(r, limit); err != nil {
		return op, err
	}
	if op.Key, err = readStr(r, limit); err != nil {
		return op, err
	}
	n, err := binary.ReadUvarint(r)
	if err != nil {
		return op, err
	}
	if n > MaxRelationColumns {
		return op, fmt.Errorf("%d columns", n)
	}
	cols := make(map[string]merge.Value, n)
	for range n {
		name, err := readStr(r, limit)
		if err != nil {
			return op, err
		}
		null, err := r.ReadByte()
		if err != nil {
			return op, err
		}
		if null == 1 {
			cols[name] = merge.Value{Null: true}
			continue
		}
		text, err := readStr(r, limit)
		if err != nil {
			return op, err
		}
		cols[name] = merge.Value{Text: text}
	}
	if op.Kind == merge.OpDelete {
		op.Old = cols
	} else {
		op.Columns = cols
	}
	return op, nil
}

func readStr(r *bufio.Reader, limit int64) (string, error) {
	n, err := binary.ReadUvarint(r)
	if err != nil {
		return "", err
	}
	if n > uint64(limit) {
		return "", fmt.Errorf("string of %d bytes in a %d-byte file", n, limit)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return "", err
	}
	return string(b), nil
}

func (sp *txSpill) remove() {
	_ = sp.f.Close()
	_ = os.Remove(sp.f.Name())
}

// discardSpill removes the spill file of a transaction that is not taken.
func (tx *pendingTx) discardSpill() {
	if tx.spill != nil {
		tx.spill.remove()
		tx.spill = nil
	}
}
