package merge

import "math/rand/v2"

// precedence returns, for each transaction, the ones that must arrive
// before it. The engine receives each origin's transactions in their order
// (a source delivers in commit order). With causal, a transaction also
// arrives after every write its context covers: in the engine a source's
// context is read from the log, so what it had seen is already there. effs
// are the transactions' effective timestamps, identical in every order.
func precedence(txs []Tx, effs []uint64, causal bool) [][]int {
	before := make([][]int, len(txs))
	for i := range txs {
		for j := range i {
			if txs[j].Origin == txs[i].Origin {
				before[i] = append(before[i], j)
			}
		}
		if !causal {
			continue
		}
		for j := range txs {
			if j != i && txs[j].Origin != txs[i].Origin && txs[i].Context.covers(Tag{Origin: txs[j].Origin, Eff: effs[j]}) {
				before[i] = append(before[i], j)
			}
		}
	}
	return before
}

func hasTruncate(txs []Tx) bool {
	for _, tx := range txs {
		for _, op := range tx.Ops {
			if op.Kind == OpTruncate {
				return true
			}
		}
	}
	return false
}

// arrivalOrders lists, up to limit, the orders in which the engine could
// receive txs. Without TRUNCATE the merge promises the same rows for every
// order that keeps each origin's transactions in sequence, even one where a
// write arrives after a delete that had seen it (several engines sharing a
// log, later); a TRUNCATE deletes the rows the store knows, so it is checked
// over causal orders only, the ones one engine can produce.
func arrivalOrders(txs []Tx, effs []uint64, limit int) [][]int {
	before := precedence(txs, effs, hasTruncate(txs))
	var orders [][]int
	placed := make([]bool, len(txs))
	order := make([]int, 0, len(txs))
	var walk func()
	walk = func() {
		if len(orders) >= limit {
			return
		}
		if len(order) == len(txs) {
			orders = append(orders, append([]int(nil), order...))
			return
		}
		for i := range txs {
			if placed[i] || !ready(before[i], placed) {
				continue
			}
			placed[i] = true
			order = append(order, i)
			walk()
			order = order[:len(order)-1]
			placed[i] = false
		}
	}
	walk()
	return orders
}

// randomOrder draws one order respecting before.
func randomOrder(rng *rand.Rand, before [][]int) []int {
	placed := make([]bool, len(before))
	order := make([]int, 0, len(before))
	for len(order) < len(before) {
		var avail []int
		for i := range before {
			if !placed[i] && ready(before[i], placed) {
				avail = append(avail, i)
			}
		}
		i := avail[rng.IntN(len(avail))]
		placed[i] = true
		order = append(order, i)
	}
	return order
}

func ready(deps []int, placed []bool) bool {
	for _, j := range deps {
		if !placed[j] {
			return false
		}
	}
	return true
}
