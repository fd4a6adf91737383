package pebblelog

import (
	"testing"

	"github.com/electric-sql/electric-go/engine/txlog"
	"github.com/electric-sql/electric-go/engine/txlog/logtest"
)

var _ txlog.Log = (*Log)(nil)

// The Pebble log meets the log contract, with its in-memory tail of recent
// entries and with a tail so small that readers go to the store.
func TestContract(t *testing.T) {
	for _, tc := range []struct {
		name string
		opts Options
	}{
		{"default", Options{}},
		{"no-tail-cache", Options{TailCacheBytes: 1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			logtest.Run(t, func(t *testing.T, dir string) txlog.Log {
				return openTest(t, dir, tc.opts)
			})
		})
	}
}
