package pgsource

import (
	"fmt"
	"sort"
	"strings"
	"testing"

	"github.com/electric-sql/electric-go/engine/merge"
	"github.com/electric-sql/electric-go/internal/pgtest"
	"github.com/electric-sql/electric-go/internal/testkit"
)

// snapRows renders the snapshot ops of table the sink holds, as
// "key|col=value,..." sorted, and fails on a key read twice.
func snapRows(t *testing.T, sink *recSink, table string) []string {
	t.Helper()
	seen := map[string]bool{}
	var out []string
	for _, it := range sink.snaps() {
		for _, op := range it.Tx.Ops {
			if op.Kind != merge.OpSnapshot || op.Table != table {
				continue
			}
			if seen[op.Key] {
				t.Fatalf("%s key %q read twice", table, op.Key)
			}
			seen[op.Key] = true
			out = append(out, op.Key+"|"+fmtCols(op.Columns))
		}
	}
	sort.Strings(out)
	return out
}

func fmtCols(cols map[string]merge.Value) string {
	var parts []string
	for c, v := range cols {
		s := v.Text
		if v.Null {
			s = "<NULL>"
		}
		parts = append(parts, c+"="+s)
	}
	sort.Strings(parts)
	return strings.Join(parts, ",")
}

// pgRows renders the same from Postgres: key is the query's first column.
func pgRows(t *testing.T, pg *pgtest.Cluster, sql string, cols ...string) []string {
	t.Helper()
	var out []string
	for _, r := range pg.Rows(t, sql) {
		vals := strings.Split(r, "|")
		m := map[string]merge.Value{}
		for i, c := range cols {
			if vals[i+1] == "<NULL>" {
				m[c] = null
			} else {
				m[c] = val(vals[i+1])
			}
		}
		out = append(out, vals[0]+"|"+fmtCols(m))
	}
	sort.Strings(out)
	return out
}

func sameRows(t *testing.T, what string, got, want []string) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d rows read, want %d", what, len(got), len(want))
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("%s: row %d = %q, want %q", what, i, got[i], want[i])
		}
	}
}

func TestSnapshotReadsExistingRows(t *testing.T) {
	pg := pgtest.Start(t)
	pg.Exec(`
CREATE TABLE pre (id uuid PRIMARY KEY, v text);
INSERT INTO pre SELECT gen_random_uuid(), 'row ' || g FROM generate_series(1, 1000) g;
CREATE TABLE odd (a int, b text, v text, w int GENERATED ALWAYS AS (a * 2) STORED, PRIMARY KEY (b, a));
INSERT INTO odd (a, b, v) VALUES (1, 'x', E'tab\there'), (2, 'x', E'new\nline'), (1, 'y', E'back\\slash'), (3, 'z', NULL), (4, 'it''s', '\N');
CREATE TABLE nopk (x int, v text);
INSERT INTO nopk VALUES (1, 'one'), (2, 'two');`)
	sink := newRecSink()
	r := startSource(t, pg, "a", sink, sink)

	sameRows(t, "pre", snapRows(t, sink, "public.pre"), pgRows(t, pg, "SELECT id::text, id::text, v FROM pre", "id", "v"))
	odd := pgRows(t, pg, `SELECT b || '~' || a, a, b, v FROM odd`, "a", "b", "v")
	for i := range odd {
		odd[i] = strings.Replace(odd[i], "~", "\x00\x01", 1) // the key encoding's separator
	}
	sort.Strings(odd)
	sameRows(t, "odd", snapRows(t, sink, "public.odd"), odd)
	if got := snapRows(t, sink, "public.nopk"); len(got) != 0 {
		t.Fatalf("table without a primary key read: %v", got)
	}
	st := r.src.Status()
	if !st.Snapshot.Done || st.Snapshot.Active || st.Snapshot.Rows != 1005 || st.State != StateReady {
		t.Fatalf("status after the snapshot: state %s, %+v", st.State, st.Snapshot)
	}
	prog, err := decodeSnapProgress(sink.positions[SnapshotSource("a")])
	if err != nil {
		t.Fatal(err)
	}
	if len(prog.done) != 2 || prog.table != 0 || prog.rows != 1005 {
		t.Fatalf("stored progress: %+v", prog)
	}

	// A table created with rows (no key yet: ignored), then given a key;
	// the keyless table given one too.
	pg.Exec(`CREATE TABLE later AS SELECT g AS id, 'v' || g AS v FROM generate_series(1, 50) g`)
	pg.Exec(`ALTER TABLE later ADD PRIMARY KEY (id)`)
	pg.Exec(`ALTER TABLE nopk ADD PRIMARY KEY (x)`)
	testkit.Eventually(t, "later and nopk read", func() bool {
		return len(snapRows(t, sink, "public.later")) == 50 && len(snapRows(t, sink, "public.nopk")) == 2
	})
	sameRows(t, "later", snapRows(t, sink, "public.later"), pgRows(t, pg, "SELECT id, id, v FROM later", "id", "v"))
	testkit.Eventually(t, "ready again", func() bool { return r.src.Ready() })
	r.stop(t)

	// A restart reads nothing again.
	before := len(sink.snaps())
	r = startSource(t, pg, "a", sink, sink)
	testkit.Eventually(t, "a snapshot pass", func() bool { return r.src.Status().Snapshot.Done })
	for _, it := range sink.snaps()[before:] {
		for _, op := range it.Tx.Ops {
			if op.Kind == merge.OpSnapshot {
				t.Fatalf("restart read %s %q again", op.Table, op.Key)
			}
		}
	}
	r.stop(t)
}

