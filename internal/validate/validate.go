// Package validate checks what a replication run delivered against what its
// sources committed, after CockroachDB's cdctest validators: each validator
// records every anomaly of a run (loss, doubles, phantoms, order per key,
// differing final rows) instead of stopping at the first, and the test
// reports them all at the end. It is test support only; production code must
// not import it.
package validate

import (
	"cmp"
	"fmt"
	"slices"
	"strings"
	"testing"
)

// Anomalies collects what the validators of one run found.
type Anomalies struct {
	list []string
}

// Addf records one anomaly.
func (a *Anomalies) Addf(format string, args ...any) {
	a.list = append(a.list, fmt.Sprintf(format, args...))
}

// List is every anomaly recorded, in the order found.
func (a *Anomalies) List() []string { return slices.Clone(a.list) }

// Len is the number of anomalies recorded.
func (a *Anomalies) Len() int { return len(a.list) }

// Report fails t with each anomaly (t.Error, so all are shown).
func (a *Anomalies) Report(t testing.TB) {
	t.Helper()
	for _, s := range a.list {
		t.Error(s)
	}
}

// Once checks a delivered stream against the items its source committed:
// each committed item is delivered exactly once (no loss, no doubles) and
// nothing is delivered that never committed. Note each delivery, then
// Finish.
type Once[T cmp.Ordered] struct {
	a           *Anomalies
	what, where string
	committed   []T
	isCommitted map[T]bool
	seen        map[T]string
}

// NewOnce records into a; what names an item ("tx") and where the stream
// ("the log") in the anomalies.
func NewOnce[T cmp.Ordered](a *Anomalies, what, where string, committed []T) *Once[T] {
	o := &Once[T]{a: a, what: what, where: where, committed: committed, isCommitted: map[T]bool{}, seen: map[T]string{}}
	for _, c := range committed {
		o.isCommitted[c] = true
	}
	return o
}

// Note records that item was delivered at at ("entry 7").
func (o *Once[T]) Note(at string, item T) {
	if prev, dup := o.seen[item]; dup {
		o.a.Addf("%s %v in %s twice: %s and %s", o.what, item, o.where, prev, at)
	} else {
		o.seen[item] = at
	}
	if !o.isCommitted[item] {
		o.a.Addf("%s holds %s %v, which never committed", at, o.what, item)
	}
}

// Finish records the committed items that were never delivered.
func (o *Once[T]) Finish() {
	var missing []T
	for _, c := range o.committed {
		if _, ok := o.seen[c]; !ok {
			missing = append(missing, c)
		}
	}
	if len(missing) > 0 {
		o.a.Addf("%d committed %s missing from %s, first %v", len(missing), o.what, o.where, missing[:min(10, len(missing))])
	}
}

// Order checks that, per key, what is delivered never goes back in the
// source's order (a sequence number, a commit position).
type Order[K comparable, S cmp.Ordered] struct {
	a    *Anomalies
	what string
	last map[K]S
}

// NewOrder records into a; what names a sequence number ("tx").
func NewOrder[K comparable, S cmp.Ordered](a *Anomalies, what string) *Order[K, S] {
	return &Order[K, S]{a: a, what: what, last: map[K]S{}}
}

// Note records that seq was delivered for key at at ("entry 7").
func (o *Order[K, S]) Note(at string, key K, seq S) {
	if last, ok := o.last[key]; ok && seq < last {
		o.a.Addf("%s holds %s %v of %v after %s %v: out of source order", at, o.what, seq, key, o.what, last)
	}
	o.last[key] = seq
}

// SameRows records an anomaly, headed by what, when got does not hold
// exactly the rows of want (in any order, repeats counted). It reports
// whether they were the same.
func SameRows(a *Anomalies, what string, want, got []string) bool {
	d := Diff(want, got)
	if d != "" {
		a.Addf("%s (- missing, + unexpected):\n%s", what, d)
	}
	return d == ""
}

// maxDiff is how many differing rows Diff lists.
const maxDiff = 50

// Diff lists, sorted, the rows only in want ("- row") and only in got
// ("+ row"), repeats counted, at most maxDiff of them and a count of the
// rest; "" when both hold the same rows.
func Diff(want, got []string) string {
	n := map[string]int{}
	for _, r := range want {
		n[r]++
	}
	for _, r := range got {
		n[r]--
	}
	var out []string
	for r, c := range n {
		for ; c > 0; c-- {
			out = append(out, "- "+r)
		}
		for ; c < 0; c++ {
			out = append(out, "+ "+r)
		}
	}
	slices.Sort(out)
	if len(out) > maxDiff {
		out = append(out[:maxDiff], fmt.Sprintf("... and %d more", len(out)-maxDiff))
	}
	return strings.Join(out, "\n")
}

// Converged checks that every replica (a Postgres, a client: name → its
// rows of one table, one string per row) holds exactly the rows of want;
// each replica that does not is one anomaly headed by what and the
// replica's name. It reports whether all did.
func Converged(a *Anomalies, what string, want []string, replicas map[string][]string) bool {
	names := make([]string, 0, len(replicas))
	for n := range replicas {
		names = append(names, n)
	}
	slices.Sort(names)
	ok := true
	for _, n := range names {
		ok = SameRows(a, fmt.Sprintf("%s on %s", what, n), want, replicas[n]) && ok
	}
	return ok
}

// Identical checks that every replica holds the same rows as the first one
// in name order (for state no writer owns, e.g. rows under conflicting
// writes, where only agreement can be checked); each replica that differs
// is one anomaly. It reports whether all agreed.
func Identical(a *Anomalies, what string, replicas map[string][]string) bool {
	names := make([]string, 0, len(replicas))
	for n := range replicas {
		names = append(names, n)
	}
	slices.Sort(names)
	if len(names) == 0 {
		return true
	}
	ok := true
	for _, n := range names[1:] {
		ok = SameRows(a, fmt.Sprintf("%s differs between %s and %s", what, names[0], n), replicas[names[0]], replicas[n]) && ok
	}
	return ok
}
