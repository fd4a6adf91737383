package merge

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// history is a random run of the system: transactions in the order the
// engine first received them (the log order), each with how many leading
// transactions of it its origin had applied when it committed, and their
// effective timestamps in that order.
type history struct {
	txs     []Tx
	seen    []int
	effs    []uint64
	entries []bool // made an entry in the log order
}

// genHistory simulates origins that each apply some prefix of the log (a
// random, growing one) and commit transactions on top of it with skewed,
// possibly backwards clocks. A transaction's context is the prefix its
// origin had applied, exactly what the engine derives for a source, so
// contexts only name writes that happened before.
func genHistory(rng *rand.Rand, truncates bool) (history, error) {
	all := []string{"a", "b", "c", "satellite:d"}
	origins := all[:2+rng.IntN(len(all)-1)]
	skew := map[string]int64{}
	for _, o := range origins {
		skew[o] = rng.Int64N(101) - 50
	}
	applied := map[string]int{} // origin → length of the log prefix it applied
	n := 3 + rng.IntN(6)
	var h history
	wall := int64(1000)
	for i := range n {
		o := origins[rng.IntN(len(origins))]
		applied[o] += rng.IntN(i - applied[o] + 1)
		wall += rng.Int64N(20)
		tx := Tx{Origin: o, CommitTime: uint64(wall + skew[o])}
		for range 1 + rng.IntN(3) {
			tx.Ops = append(tx.Ops, genOp(rng, truncates))
		}
		h.txs = append(h.txs, tx)
		h.seen = append(h.seen, applied[o])
	}
	_, effs, entries, err := replayLog(h.txs, h.seen, nil, seq(n), nil)
	h.effs, h.entries = effs, entries
	return h, err
}

func genOp(rng *rand.Rand, truncates bool) Op {
	table := "t"
	if rng.IntN(5) == 0 {
		table = "u"
	}
	k := rng.IntN(100)
	var kind OpKind
	switch {
	case k < 30:
		kind = OpInsert
	case k < 65:
		kind = OpUpdate
	case k < 90 || !truncates:
		kind = OpDelete
	default:
		return Op{Kind: OpTruncate, Table: table}
	}
	op := Op{Kind: kind, Table: table, Key: []string{"1", "2", "3"}[rng.IntN(3)]}
	value := func() Value {
		switch rng.IntN(5) {
		case 0:
			return null
		case 1:
			return txt("")
		}
		return txt(fmt.Sprintf("v%d", rng.IntN(1000)))
	}
	cols := []string{"x", "y", "z"}
	if kind != OpDelete {
		op.Columns = map[string]Value{}
		for _, c := range cols {
			if kind == OpInsert || rng.IntN(2) == 0 {
				op.Columns[c] = value()
			}
		}
	}
	if kind != OpInsert && rng.IntN(3) == 0 {
		op.Old = map[string]Value{}
		// w is never written, only known from old images.
		for _, c := range append(cols, "w") {
			if rng.IntN(2) == 0 {
				op.Old[c] = value()
			}
		}
	}
	return op
}

// String prints the history in the testdata input format, so a failing
// case can be pasted into a testdata file.
func (h history) String() string {
	var b strings.Builder
	count := map[string]int{}
	labels := make([]string, len(h.txs))
	for i, tx := range h.txs {
		count[tx.Origin]++
		labels[i] = fmt.Sprintf("%s#%d", tx.Origin, count[tx.Origin])
		fmt.Fprintf(&b, "tx %s time=%d", tx.Origin, tx.CommitTime)
		if h.seen[i] > 0 {
			b.WriteString(" ctx=" + labels[h.seen[i]-1])
		}
		fmt.Fprintf(&b, "   # eff %d\n", h.effs[i])
		for _, op := range tx.Ops {
			b.WriteString(opText(op) + "\n")
		}
	}
	return b.String()
}

func opText(op Op) string {
	name := map[OpKind]string{OpInsert: "insert", OpUpdate: "update", OpDelete: "delete", OpTruncate: "truncate"}[op.Kind]
	if op.Kind == OpTruncate {
		return "truncate " + op.Table
	}
	parts := []string{name, op.Table, showKey(op.Key)}
	for _, m := range []struct {
		prefix string
		cols   map[string]Value
	}{{"", op.Columns}, {"old.", op.Old}} {
		var cols []string
		for c, v := range m.cols {
			cols = append(cols, m.prefix+c+"="+showValue(v))
		}
		slices.Sort(cols)
		parts = append(parts, cols...)
	}
	return strings.Join(parts, " ")
}

