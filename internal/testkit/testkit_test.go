package testkit

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
)

func TestSyncBufferConcurrentWrites(t *testing.T) {
	var tee strings.Builder
	b := &SyncBuffer{Tee: &tee}
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for j := 0; j < 100; j++ {
				fmt.Fprintf(b, "w%d-%d\n", i, j)
				_ = b.Contains("w0-0") // a reader at the same time (for -race)
			}
		}()
	}
	wg.Wait()
	if n := strings.Count(b.String(), "\n"); n != 800 {
		t.Fatalf("%d lines, want 800", n)
	}
	if tee.String() != b.String() {
		t.Fatal("the tee did not get every write")
	}
	if !b.Contains("w7-99\n") || b.Contains("w8-0") {
		t.Fatal("Contains is wrong")
	}
}

func TestSyncBufferTailAndReset(t *testing.T) {
	var b SyncBuffer
	b.Write([]byte("hello world"))
	for _, c := range []struct {
		n    int
		want string
	}{{5, "world"}, {11, "hello world"}, {100, "hello world"}, {0, ""}} {
		if got := b.Tail(c.n); got != c.want {
			t.Errorf("Tail(%d) = %q, want %q", c.n, got, c.want)
		}
	}
	b.Reset()
	if b.String() != "" {
		t.Fatalf("after Reset: %q", b.String())
	}
}

func TestLogToStopsAtTheEndOfTheTest(t *testing.T) {
	f := &fakeT{TB: t}
	w := LogTo(f)
	fmt.Fprintln(w, "one")
	f.cleanup()
	fmt.Fprintln(w, "two")
	if !slices.Equal(f.logs, []string{"one"}) {
		t.Fatalf("logged %q, want only the line before the end", f.logs)
	}
}

// fakeT records a Fatalf instead of stopping the test.
type fakeT struct {
	testing.TB
	failed   string
	logs     []string
	cleanups []func()
}

func (f *fakeT) Log(args ...any)   { f.logs = append(f.logs, fmt.Sprint(args...)) }
func (f *fakeT) Cleanup(fn func()) { f.cleanups = append(f.cleanups, fn) }
func (f *fakeT) cleanup() {
	for _, fn := range f.cleanups {
		fn()
	}
}

func (f *fakeT) Helper() {}
func (f *fakeT) Fatalf(format string, args ...any) {
	f.failed = fmt.Sprintf(format, args...)
}

func TestUntil(t *testing.T) {
	n := 0
	if !Until(time.Minute, func() bool { n++; return n == 3 }) {
		t.Fatal("Until gave up on a condition that came true")
	}
	if n != 3 {
		t.Fatalf("cond called %d times, want 3 (stops once it holds)", n)
	}
	if Until(50*time.Millisecond, func() bool { return false }) {
		t.Fatal("Until reported a condition that never held")
	}
}

func TestEventuallyFailsWithWhatAndTimeout(t *testing.T) {
	f := &fakeT{TB: t}
	EventuallyWithin(f, 50*time.Millisecond, "the moon", func() bool { return false })
	if f.failed != "timed out waiting for the moon (50ms)" {
		t.Fatalf("failure %q", f.failed)
	}
	f = &fakeT{TB: t}
	n := 0
	Eventually(f, "three calls", func() bool { n++; return n >= 3 })
	if f.failed != "" {
		t.Fatalf("failed although the condition held: %q", f.failed)
	}
}

func TestWaitForReportsTheLastState(t *testing.T) {
	f := &fakeT{TB: t}
	n := 0
	WaitFor(f, "two", func() (bool, string) { n++; return n == 2, fmt.Sprint("n=", n) })
	if f.failed != "" || n != 2 {
		t.Fatalf("n=%d, failure %q", n, f.failed)
	}
	f = &fakeT{TB: t}
	n = 0
	waitFor(f, 50*time.Millisecond, "never", func() (bool, string) { n++; return false, fmt.Sprint("n=", n) })
	if want := fmt.Sprintf("timed out waiting for never (50ms; last: n=%d)", n); f.failed != want {
		t.Fatalf("failure %q, want %q", f.failed, want)
	}
}
