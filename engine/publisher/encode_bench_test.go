package publisher

import (
	"fmt"
	"io"
	"log/slog"
	"net"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/electric-sql/electric-go/engine/merge"
	"github.com/electric-sql/electric-go/engine/schema"
	"github.com/electric-sql/electric-go/engine/txlog"
)

// BenchmarkEncodeEntry measures the publisher's own cost per row: encoding a
// 1,000-row entry to pgoutput and writing it to a discarding connection.
// The baseline in the same run is copying the same bytes of row text, so the
// ratio shows the protocol overhead.
func BenchmarkEncodeEntry(b *testing.B) {
	const rows = 1000
	tbl := schema.Table{Schema: "public", Name: "items", OID: 1, PrimaryKey: []string{"id"},
		Columns: []schema.Column{{Name: "id", TypeOID: 23}, {Name: "v", TypeOID: 25}, {Name: "n", TypeOID: 23}}}
	v := &View{Ready: true, Refreshed: true, Tables: []schema.Table{tbl}, Subscribed: map[string]bool{"public.items": true}}
	srv := &Server{opts: Options{Connectors: func(string) (*View, bool) { return v, true }}}
	se := &session{srv: srv, nc: discardConn{}, be: pgproto3.NewBackend(nil, io.Discard), log: slog.New(slog.DiscardHandler), connector: "a"}
	st := &stream{se: se}
	st.refreshView()
	e := &txlog.Entry{CommitTime: 1}
	var textBytes int
	for i := 0; i < rows; i++ {
		r := map[string]merge.Value{"id": {Text: fmt.Sprint(i)}, "v": {Text: strings.Repeat("x", 32)}, "n": {Text: "7"}}
		for _, c := range r {
			textBytes += len(c.Text)
		}
		e.Changes = append(e.Changes, txlog.RowChange{Table: "public.items", Key: fmt.Sprint(i), Row: r})
	}
	b.Run("pgoutput", func(b *testing.B) {
		b.ReportAllocs()
		for i := 0; i < b.N; i++ {
			e.Offset = uint64(i + 1)
			st.encode(e)
			if err := st.flush(); err != nil {
				b.Fatal(err)
			}
		}
		b.ReportMetric(float64(rows*b.N)/b.Elapsed().Seconds(), "rows/s")
	})
	b.Run("baseline-copy", func(b *testing.B) {
		buf := make([]byte, 0, textBytes)
		for i := 0; i < b.N; i++ {
			buf = buf[:0]
			for _, ch := range e.Changes {
				for _, c := range tbl.Columns {
					buf = append(buf, ch.Row[c.Name].Text...)
				}
			}
		}
		b.ReportMetric(float64(rows*b.N)/b.Elapsed().Seconds(), "rows/s")
	})
}

// discardConn is a net.Conn that discards writes.
type discardConn struct{ net.Conn }

func (discardConn) Write(b []byte) (int, error) { return len(b), nil }
