package engine

import "time"

// CloseForTest releases an engine that New returned and Run never ran.
func CloseForTest(e *Engine) { e.close() }

// SetSkipPolicyForTest makes a run of unattributed subscriber failures end
// in a skip after failures failures over at least after.
func SetSkipPolicyForTest(e *Engine, failures int, after time.Duration) {
	e.skip.mu.Lock()
	defer e.skip.mu.Unlock()
	e.skip.failures, e.skip.after = failures, after
}

// PositionForTest returns the position the engine's state holds for source.
func PositionForTest(e *Engine, source string) ([]byte, error) { return e.txlog.Position(source) }
