package merge

import (
	"errors"
	"fmt"
	"math/rand/v2"
)

// A history is transactions in the order of one log (the written order)
// with, for each, seen: how many leading transactions of that order its
// origin had applied when it committed. Replaying it in another order gives
// the log that order would have made; the transactions' contexts are then
// offsets in that log (see replayLog).

// errInadmissible is returned by replayLog for an order no log could have:
// a transaction's context is not a prefix of the log before it.
var errInadmissible = errors.New("context is not a prefix of the log in this order")

// precedence returns, for each transaction, the ones that must arrive
// before it: its origin's earlier ones (a source delivers in commit order)
// and the ones it had seen (a source's context is read from the log, so
// what it had seen is already there).
func precedence(txs []Tx, seen []int) [][]int {
	before := make([][]int, len(txs))
	for i := range txs {
		for j := range i {
			if txs[j].Origin == txs[i].Origin || j < seen[i] {
				before[i] = append(before[i], j)
			}
		}
	}
	return before
}

// replayLog merges txs in order into a fresh store as the sequencer would:
// each transaction gets the next offset (only one that changes a row makes
// an entry), its context is the offset of the last entry it had seen and
// its ContextEff the log's prefix maximum eff there, raised to ctxEff[i]
// when given (a poisoned log). It returns the store, each transaction's
// eff and whether it made an entry; errInadmissible when the order is not one a log could have. With
// entries set, a transaction must make an entry iff entries says so: one
// that changed no row in the written order (a TRUNCATE of an empty table)
// was in no log, so nobody can have seen it.
func replayLog(txs []Tx, seen []int, ctxEff []uint64, order []int, entries []bool) (memStore, []uint64, []bool, error) {
	s := memStore{}
	effs := make([]uint64, len(txs))
	pos := make([]uint64, len(txs)) // offset of each transaction's entry, 0 if none
	placed := make([]bool, len(txs))
	maxEff := []uint64{0} // by offset
	var at []int          // transaction of each entry, by offset-1
	last := map[string]uint64{}
	for _, i := range order {
		tx := txs[i]
		for j := range seen[i] {
			if !placed[j] {
				return nil, nil, nil, fmt.Errorf("tx %d before tx %d it had seen: %w", i, j, errInadmissible)
			}
			tx.Context = max(tx.Context, pos[j])
		}
		for k := range tx.Context {
			if j := at[k]; j >= seen[i] && txs[j].Origin != tx.Origin {
				return nil, nil, nil, fmt.Errorf("tx %d did not see tx %d, which is before what it had seen: %w", i, j, errInadmissible)
			}
		}
		tx.Offset = uint64(len(at)) + 1
		tx.ContextEff = maxEff[tx.Context]
		if ctxEff != nil {
			tx.ContextEff = max(tx.ContextEff, ctxEff[i])
		}
		res, err := Apply(s, last[tx.Origin], tx)
		if err != nil {
			return nil, nil, nil, fmt.Errorf("tx %d: %w", i, err)
		}
		if err := checkChanges(res); err != nil {
			return nil, nil, nil, fmt.Errorf("tx %d: %w", i, err)
		}
		if entries != nil && entries[i] != (len(res.Changes) > 0) {
			return nil, nil, nil, fmt.Errorf("tx %d makes an entry: %v, in the written order: %v: %w", i, !entries[i], entries[i], errInadmissible)
		}
		placed[i] = true
		effs[i] = res.Eff
		if len(res.Changes) == 0 {
			continue // no entry, as in the sequencer
		}
		s.commit(res)
		at = append(at, i)
		pos[i] = tx.Offset
		maxEff = append(maxEff, max(maxEff[len(maxEff)-1], res.Eff))
		last[tx.Origin] = res.Eff
	}
	made := make([]bool, len(txs))
	for i := range txs {
		made[i] = pos[i] > 0
	}
	return s, effs, made, nil
}

// arrivalOrders lists, up to limit, the orders respecting precedence in
// which the engine could receive txs (replayLog tells which of them a log
// could have).
func arrivalOrders(txs []Tx, seen []int, limit int) [][]int {
	before := precedence(txs, seen)
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

func seq(n int) []int {
	s := make([]int, n)
	for i := range s {
		s[i] = i
	}
	return s
}
