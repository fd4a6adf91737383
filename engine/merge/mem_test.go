package merge

import (
	"maps"
	"slices"
)

// memStore is the in-memory Store the tests merge into.
type memStore map[rowID]*Row

func (m memStore) Row(table, key string) (*Row, error) { return m[rowID{table, key}], nil }

func (m memStore) Keys(table string) ([]string, error) {
	var keys []string
	for id := range m {
		if id.table == table {
			keys = append(keys, id.key)
		}
	}
	return keys, nil
}

// commit persists the states Apply returned, as the sequencer does.
func (m memStore) commit(res Result) {
	for _, c := range res.Changes {
		m[rowID{c.Table, c.Key}] = c.State
	}
}

// ids returns the row ids in a fixed order.
func (m memStore) ids() []rowID {
	ids := slices.Collect(maps.Keys(m))
	slices.SortFunc(ids, func(a, b rowID) int {
		if a.table != b.table {
			if a.table < b.table {
				return -1
			}
			return 1
		}
		if a.key < b.key {
			return -1
		}
		if a.key > b.key {
			return 1
		}
		return 0
	})
	return ids
}
