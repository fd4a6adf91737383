// The subscriber's view of the tables: which are streamed to it, with which
// columns, and whether their Relation message went out on this stream.

package publisher

import (
	"slices"
)

// relState is how one table is presented to this subscriber.
type relState struct {
	oid       uint32
	namespace string
	name      string
	cols      []relColumn
	pk        []string // primary key columns in key order (the order of merge.EncodeKey)
	hasKey    bool
	sent      bool // Relation message sent on this stream
}

// refreshView re-reads the connector's view and rebuilds the relation map
// when it changed. It reports whether streaming may proceed.
func (st *stream) refreshView() bool {
	v, ok := st.se.srv.opts.Connectors(st.se.connector)
	if !ok || v == nil || !v.Ready || (!v.Refreshed && st.view != nil && st.view.Refreshed) {
		// Keep the last view: the connector may be reinitialising (a
		// migration, or its setup again after a reconnect, which publishes
		// the tables before it has read what the subscription holds).
		// The subscription's tables change only through a refresh, so what
		// the last refreshed view says still holds; taking the unrefreshed
		// one would drop every row sent meanwhile as "not subscribed".
		return st.view != nil && st.view.Refreshed
	}
	if v == st.view {
		return v.Refreshed
	}
	rels := map[string]*relState{}
	for i := range v.Tables {
		t := &v.Tables[i]
		q := t.QualifiedName()
		if !v.Subscribed[q] {
			continue
		}
		rs := &relState{oid: t.OID, namespace: t.Schema, name: t.Name, pk: t.PrimaryKey, hasKey: len(t.PrimaryKey) > 0}
		for _, c := range t.Columns {
			rs.cols = append(rs.cols, relColumn{Name: c.Name, Key: t.IsKey(c.Name), TypeOID: c.TypeOID, TypeMod: c.TypeMod})
		}
		if old, ok := st.rels[q]; ok {
			if old.sent && old.oid == rs.oid && slices.Equal(old.cols, rs.cols) {
				rs.sent = true
			} else {
				// What the replay sent lacked the new columns.
				delete(st.replayed, q)
			}
		}
		rels[q] = rs
	}
	st.view, st.rels = v, rels
	return v.Refreshed
}
