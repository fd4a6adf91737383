package validate

import (
	"fmt"
	"slices"
	"strings"
	"testing"
)

func TestOnceCollectsEveryAnomaly(t *testing.T) {
	var a Anomalies
	o := NewOnce(&a, "tx", "the log", []int{1, 2, 3, 4, 5})
	for i, tx := range []int{1, 3, 3, 9, 5} {
		o.Note(fmt.Sprintf("entry %d", i+1), tx)
	}
	o.Finish()
	want := []string{
		"tx 3 in the log twice: entry 2 and entry 3",
		"entry 4 holds tx 9, which never committed",
		"2 committed tx missing from the log, first [2 4]",
	}
	if got := a.List(); !slices.Equal(got, want) {
		t.Fatalf("anomalies:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

func TestOnceCleanRun(t *testing.T) {
	var a Anomalies
	o := NewOnce(&a, "tx", "the log", []string{"a", "b"})
	o.Note("entry 1", "b")
	o.Note("entry 2", "a")
	o.Finish()
	if a.Len() != 0 {
		t.Fatalf("anomalies in a clean run: %q", a.List())
	}
}

func TestOnceListsAtMostTenMissing(t *testing.T) {
	var a Anomalies
	var committed []int
	for i := range 25 {
		committed = append(committed, i)
	}
	NewOnce(&a, "tx", "the log", committed).Finish()
	if got := a.List(); len(got) != 1 || got[0] != "25 committed tx missing from the log, first [0 1 2 3 4 5 6 7 8 9]" {
		t.Fatalf("anomalies %q", got)
	}
}

func TestOrderIsPerKey(t *testing.T) {
	var a Anomalies
	o := NewOrder[string, int](&a, "tx")
	o.Note("entry 1", "k1", 5)
	o.Note("entry 2", "k2", 1) // another key: no order against k1
	o.Note("entry 3", "k1", 5) // equal is not backwards
	o.Note("entry 4", "k1", 4)
	o.Note("entry 5", "k1", 6)
	o.Note("entry 6", "k2", 0)
	want := []string{
		"entry 4 holds tx 4 of k1 after tx 5: out of source order",
		"entry 6 holds tx 0 of k2 after tx 1: out of source order",
	}
	if got := a.List(); !slices.Equal(got, want) {
		t.Fatalf("anomalies %q, want %q", got, want)
	}
}

func TestDiff(t *testing.T) {
	for _, c := range []struct {
		name      string
		want, got []string
		diff      string
	}{
		{"equal in another order", []string{"a", "b"}, []string{"b", "a"}, ""},
		{"both empty", nil, nil, ""},
		{"missing and unexpected", []string{"a", "b", "c"}, []string{"a", "d"}, "+ d\n- b\n- c"},
		{"repeats count", []string{"a", "a"}, []string{"a"}, "- a"},
	} {
		t.Run(c.name, func(t *testing.T) {
			if d := Diff(c.want, c.got); d != c.diff {
				t.Fatalf("Diff = %q, want %q", d, c.diff)
			}
		})
	}
}

func TestDiffIsBounded(t *testing.T) {
	var want []string
	for i := range 60 {
		want = append(want, fmt.Sprintf("r%02d", i))
	}
	lines := strings.Split(Diff(want, nil), "\n")
	if len(lines) != maxDiff+1 || lines[maxDiff] != "... and 10 more" || lines[0] != "- r00" {
		t.Fatalf("%d lines, first %q, last %q", len(lines), lines[0], lines[len(lines)-1])
	}
}

func TestSameRowsAndReport(t *testing.T) {
	var a Anomalies
	if !SameRows(&a, "t on pg1", []string{"1|x"}, []string{"1|x"}) {
		t.Fatal("equal rows reported different")
	}
	if SameRows(&a, "t on pg2", []string{"1|x"}, []string{"1|y"}) {
		t.Fatal("different rows reported equal")
	}
	if got := a.List(); len(got) != 1 || got[0] != "t on pg2 (- missing, + unexpected):\n+ 1|y\n- 1|x" {
		t.Fatalf("anomalies %q", got)
	}
	f := &fakeT{TB: t}
	a.Addf("second %d", 2)
	a.Report(f)
	if !slices.Equal(f.errors, []string{a.List()[0], "second 2"}) {
		t.Fatalf("reported %q", f.errors)
	}
}

// fakeT records errors instead of failing the test.
type fakeT struct {
	testing.TB
	errors []string
}

func (f *fakeT) Helper()           {}
func (f *fakeT) Error(args ...any) { f.errors = append(f.errors, fmt.Sprint(args...)) }

func TestConvergedNamesEachReplica(t *testing.T) {
	var a Anomalies
	ok := Converged(&a, "public.nem", []string{"a", "b"}, map[string][]string{
		"pg1": {"b", "a"}, "client A": {"a"}, "pg2": {"a", "b", "b"},
	})
	want := []string{
		"public.nem on client A (- missing, + unexpected):\n- b",
		"public.nem on pg2 (- missing, + unexpected):\n+ b",
	}
	if ok || !slices.Equal(a.List(), want) {
		t.Fatalf("ok=%v anomalies:\n%s\nwant:\n%s", ok, strings.Join(a.List(), "\n"), strings.Join(want, "\n"))
	}
}

func TestIdenticalComparesWithTheFirst(t *testing.T) {
	var a Anomalies
	if !Identical(&a, "kv", map[string][]string{"x": {"1", "2"}, "y": {"2", "1"}}) || a.Len() != 0 {
		t.Fatalf("agreeing replicas: %q", a.List())
	}
	if Identical(&a, "kv", map[string][]string{"x": {"1"}, "y": {"1"}, "z": {"2"}}) {
		t.Fatal("a differing replica passed")
	}
	want := []string{"kv differs between x and z (- missing, + unexpected):\n+ 2\n- 1"}
	if !slices.Equal(a.List(), want) {
		t.Fatalf("anomalies %q, want %q", a.List(), want)
	}
}
