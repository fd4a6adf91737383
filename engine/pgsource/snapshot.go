package pgsource

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/electric-sql/electric-go/engine/merge"
	"github.com/electric-sql/electric-go/engine/schema"
)

// The snapshot reader: rows a replicated table holds when it becomes
// replicated (a connector's first setup, a table created or given a primary
// key later, a slot made by a version that had no snapshot) are not in the
// slot's WAL. It reads them beside the stream, after streaming has started:
// every change committed after a chunk's read reaches the log through the
// stream too, and the merge rule of merge.OpSnapshot makes sure a snapshot
// row never overwrites what the log knows (see engine/merge/snapshot.go).
//
// A table is read in key order in chunks, each a
// COPY (SELECT ... WHERE key > last ORDER BY key LIMIT n) TO STDOUT on its
// own (so in its own short transaction: no snapshot is held across chunks,
// vacuum is not blocked), merged as one transaction of the connector's
// origin. Each chunk stores the progress (SnapshotSource) in the same
// commit, so a crash resumes after the last durable chunk.

// Snapshot chunk bounds.
const (
	snapMaxRows    = 4096    // rows per chunk at most (one sequencer group)
	snapMinRows    = 16      // the adaptive chunk never shrinks below
	snapChunkBytes = 4 << 20 // target text bytes per chunk
	snapHardBytes  = 64 << 20
	snapInFlight   = 4 // chunks handed to the sequencer and not yet durable
)

// SnapshotStatus is the snapshot reader's progress.
type SnapshotStatus struct {
	// Active: existing rows are being read; the connector is not ready.
	Active bool
	// Done: a pass found every replicated table read.
	Done        bool
	Table       string // the table being read
	Tables      int    // tables read in full during the current (or last) pass
	TablesTotal int    // tables the current (or last) pass had to read
	Rows        uint64 // rows read in all (persisted across restarts)
	Started     time.Time
	Elapsed     time.Duration // of the current (or last) pass
}

// snapTable is one table to read.
type snapTable struct {
	oid    uint32
	name   string   // qualified, as the engine names tables
	quoted string   // for SQL
	cols   []string // streamed columns (not generated), attnum order
	types  []string // format_type of each
	keyIdx []int    // index in cols of each key column, key order
	// partitioned: its rows live in its partitions (read through it);
	// an ordinary table is read ONLY, its inheritance children being
	// tables of their own.
	partitioned bool
}

var errChunkFull = errors.New("chunk bytes bound reached")

// snapshotLoop reads what needs reading, then checks again every
// StatsInterval for tables that became replicated. It returns when ctx ends
// or on an error (the caller reconnects).
func (s *Source) snapshotLoop(ctx context.Context) error {
	conn, err := s.connectSnapshot(ctx)
	if err != nil {
		return fmt.Errorf("snapshot: %w", err)
	}
	defer func() { conn.Close(context.Background()) }()
	raw, err := s.opts.Store.Position(SnapshotSource(s.opts.Name))
	if err != nil {
		return fmt.Errorf("snapshot: reading the stored progress: %w", err)
	}
	prog, err := decodeSnapProgress(raw)
	if err != nil {
		return err
	}
	r := &snapReader{s: s, conn: conn, prog: prog}
	defer r.drain()
	t := time.NewTicker(s.opts.StatsInterval)
	defer t.Stop()
	for {
		if err := r.pass(ctx); err != nil {
			if ctx.Err() != nil {
				return nil
			}
			return fmt.Errorf("snapshot: %w", err)
		}
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
	}
}

