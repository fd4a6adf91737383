package withhold

import (
	"context"
	"errors"
	"testing"

	"github.com/electric-sql/electric-go/engine/merge"
	"github.com/electric-sql/electric-go/engine/txlog"
)

// fakeSub is a subscriber at offset from that refuses every row whose v is
// "bad" and is sent every change of an entry not written by "b".
type fakeSub struct {
	from    uint64
	applied [][]txlog.RowChange
	skipped []uint64
}

func (f *fakeSub) AppliedOffset(context.Context) (uint64, error) { return f.from, nil }
func (f *fakeSub) BeginReplay(context.Context) (Replayer, error) { return f, nil }
func (f *fakeSub) Close(context.Context)                         {}
func (f *fakeSub) Skip(_ context.Context, lsn uint64) error {
	f.skipped = append(f.skipped, lsn)
	return nil
}
func (f *fakeSub) Sent(e *txlog.Entry) []txlog.RowChange {
	if e.Origin == "b" {
		return nil
	}
	return e.Changes
}
func (f *fakeSub) Apply(_ context.Context, rows []txlog.RowChange) ([]error, error) {
	f.applied = append(f.applied, rows)
	errs := make([]error, len(rows))
	for i, r := range rows {
		if r.Row["v"].Text == "bad" {
			errs[i] = errors.New("bad value (SQLSTATE 23514)")
		}
	}
	return errs, nil
}

func change(key, v string) txlog.RowChange {
	return txlog.RowChange{Table: "public.t", Key: key, Row: map[string]merge.Value{"id": {Text: key}, "v": {Text: v}}}
}

func newTestDoctor(t *testing.T, sub *fakeSub, entries []*txlog.Entry) *Doctor {
	t.Helper()
	set, err := Open(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return NewDoctor(Options{
		Set: set,
		Entry: func(off uint64) (*txlog.Entry, error) {
			if off < 1 || off > uint64(len(entries)) {
				return nil, errors.New("no entry")
			}
			return entries[off-1], nil
		},
		Head:       func() uint64 { return uint64(len(entries)) },
		Subscriber: func(string) (Subscriber, bool) { return sub, true },
		Current:    func(string, string) (txlog.RowChange, bool, error) { return txlog.RowChange{}, false, nil },
	})
}

// Diagnose reads past entries the subscriber is not sent, withholds every
// failing row of the entries after its position (not the rows around
// them), and does not replay again what is withheld.
func TestDiagnose(t *testing.T) {
	entries := []*txlog.Entry{
		{Offset: 1, Origin: "a", Changes: []txlog.RowChange{change("1", "ok")}},
		{Offset: 2, Origin: "b", Changes: []txlog.RowChange{change("2", "bad")}}, // not sent to it
		{Offset: 3, Origin: "a", Changes: []txlog.RowChange{change("3", "ok"), change("4", "bad"), change("5", "ok")}},
		{Offset: 4, Origin: "a", Changes: []txlog.RowChange{change("6", "bad")}},
	}
	sub := &fakeSub{from: 1}
	d := newTestDoctor(t, sub, entries)
	recs, err := d.Diagnose(context.Background(), "b")
	if err != nil {
		t.Fatal(err)
	}
	if len(recs) != 2 || recs[0].Key != "4" || recs[0].Offset != 3 || recs[1].Key != "6" || recs[1].Offset != 4 {
		t.Fatalf("withheld %+v, want 4@3 and 6@4", recs)
	}
	if len(sub.applied) != 2 || len(sub.applied[0]) != 3 {
		t.Fatalf("replayed %v, want entries 3 and 4 whole", sub.applied)
	}
	// Withheld: a second diagnosis finds nothing to blame.
	sub.applied = nil
	if _, err := d.Diagnose(context.Background(), "b"); !errors.Is(err, ErrUnattributed) {
		t.Fatalf("second diagnosis: %v, want ErrUnattributed", err)
	}
	if len(sub.applied) != 1 || len(sub.applied[0]) != 2 {
		t.Fatalf("second replay %v, want entry 3 without its withheld row", sub.applied)
	}
	// Skip takes the first entry sent to it after its position, recorded.
	r, err := d.Skip(context.Background(), "b", "test")
	if err != nil || r.Offset != 3 || !r.Skipped || len(sub.skipped) != 1 || sub.skipped[0] != txlog.LSN(3)-1 {
		t.Fatalf("skip: %+v, %v, lsns %v", r, err, sub.skipped)
	}
	if got := d.Set().List("b"); len(got) != 3 || d.Set().Count("b") != 2 {
		t.Fatalf("records after the skip: %+v", got)
	}
}
