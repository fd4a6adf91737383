// Package testkit holds the small helpers that tests across the tree share:
// a log buffer safe for concurrent writers and polling waits that fail the
// test with what they waited for. It is test support only; production code
// must not import it.
package testkit

import (
	"bytes"
	"io"
	"strings"
	"sync"
	"testing"
	"time"
)

// SyncBuffer is a bytes.Buffer that a logger, a child process and the test
// may use at once. The zero value is ready to use.
type SyncBuffer struct {
	// Tee, when set, also gets every write (for example os.Stderr, to watch
	// a log live). Set it before the first write.
	Tee io.Writer

	mu sync.Mutex
	b  bytes.Buffer
}

func (s *SyncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.Tee != nil {
		s.Tee.Write(p)
	}
	return s.b.Write(p)
}

// String is everything written so far.
func (s *SyncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// Tail is the last n bytes written (all of them when fewer).
func (s *SyncBuffer) Tail(n int) string {
	s.mu.Lock()
	defer s.mu.Unlock()
	b := s.b.Bytes()
	if len(b) > n {
		b = b[len(b)-n:]
	}
	return string(b)
}

// Contains reports whether sub was written (within one write or across).
func (s *SyncBuffer) Contains(sub string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return strings.Contains(s.b.String(), sub)
}

// Reset forgets everything written so far.
func (s *SyncBuffer) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.b.Reset()
}

// LogTo is a writer that logs each write (a log line) through t.Log, until
// the test ends: a goroutine that outlives the test then writes into the
// void instead of making the test panic.
func LogTo(t testing.TB) io.Writer {
	w := &testWriter{t: t, on: true}
	t.Cleanup(func() { w.mu.Lock(); w.on = false; w.mu.Unlock() })
	return w
}

type testWriter struct {
	t  testing.TB
	mu sync.Mutex
	on bool
}

func (w *testWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.on {
		w.t.Log(strings.TrimRight(string(p), "\n"))
	}
	return len(p), nil
}

// Timeout is how long Eventually and WaitFor wait.
const Timeout = 30 * time.Second

// PollInterval is the pause between two checks of a condition.
const PollInterval = 20 * time.Millisecond

// Until checks cond every PollInterval until it holds or timeout has passed,
// and reports whether it held. It is the building block for waits whose
// failure message needs more than Eventually gives.
func Until(timeout time.Duration, cond func() bool) bool {
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(PollInterval)
	}
	return true
}

// Eventually fails t unless cond holds within Timeout; what names the
// awaited condition in the failure.
func Eventually(t testing.TB, what string, cond func() bool) {
	t.Helper()
	EventuallyWithin(t, Timeout, what, cond)
}

// EventuallyWithin is Eventually with its own timeout.
func EventuallyWithin(t testing.TB, timeout time.Duration, what string, cond func() bool) {
	t.Helper()
	if !Until(timeout, cond) {
		t.Fatalf("timed out waiting for %s (%v)", what, timeout)
	}
}

// WaitFor is Eventually for a condition that also describes what it saw:
// the failure carries the last description.
func WaitFor(t testing.TB, what string, cond func() (bool, string)) {
	t.Helper()
	waitFor(t, Timeout, what, cond)
}

func waitFor(t testing.TB, timeout time.Duration, what string, cond func() (bool, string)) {
	t.Helper()
	last := ""
	if !Until(timeout, func() bool {
		ok, s := cond()
		last = s
		return ok
	}) {
		t.Fatalf("timed out waiting for %s (%v; last: %s)", what, timeout, last)
	}
}