// TestConvergence is the promise of DESIGN.md "Conflict semantics": the same
// transactions give the same rows whatever the order the engine receives
// them in. Each history is replayed in random orders that keep each
// origin's transactions in sequence and each transaction after what it had
// seen; those in which every context is a prefix of the log before it (the
// orders a log can have) must give the same effective timestamps and rows,
// tags and their origins and effs included (their offsets differ).
func TestConvergence(t *testing.T) {
	histories, orders := 600, 30
	if testing.Short() {
		histories = 100
	}
	checked := 0
	for _, truncates := range []bool{false, true} {
		for seed := range uint64(histories) {
			rng := rand.New(rand.NewPCG(seed, map[bool]uint64{false: 1, true: 2}[truncates]))
			h, err := genHistory(rng, truncates)
			if err != nil {
				t.Fatalf("seed %d: generate: %v", seed, err)
			}
			ref, _, _, err := replayLog(h.txs, h.seen, nil, seq(len(h.txs)), nil)
			if err != nil {
				t.Fatalf("seed %d: %v", seed, err)
			}
			want := rowsString(ref, false)
			before := precedence(h.txs, h.seen)
			for range orders {
				order := randomOrder(rng, before)
				got, effs, _, err := replayLog(h.txs, h.seen, nil, order, h.entries)
				if errors.Is(err, errInadmissible) {
					continue
				}
				if err != nil {
					t.Fatalf("seed %d (truncates %v), order %v: %v\nhistory:\n%s", seed, truncates, order, err, h)
				}
				if !slices.Equal(effs, h.effs) {
					t.Fatalf("seed %d (truncates %v): order %v gives effs %v, log order %v\nhistory:\n%s", seed, truncates, order, effs, h.effs, h)
				}
				if g := rowsString(got, false); g != want {
					t.Fatalf("seed %d (truncates %v): order %v gives\n%s\nlog order gives\n%s\nhistory:\n%s", seed, truncates, order, g, want, h)
				}
				if !slices.Equal(order, seq(len(order))) {
					checked++
				}
			}
		}
	}
	// Guard the test itself: it must have replayed many other orders.
	if checked < histories*orders/10 {
		t.Fatalf("only %d orders other than the log's own were checked", checked)
	}
	t.Logf("%d orders other than the log's own checked", checked)
}

// TestConvergenceDetectsDivergence guards the test itself: an order-
// dependent merge (first write wins) must be caught by the same check.
func TestConvergenceDetectsDivergence(t *testing.T) {
	txs := []Tx{
		{Origin: "a", CommitTime: 100, Ops: []Op{{Kind: OpInsert, Table: "t", Key: "1", Columns: map[string]Value{"x": txt("a")}}}},
		{Origin: "b", CommitTime: 200, Ops: []Op{{Kind: OpInsert, Table: "t", Key: "1", Columns: map[string]Value{"x": txt("b")}}}},
	}
	seen := []int{0, 0}
	firstWins := func(order []int) string {
		s := memStore{}
		for n, i := range order {
			if s[rowID{"t", "1"}] == nil {
				tx := txs[i]
				tx.Offset = uint64(n + 1)
				res, err := Apply(s, 0, tx)
				if err != nil {
					t.Fatal(err)
				}
				s.commit(res)
			}
		}
		return rowsString(s, false)
	}
	orders := arrivalOrders(txs, seen, 10)
	if len(orders) != 2 {
		t.Fatalf("orders = %v, want both", orders)
	}
	for _, o := range orders {
		if _, _, _, err := replayLog(txs, seen, nil, o, nil); err != nil {
			t.Fatalf("order %v: %v", o, err)
		}
	}
	if firstWins(orders[0]) == firstWins(orders[1]) {
		t.Fatal("the check does not tell apart an order-dependent merge")
	}
}

// TestInadmissibleOrders guards the order filter: a transaction that had
// seen only a's write cannot come after b's concurrent one in a log where b
// precedes a.
func TestInadmissibleOrders(t *testing.T) {
	ins := func(o string) Tx {
		return Tx{Origin: o, CommitTime: 100, Ops: []Op{{Kind: OpInsert, Table: "t", Key: o, Columns: map[string]Value{"x": txt(o)}}}}
	}
	txs := []Tx{ins("a"), ins("b"), ins("c")}
	seen := []int{0, 0, 1} // c had seen a only
	for _, tc := range []struct {
		order []int
		ok    bool
	}{{[]int{0, 1, 2}, true}, {[]int{0, 2, 1}, true}, {[]int{1, 0, 2}, false}} {
		_, _, _, err := replayLog(txs, seen, nil, tc.order, nil)
		if (err == nil) != tc.ok || (err != nil && !errors.Is(err, errInadmissible)) {
			t.Errorf("order %v: %v", tc.order, err)
		}
	}
}