// connectSnapshot opens the connection chunks are read on. A chunk must walk
// the primary key index from the last key: with a large LIMIT the planner
// may prefer to scan and sort the whole table for every chunk, which makes
// the read quadratic. Sorts and full scans are priced out so it does not.
func (s *Source) connectSnapshot(ctx context.Context) (*pgx.Conn, error) {
	conn, err := s.connectSide(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := conn.Exec(ctx, "SET enable_seqscan = off; SET enable_bitmapscan = off; SET enable_sort = off"); err != nil {
		conn.Close(context.Background())
		return nil, fmt.Errorf("configuring the snapshot connection: %w", err)
	}
	return conn, nil
}

type snapReader struct {
	s       *Source
	conn    *pgx.Conn
	prog    snapProgress
	pending []chan error // Done results of chunks in flight, oldest first
	rows    int          // adaptive chunk size
}

// pass reads every replicated table not read yet.
func (r *snapReader) pass(ctx context.Context) error {
	todo, err := r.todo(ctx)
	if err != nil {
		return err
	}
	if len(todo) == 0 {
		r.s.snapFinished()
		return nil
	}
	r.s.snapBegin(len(todo), r.prog.rows)
	start := time.Now()
	for i := range todo {
		if err := r.readTable(ctx, &todo[i]); err != nil {
			return err
		}
	}
	if err := r.drain(); err != nil {
		return err
	}
	r.s.log.Info("snapshot: existing rows read", "tables", len(todo), "rows_total", r.prog.rows, "elapsed", time.Since(start).Round(time.Millisecond))
	r.s.snapFinished()
	return nil
}

// todo lists the tables of the publication with a primary key whose rows
// were not read yet, and forgets done tables that no longer exist.
func (r *snapReader) todo(ctx context.Context) ([]snapTable, error) {
	rows, err := r.conn.Query(ctx, `
SELECT c.oid, n.nspname, c.relname, c.relkind = 'p'
FROM pg_catalog.pg_publication_rel pr
JOIN pg_catalog.pg_publication p ON p.oid = pr.prpubid
JOIN pg_catalog.pg_class c ON c.oid = pr.prrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE p.pubname = $1 AND EXISTS (SELECT 1 FROM pg_catalog.pg_index i WHERE i.indrelid = c.oid AND i.indisprimary)
ORDER BY n.nspname, c.relname`, r.s.opts.Publication)
	if err != nil {
		return nil, fmt.Errorf("listing the publication's tables: %w", err)
	}
	var out []snapTable
	exists := map[uint32]bool{}
	for rows.Next() {
		var t snapTable
		var nsp, rel string
		if err := rows.Scan(&t.oid, &nsp, &rel, &t.partitioned); err != nil {
			rows.Close()
			return nil, fmt.Errorf("listing the publication's tables: %w", err)
		}
		t.name = nsp + "." + rel
		t.quoted = schema.QuoteIdent(nsp) + "." + schema.QuoteIdent(rel)
		exists[t.oid] = true
		if !r.prog.isDone(t.oid, t.name) {
			out = append(out, t)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("listing the publication's tables: %w", err)
	}
	for oid := range r.prog.done {
		if !exists[oid] {
			delete(r.prog.done, oid) // stored with the next chunk
		}
	}
	// The table being read comes first: resume it.
	for i := range out {
		if out[i].oid == r.prog.table && out[i].name == r.prog.name && i > 0 {
			out[0], out[i] = out[i], out[0]
		}
	}
	for i := range out {
		if err := r.columns(ctx, &out[i]); err != nil {
			return nil, err
		}
	}
	return out, nil
}

func (r *snapReader) columns(ctx context.Context, t *snapTable) error {
	rows, err := r.conn.Query(ctx, `
SELECT a.attname, pg_catalog.format_type(a.atttypid, a.atttypmod),
       coalesce(pg_catalog.array_position(i.indkey::int2[], a.attnum) + 1, 0)
FROM pg_catalog.pg_attribute a
LEFT JOIN pg_catalog.pg_index i ON i.indrelid = a.attrelid AND i.indisprimary
WHERE a.attrelid = $1 AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
ORDER BY a.attnum`, t.oid)
	if err != nil {
		return fmt.Errorf("reading the columns of %s: %w", t.name, err)
	}
	type kc struct{ pos, idx int }
	var keys []kc
	for rows.Next() {
		var name, typ string
		var pos int
		if err := rows.Scan(&name, &typ, &pos); err != nil {
			rows.Close()
			return fmt.Errorf("reading the columns of %s: %w", t.name, err)
		}
		if pos > 0 {
			keys = append(keys, kc{pos, len(t.cols)})
		}
		t.cols = append(t.cols, name)
		t.types = append(t.types, typ)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("reading the columns of %s: %w", t.name, err)
	}
	if len(keys) == 0 {
		return fmt.Errorf("reading the columns of %s: no primary key column (dropped meanwhile?)", t.name)
	}
	for p := 1; len(t.keyIdx) < len(keys); p++ {
		found := false
		for _, k := range keys {
			if k.pos == p {
				t.keyIdx = append(t.keyIdx, k.idx)
				found = true
			}
		}
		if !found {
			return fmt.Errorf("reading the columns of %s: primary key column %d missing", t.name, p)
		}
	}
	return nil
}

// copySQL is the chunk query after key last (nil: from the start).
func (t *snapTable) copySQL(last []merge.Value, n int) string {
	var b strings.Builder
	b.WriteString("COPY (SELECT ")
	for i, c := range t.cols {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(schema.QuoteIdent(c))
	}
	b.WriteString(" FROM ")
	if !t.partitioned {
		b.WriteString("ONLY ")
	}
	b.WriteString(t.quoted)
	keyList := func(f func(i, col int)) {
		b.WriteString("(")
		for i, col := range t.keyIdx {
			if i > 0 {
				b.WriteString(", ")
			}
			f(i, col)
		}
		b.WriteString(")")
	}
	if last != nil {
		b.WriteString(" WHERE ")
		keyList(func(_, col int) { b.WriteString(schema.QuoteIdent(t.cols[col])) })
		b.WriteString(" > ")
		keyList(func(i, col int) {
			b.WriteString(schema.QuoteLiteral(last[i].Text))
			b.WriteString("::")
			b.WriteString(t.types[col])
		})
	}
	b.WriteString(" ORDER BY ")
	for i, col := range t.keyIdx {
		if i > 0 {
			b.WriteString(", ")
		}
		b.WriteString(schema.QuoteIdent(t.cols[col]))
	}
	b.WriteString(" LIMIT ")
	b.WriteString(strconv.Itoa(n))
	b.WriteString(") TO STDOUT")
	return b.String()
}

// readTable reads one table chunk by chunk, from the stored last key when it
// is the table the progress names.
func (r *snapReader) readTable(ctx context.Context, t *snapTable) error {
	var last []merge.Value
	if r.prog.table == t.oid && r.prog.name == t.name && len(r.prog.lastKey) == len(t.keyIdx) {
		last = r.prog.lastKey
		r.s.log.Info("snapshot: resuming table", "table", t.name, "after_key", merge.EncodeKey(last))
	} else {
		r.s.log.Info("snapshot: reading existing rows", "table", t.name)
	}
	r.s.snapTable(t.name)
	if r.rows == 0 {
		r.rows = snapMaxRows / 4
	}
	read := 0
	for {
		n := r.rows
		ops, lastKey, size, err := r.chunk(ctx, t, last, n)
		if err != nil {
			return err
		}
		full := len(ops) == n || errors.Is(size.err, errChunkFull)
		r.prog.table, r.prog.name, r.prog.lastKey = t.oid, t.name, lastKey
		r.prog.rows += uint64(len(ops))
		if !full {
			r.prog.done[t.oid] = t.name
			r.prog.table, r.prog.name, r.prog.lastKey = 0, "", nil
		}
		if err := r.hand(ctx, ops); err != nil {
			return err
		}
		read += len(ops)
		r.s.snapRows(r.prog.rows)
		if !full {
			break
		}
		last = lastKey
		r.adapt(len(ops), size.bytes)
	}
	r.s.snapTableDone()
	r.s.log.Info("snapshot: table read", "table", t.name, "rows", read)
	return nil
}

// adapt sizes the next chunk towards snapChunkBytes.
func (r *snapReader) adapt(rows, bytes int) {
	if rows == 0 || bytes == 0 {
		return
	}
	per := bytes / rows
	r.rows = min(snapMaxRows, max(snapMinRows, snapChunkBytes/max(1, per)))
}

type chunkSize struct {
	bytes int
	err   error // errChunkFull when the hard bound cut it
}

// chunk runs one COPY and returns its rows as snapshot ops.
func (r *snapReader) chunk(ctx context.Context, t *snapTable, last []merge.Value, n int) ([]merge.Op, []merge.Value, chunkSize, error) {
	w := &copyRows{t: t, ops: make([]merge.Op, 0, n)}
	_, err := r.conn.PgConn().CopyTo(ctx, w, t.copySQL(last, n))
	size := chunkSize{bytes: w.bytes}
	switch {
	case errors.Is(err, errChunkFull) && len(w.ops) > 0:
		// pgconn closed the connection: the rows parsed so far are whole
		// and in key order; go on after them on a new connection.
		size.err = errChunkFull
		conn, cerr := r.s.connectSnapshot(ctx)
		if cerr != nil {
			return nil, nil, size, fmt.Errorf("reconnecting after a large chunk of %s: %w", t.name, cerr)
		}
		r.conn.Close(context.Background())
		r.conn = conn
	case err != nil:
		return nil, nil, size, fmt.Errorf("reading existing rows of %s: %w", t.name, err)
	}
	if w.err != nil {
		return nil, nil, size, fmt.Errorf("reading existing rows of %s: %w", t.name, w.err)
	}
	return w.ops, w.lastKey, size, nil
}

// copyRows turns COPY text rows into snapshot ops as they arrive.
type copyRows struct {
	t       *snapTable
	ops     []merge.Op
	lastKey []merge.Value
	partial []byte
	vals    []merge.Value
	bytes   int
	err     error
}

func (c *copyRows) Write(p []byte) (int, error) {
	c.bytes += len(p)
	data := p
	if len(c.partial) > 0 {
		c.partial = append(c.partial, p...)
		data = c.partial
	}
	for {
		i := bytes.IndexByte(data, '\n')
		if i < 0 {
			break
		}
		if err := c.row(data[:i]); err != nil {
			c.err = err
			return 0, err
		}
		data = data[i+1:]
	}
	c.partial = append(c.partial[:0], data...)
	if c.bytes > snapHardBytes && len(c.partial) == 0 {
		return 0, errChunkFull
	}
	return len(p), nil
}

func (c *copyRows) row(line []byte) error {
	var err error
	c.vals, err = parseCopyRow(line, len(c.t.cols), c.vals[:0])
	if err != nil {
		return err
	}
	cols := make(map[string]merge.Value, len(c.vals))
	for i, v := range c.vals {
		cols[c.t.cols[i]] = v
	}
	key := make([]merge.Value, len(c.t.keyIdx))
	for i, k := range c.t.keyIdx {
		key[i] = c.vals[k]
		if key[i].Null {
			return fmt.Errorf("%w: NULL primary key value in %s", errCopyFormat, c.t.name)
		}
	}
	c.lastKey = key
	c.ops = append(c.ops, merge.Op{Kind: merge.OpSnapshot, Table: c.t.name, Key: merge.EncodeKey(key), Columns: cols})
	return nil
}

// hand gives a chunk (or, with no ops, only the progress) to the sequencer,
// keeping at most snapInFlight chunks not yet durable.
func (r *snapReader) hand(ctx context.Context, ops []merge.Op) error {
	for len(r.pending) >= snapInFlight {
		if err := r.waitOldest(); err != nil {
			return err
		}
	}
	done := make(chan error, 1)
	it := Item{
		Source:   SnapshotSource(r.s.opts.Name),
		Position: r.prog.encode(),
		Tx: merge.Tx{
			Origin:     r.s.opts.Name,
			CommitTime: uint64(max(0, time.Now().UnixMicro())),
			Ops:        ops,
		},
		Done: func(_ uint64, err error) { done <- err },
	}
	if err := r.s.opts.Sink.Enqueue(ctx, it); err != nil {
		return fmt.Errorf("handing existing rows to the log: %w", err)
	}
	r.pending = append(r.pending, done)
	return nil
}

func (r *snapReader) waitOldest() error {
	err := <-r.pending[0]
	r.pending = r.pending[1:]
	if err != nil {
		err = fmt.Errorf("appending existing rows to the log: %w", err)
		r.s.setFatal(err)
	}
	return err
}

// drain waits for every chunk in flight (each is done, durable or failed,
// once the sequencer has it).
func (r *snapReader) drain() error {
	var first error
	for len(r.pending) > 0 {
		if err := r.waitOldest(); err != nil && first == nil {
			first = err
		}
	}
	return first
}

// Snapshot status, under s.mu.

func (s *Source) snapBegin(tables int, rows uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.snap = SnapshotStatus{Active: true, TablesTotal: tables, Rows: rows, Started: time.Now()}
	// The first pass of this process makes the connector not ready from
	// the start (see runOnce); a later one (a table that became
	// replicated) only once it reads rows.
	if s.state == StateReady && !s.snapEver {
		s.state = StateSnapshot
	}
}

func (s *Source) snapTable(name string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.snap.Table = name
}

func (s *Source) snapRows(rows uint64) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if rows > s.snap.Rows && s.state == StateReady {
		s.state = StateSnapshot
	}
	s.snap.Rows = rows
	s.snap.Elapsed = time.Since(s.snap.Started)
	if time.Since(s.snapLogged) >= 10*time.Second {
		s.snapLogged = time.Now()
		s.log.Info("snapshot: progress", "rows", rows, "table", s.snap.Table,
			"tables", fmt.Sprintf("%d/%d", s.snap.Tables, s.snap.TablesTotal), "elapsed", s.snap.Elapsed.Round(time.Second))
	}
}

func (s *Source) snapTableDone() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.snap.Tables++
	s.snap.Table = ""
	s.snap.Elapsed = time.Since(s.snap.Started)
}

// snapFinished: a pass found nothing left to read.
func (s *Source) snapFinished() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.snap.Active {
		s.snap.Elapsed = time.Since(s.snap.Started)
	}
	s.snap.Active, s.snap.Done, s.snap.Table = false, true, ""
	s.snapEver = true
	if s.state == StateSnapshot {
		s.state = StateReady
	}
}
