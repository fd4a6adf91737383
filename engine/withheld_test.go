package engine_test

import (
	"context"
	"io"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/electric-sql/electric-go/engine"
	"github.com/electric-sql/electric-go/engine/status"
	"github.com/electric-sql/electric-go/engine/withhold"
)

// withheldSQL are the tables of TestSubscriberFailureWithholdsOnlyItsRows,
// the same on both Postgres but for w_type's v (text on postgres_1).
const withheldSQL = `
CREATE TABLE public.w_check (id int PRIMARY KEY, n int);
CREATE TABLE public.w_uniq (id int PRIMARY KEY, email text);
CREATE TABLE public.w_notnull (id int PRIMARY KEY, v text);
` + initSQL

// A row one subscriber cannot apply (a CHECK, a unique index, NOT NULL or a
// type only its Postgres has) is withheld from it alone: the other rows of
// its transaction and every later transaction reach it, the row is recorded
// with its error, the connector is ready again, and once the cause is gone
// a retry delivers the row; a later valid write of a withheld row arrives.
func TestSubscriberFailureWithholdsOnlyItsRows(t *testing.T) {
	c := newCluster(t, 2, withheldSQL)
	a, b := "postgres_1", "postgres_2"
	c.exec(a, "CREATE TABLE public.w_type (id int PRIMARY KEY, v text)")
	c.exec(b, "CREATE TABLE public.w_type (id int PRIMARY KEY, v int)")
	c.exec(b, "ALTER TABLE public.w_check ADD CONSTRAINT small CHECK (n < 100)")
	c.exec(b, "CREATE UNIQUE INDEX w_uniq_email ON public.w_uniq (email)")
	c.exec(b, "ALTER TABLE public.w_notnull ALTER COLUMN v SET NOT NULL")
	c.start(t.TempDir())

	// One transaction per cause: a row b refuses between rows it takes.
	c.exec(a, "INSERT INTO public.w_check VALUES (1, 1), (2, 500), (3, 3)")
	c.exec(a, "INSERT INTO public.w_uniq VALUES (1, 'dup'), (2, 'dup'), (3, 'ok')")
	c.exec(a, "INSERT INTO public.w_notnull VALUES (1, 'x'), (2, NULL), (3, 'z')")
	c.exec(a, "INSERT INTO public.w_type VALUES (1, '12'), (2, 'abc'), (3, '34')")
	c.exec(a, "INSERT INTO public.entries (id, content) VALUES ('00000000-0000-0000-0000-0000000000e1', 'later')")

	c.waitRows(b, "SELECT id, n FROM public.w_check ORDER BY id", "1|1", "3|3")
	c.waitRows(b, "SELECT id, email FROM public.w_uniq ORDER BY id", "1|dup", "3|ok")
	c.waitRows(b, "SELECT id, v FROM public.w_notnull ORDER BY id", "1|x", "3|z")
	c.waitRows(b, "SELECT id, v FROM public.w_type ORDER BY id", "1|12", "3|34")
	c.waitRows(b, "SELECT content FROM public.entries", "later")
	c.waitRows(a, "SELECT id, n FROM public.w_check ORDER BY id", "1|1", "2|500", "3|3")

	want := map[string]string{
		"public.w_check 2":   "violates check constraint",
		"public.w_uniq 2":    "duplicate key value",
		"public.w_notnull 2": "null value in column",
		"public.w_type 2":    "invalid input syntax for type integer",
	}
	checkWithheld(t, c.eng.Withheld(b), want)
	if got := c.eng.Withheld(a); len(got) != 0 {
		t.Errorf("rows withheld from %s, which applies everything: %+v", a, got)
	}
	// The subscriber confirms past the withheld rows: ready again.
	c.waitReady()
	cl, err := status.NewClient(c.statusURL(), nil)
	if err != nil {
		t.Fatal(err)
	}
	conns, err := cl.Connectors(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	for _, sc := range conns {
		wantN := map[string]int{a: 0, b: 4}[sc.Name]
		if sc.Subscriber.WithheldRows != wantN {
			t.Errorf("%s: withheld_rows %d in /api/connectors, want %d", sc.Name, sc.Subscriber.WithheldRows, wantN)
		}
	}
	resp, err := http.Get(c.statusURL() + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	metrics, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if !strings.Contains(string(metrics), `electric_connector_withheld_rows{connector="postgres_2"} 4`) {
		t.Errorf("/metrics lacks the withheld rows of postgres_2")
	}

	// A later valid write of a withheld row replaces the withheld version.
	c.exec(a, "UPDATE public.w_check SET n = 50 WHERE id = 2")
	c.waitRows(b, "SELECT id, n FROM public.w_check ORDER BY id", "1|1", "2|50", "3|3")
	delete(want, "public.w_check 2")
	checkWithheld(t, c.eng.Withheld(b), want)

	// A retry while the causes remain sends nothing and keeps the records.
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	res, err := c.eng.RetryWithheld(ctx, b)
	if err != nil || res.Resent != 0 || res.Still != 3 {
		t.Fatalf("retry with the causes in place: %+v, %v; want 3 still failing", res, err)
	}

	// The causes gone, a retry delivers the rows.
	c.exec(b, "DROP INDEX public.w_uniq_email")
	c.exec(b, "ALTER TABLE public.w_notnull ALTER COLUMN v DROP NOT NULL")
	c.exec(b, "ALTER TABLE public.w_type ALTER COLUMN v TYPE text")
	c.eventually(30*time.Second, func() bool {
		res, err = c.eng.RetryWithheld(ctx, b)
		return err == nil && res.Resent == 3
	}, func() string { return "retry after removing the causes did not resend 3 rows" })
	c.waitRows(b, "SELECT id, email FROM public.w_uniq ORDER BY id", "1|dup", "2|dup", "3|ok")
	c.waitRows(b, "SELECT id, coalesce(v, 'NULL') FROM public.w_notnull ORDER BY id", "1|x", "2|NULL", "3|z")
	c.waitRows(b, "SELECT id, v FROM public.w_type ORDER BY id", "1|12", "2|abc", "3|34")
	c.eventually(60*time.Second, func() bool { return len(c.eng.Withheld(b)) == 0 },
		func() string { return "records left after the rows were delivered" })
	for _, tbl := range []string{"public.w_check", "public.w_uniq", "public.w_notnull", "public.w_type", "public.entries"} {
		c.assertSame(tbl)
	}
	c.waitReady()
}

// checkWithheld compares the records with want (table and key to a part of
// the error).
func checkWithheld(t *testing.T, got []withhold.Record, want map[string]string) {
	t.Helper()
	seen := map[string]bool{}
	var lines []string
	for _, r := range got {
		id := r.Table + " " + r.KeyText
		lines = append(lines, id+": "+r.Error)
		seen[id] = true
		frag, ok := want[id]
		switch {
		case !ok:
			t.Errorf("unexpected withheld row %s: %s", id, r.Error)
		case !strings.Contains(r.Error, frag) || r.Offset == 0 || r.Time.IsZero():
			t.Errorf("withheld row %s: %+v, want an error with %q", id, r, frag)
		}
	}
	for id := range want {
		if !seen[id] {
			sort.Strings(lines)
			t.Errorf("row %s not withheld; records:\n%s", id, strings.Join(lines, "\n"))
		}
	}
}

// A backfill (a table postgres_2 gains) that holds a row postgres_2
// refuses is not held back whole: only that row is withheld, the others
// arrive, and a retry delivers it once the cause is gone.
func TestBackfillWithholdsOnlyItsRows(t *testing.T) {
	c := newCluster(t, 2, initSQL)
	a, b := "postgres_1", "postgres_2"
	c.start(t.TempDir())
	c.exec(a, "INSERT INTO public.entries (id, content) VALUES ('00000000-0000-0000-0000-0000000000e1', 'first')")
	c.waitRows(b, "SELECT content FROM public.entries", "first")
	c.exec(a, "CREATE TABLE public.w_bf (id int PRIMARY KEY, n int)")
	c.exec(a, "INSERT INTO public.w_bf VALUES (1, 1), (2, 500), (3, 3)")
	c.waitLogHead(2)
	c.exec(b, "CREATE TABLE public.w_bf (id int PRIMARY KEY, n int CONSTRAINT small CHECK (n < 100))")
	c.waitRows(b, "SELECT id, n FROM public.w_bf ORDER BY id", "1|1", "3|3")
	c.exec(a, "INSERT INTO public.entries (id, content) VALUES ('00000000-0000-0000-0000-0000000000e2', 'later')")
	c.waitRows(b, "SELECT content FROM public.entries ORDER BY content", "first", "later")
	checkWithheld(t, c.eng.Withheld(b), map[string]string{"public.w_bf 2": "violates check constraint"})
	c.waitReady()

	c.exec(b, "ALTER TABLE public.w_bf DROP CONSTRAINT small")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if res, err := c.eng.RetryWithheld(ctx, b); err != nil || res.Resent != 1 {
		t.Fatalf("retry: %+v, %v; want 1 resent", res, err)
	}
	c.waitRows(b, "SELECT id, n FROM public.w_bf ORDER BY id", "1|1", "2|500", "3|3")
	c.eventually(60*time.Second, func() bool { return len(c.eng.Withheld(b)) == 0 },
		func() string { return "the record is left after the row was delivered" })
}

// A failure no row can be blamed for (here a trigger that fails only in
// the apply worker, so a replay applies every row) ends, after a run of
// failures, in the subscriber skipping that one entry: recorded, and every
// later entry arrives.
func TestUnattributedFailureIsSkippedAndRecorded(t *testing.T) {
	c := newCluster(t, 2, initSQL)
	a, b := "postgres_1", "postgres_2"
	c.exec(b, `CREATE FUNCTION public.boom() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
  IF pg_catalog.pg_replication_origin_session_is_setup() AND NEW.content = 'boom' THEN
    RAISE EXCEPTION 'only in the apply worker';
  END IF;
  RETURN NEW;
END $$;
CREATE TRIGGER a_boom BEFORE INSERT ON public.entries FOR EACH ROW EXECUTE FUNCTION public.boom();
ALTER TABLE public.entries ENABLE ALWAYS TRIGGER a_boom`)
	c.start(t.TempDir())
	engine.SetSkipPolicyForTest(c.eng, 2, 0)
	c.exec(a, "INSERT INTO public.entries (id, content) VALUES ('00000000-0000-0000-0000-0000000000e1', 'boom')")
	c.exec(a, "INSERT INTO public.entries (id, content) VALUES ('00000000-0000-0000-0000-0000000000e2', 'later')")
	c.waitRows(b, "SELECT content FROM public.entries", "later")
	recs := c.eng.Withheld(b)
	if len(recs) != 1 || !recs[0].Skipped || recs[0].Offset != 1 || !strings.Contains(recs[0].Error, "SKIP") {
		t.Fatalf("records after the skip: %+v, want the skip of entry 1", recs)
	}
	c.waitReady()
}
