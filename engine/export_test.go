package engine

// CloseForTest releases an engine that New returned and Run never ran.
func CloseForTest(e *Engine) { e.close() }
