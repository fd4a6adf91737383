package merge

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"strings"
	"testing"
)

// history is a random run of the system: transactions in the order the
// engine first received them (the log order), each with the context its
// origin had when it committed, and their effective timestamps.
type history struct {
	txs  []Tx
	effs []uint64
}

// genHistory simulates origins that each apply some prefix of the log (a
// random, growing one) and commit transactions on top of it with skewed,
// possibly backwards clocks. A transaction's context is the log clock of the
// prefix its origin had applied, exactly what the engine derives for a
// source, so contexts only name writes that happened before.
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
	s := memStore{}
	last := map[string]uint64{}
	wall := int64(1000)
	for i := range n {
		o := origins[rng.IntN(len(origins))]
		applied[o] += rng.IntN(i - applied[o] + 1)
		ctx := Clock{}
		for j := range applied[o] {
			ctx[h.txs[j].Origin] = max(ctx[h.txs[j].Origin], h.effs[j])
		}
		wall += rng.Int64N(20)
		tx := Tx{Origin: o, CommitTime: uint64(wall + skew[o]), Context: ctx}
		for range 1 + rng.IntN(3) {
			tx.Ops = append(tx.Ops, genOp(rng, truncates))
		}
		res, err := Apply(s, last[o], tx)
		if err != nil {
			return h, err
		}
		s.commit(res)
		last[o] = res.Eff
		h.txs = append(h.txs, tx)
		h.effs = append(h.effs, res.Eff)
	}
	return h, nil
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
	for i, tx := range h.txs {
		fmt.Fprintf(&b, "tx %s time=%d", tx.Origin, tx.CommitTime)
		if len(tx.Context) > 0 {
			var parts []string
			for o, e := range tx.Context {
				parts = append(parts, fmt.Sprintf("%s:%d", o, e))
			}
			slices.Sort(parts)
			b.WriteString(" ctx=" + strings.Join(parts, ","))
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
// them in. Effective timestamps are computed once, when the history is made;
// each replay recomputes them from its own order (originLast is the
// origin's latest eff seen so far in that order) and must find the same.
//
// Histories with TRUNCATE are replayed in causal orders only (what one
// engine can receive: a source's context comes from the log); the rest in
// every order that keeps each origin's transactions in sequence, which also
// checks that a write arriving after a delete that had seen it stays dead.
func TestConvergence(t *testing.T) {
	histories, orders := 600, 30
	if testing.Short() {
		histories = 100
	}
	for _, truncates := range []bool{false, true} {
		for seed := range uint64(histories) {
			rng := rand.New(rand.NewPCG(seed, map[bool]uint64{false: 1, true: 2}[truncates]))
			h, err := genHistory(rng, truncates)
			if err != nil {
				t.Fatalf("seed %d: generate: %v", seed, err)
			}
			ref, err := replay(h.txs, seq(len(h.txs)))
			if err != nil {
				t.Fatalf("seed %d: %v", seed, err)
			}
			want := rowsString(ref, !truncates)
			before := precedence(h.txs, h.effs, truncates)
			for range orders {
				order := randomOrder(rng, before)
				got, err := replayChecked(h, order)
				if err != nil {
					t.Fatalf("seed %d (truncates %v), order %v: %v\nhistory:\n%s", seed, truncates, order, err, h)
				}
				if g := rowsString(got, !truncates); g != want {
					t.Fatalf("seed %d (truncates %v): order %v gives\n%s\nlog order gives\n%s\nhistory:\n%s", seed, truncates, order, g, want, h)
				}
			}
		}
	}
}

// replayChecked is replay that also checks each transaction gets the
// effective timestamp it got in the log order.
func replayChecked(h history, order []int) (memStore, error) {
	s := memStore{}
	last := map[string]uint64{}
	for _, i := range order {
		tx := h.txs[i]
		res, err := Apply(s, last[tx.Origin], tx)
		if err != nil {
			return nil, err
		}
		if res.Eff != h.effs[i] {
			return nil, fmt.Errorf("tx %d gets eff %d, %d in the log order", i, res.Eff, h.effs[i])
		}
		if err := checkChanges(res); err != nil {
			return nil, fmt.Errorf("tx %d: %w", i, err)
		}
		s.commit(res)
		last[tx.Origin] = res.Eff
	}
	return s, nil
}

func seq(n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = i
	}
	return s
}

// TestConvergenceDetectsDivergence guards the test itself: an order-
// dependent merge (first write wins) must be caught by the same check.
func TestConvergenceDetectsDivergence(t *testing.T) {
	txs := []Tx{
		{Origin: "a", CommitTime: 100, Ops: []Op{{Kind: OpInsert, Table: "t", Key: "1", Columns: map[string]Value{"x": txt("a")}}}},
		{Origin: "b", CommitTime: 200, Ops: []Op{{Kind: OpInsert, Table: "t", Key: "1", Columns: map[string]Value{"x": txt("b")}}}},
	}
	firstWins := func(order []int) string {
		s := memStore{}
		for _, i := range order {
			if s[rowID{"t", "1"}] == nil {
				res, err := Apply(s, 0, txs[i])
				if err != nil {
					t.Fatal(err)
				}
				s.commit(res)
			}
		}
		return rowsString(s, true)
	}
	orders := arrivalOrders(txs, []uint64{100, 200}, 10)
	if len(orders) != 2 {
		t.Fatalf("orders = %v, want both", orders)
	}
	if firstWins(orders[0]) == firstWins(orders[1]) {
		t.Fatal("the check does not tell apart an order-dependent merge")
	}
}