// A state whose stored progress stops in the middle of a table (the engine
// was killed after that chunk became durable) resumes after its last key.
func TestSnapshotResumesAfterStoredKey(t *testing.T) {
	pg := pgtest.Start(t)
	pg.Exec(`CREATE TABLE big (id int PRIMARY KEY, v text);
INSERT INTO big SELECT g, 'v' || g FROM generate_series(1, 3000) g;
CREATE TABLE small (id int PRIMARY KEY);
INSERT INTO small SELECT generate_series(1, 10);`)
	var oid uint32
	fmt.Sscan(pg.Rows(t, "SELECT 'big'::regclass::oid")[0], &oid)
	var smallOID uint32
	fmt.Sscan(pg.Rows(t, "SELECT 'small'::regclass::oid")[0], &smallOID)
	sink := newRecSink()
	prog := snapProgress{done: map[uint32]string{smallOID: "public.small"}, table: oid, name: "public.big",
		lastKey: []merge.Value{val("1700")}, rows: 1710}
	sink.positions[SnapshotSource("a")] = prog.encode()
	r := startSource(t, pg, "a", sink, sink)
	got := snapRows(t, sink, "public.big")
	sameRows(t, "big after 1700", got, pgRows(t, pg, "SELECT id, id, v FROM big WHERE id > 1700", "id", "v"))
	if small := snapRows(t, sink, "public.small"); len(small) != 0 {
		t.Fatalf("a table read in full was read again: %d rows", len(small))
	}
	if st := r.src.Status().Snapshot; st.Rows != 3010 {
		t.Fatalf("rows = %d, want 3010 (1710 stored + 1300)", st.Rows)
	}
}

func TestSnapProgressCodec(t *testing.T) {
	p := snapProgress{done: map[uint32]string{7: "public.a", 9: "s.b"}, table: 12, name: "public.c",
		lastKey: []merge.Value{val("x\x00y"), null}, rows: 99}
	got, err := decodeSnapProgress(p.encode())
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != fmt.Sprint(p) {
		t.Fatalf("round trip: %+v, want %+v", got, p)
	}
	enc := p.encode()
	for i := 1; i < len(enc); i++ {
		if _, err := decodeSnapProgress(enc[:i]); err == nil {
			t.Fatalf("truncated to %d bytes: no error", i)
		}
	}
	if _, err := decodeSnapProgress([]byte{2}); err == nil {
		t.Fatal("unknown version: no error")
	}
}
