package sequencer

import (
	"sync"
	"testing"
)

func TestOnConflictsAfterCommit(t *testing.T) {
	l := openLog(t, t.TempDir())
	var mu sync.Mutex
	var got []Conflict
	s := start(t, l, Options{OnConflicts: func(cs []Conflict) {
		// Called once the group is durable: the entry is readable.
		for _, c := range cs {
			if _, err := l.Entry(c.Offset); err != nil {
				t.Errorf("conflict reported before its entry %d is durable: %v", c.Offset, err)
			}
		}
		mu.Lock()
		got = append(got, cs...)
		mu.Unlock()
	}})
	submit(t, s, item("a", 2000, insert("1", "name", "a")))
	off := submit(t, s, item("b", 1000, insert("1", "name", "b"))) // concurrent, older: loses
	submit(t, s, Item{Source: "a", Tx: item("a", 3000, update("1", "name", "later")).Tx, ContextOffset: off})
	mu.Lock()
	defer mu.Unlock()
	if len(got) != 1 {
		t.Fatalf("conflicts = %+v, want the one of offset %d", got, off)
	}
	c := got[0]
	if c.Offset != off || c.Column != "name" || c.Winner.Origin != "a" || c.Winner.Value.Text != "a" ||
		c.Loser.Origin != "b" || c.Loser.Value.Text != "b" || c.Loser.Eff != 1000 {
		t.Errorf("conflict = %+v", c)
	}
}
