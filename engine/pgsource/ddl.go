package pgsource

import (
	"encoding/json"
	"fmt"

	"github.com/electric-sql/electric-go/engine/merge"
)

// ddlMaxBytes bounds one schema history message; the trigger's chunks stay
// near ddlChunkBytes, plus one row's value.
const ddlMaxBytes = 64 << 20

// ddlMessage is one electric.ddl message of the schema history (history.go).
type ddlMessage struct {
	Op     string              `json:"op"`
	Table  string              `json:"table"`
	From   string              `json:"from"`
	To     string              `json:"to"`
	Column string              `json:"column"`
	Value  *string             `json:"value"`
	Mode   string              `json:"mode"`
	Rows   [][]json.RawMessage `json:"rows"`
}

// ddlOps turns a schema history message into merge ops. note, when set, is
// what the change means for the operator (a type change).
func ddlOps(content []byte) (ops []merge.Op, table, note string, err error) {
	if len(content) > ddlMaxBytes {
		return nil, "", "", fmt.Errorf("schema history message of %d bytes (at most %d)", len(content), ddlMaxBytes)
	}
	var m ddlMessage
	if err := json.Unmarshal(content, &m); err != nil {
		return nil, "", "", fmt.Errorf("schema history message: %w", err)
	}
	if m.Table == "" {
		return nil, "", "", fmt.Errorf("schema history message %q without a table", m.Op)
	}
	switch m.Op {
	case "rename":
		if m.From == "" || m.To == "" || m.From == m.To {
			return nil, m.Table, "", fmt.Errorf("schema history: rename of %q to %q", m.From, m.To)
		}
		return []merge.Op{{Kind: merge.OpRenameColumn, Table: m.Table, Column: m.From, NewName: m.To}}, m.Table, "", nil
	case "default":
		if m.Column == "" {
			return nil, m.Table, "", fmt.Errorf("schema history: default without a column")
		}
		v := merge.Value{Null: true}
		if m.Value != nil {
			v = merge.Value{Text: *m.Value}
		}
		return []merge.Op{{Kind: merge.OpDefaultAll, Table: m.Table, Columns: map[string]merge.Value{m.Column: v}}}, m.Table, "", nil
	case "type":
		return nil, m.Table, fmt.Sprintf("column %s changed type from %s to %s on this connector: its values are read back from the table", m.Column, m.From, m.To), nil
	case "rows":
		kind := merge.OpRewrite
		switch m.Mode {
		case "rewrite":
		case "default":
			kind = merge.OpDefault
		default:
			return nil, m.Table, "", fmt.Errorf("schema history: rows of unknown mode %q", m.Mode)
		}
		if m.Column == "" {
			return nil, m.Table, "", fmt.Errorf("schema history: rows without a column")
		}
		ops = make([]merge.Op, 0, len(m.Rows))
		for i, r := range m.Rows {
			op, err := ddlRow(kind, m.Table, m.Column, r)
			if err != nil {
				return nil, m.Table, "", fmt.Errorf("schema history: row %d of %s: %w", i, m.Table, err)
			}
			ops = append(ops, op)
		}
		return ops, m.Table, "", nil
	default:
		return nil, m.Table, "", fmt.Errorf("schema history: unknown op %q", m.Op)
	}
}

// ddlRow is one [[key values...], value] pair of a rows message.
func ddlRow(kind merge.OpKind, table, column string, r []json.RawMessage) (merge.Op, error) {
	if len(r) != 2 {
		return merge.Op{}, fmt.Errorf("%d elements, want [key, value]", len(r))
	}
	var keys []*string
	if err := json.Unmarshal(r[0], &keys); err != nil || len(keys) == 0 {
		return merge.Op{}, fmt.Errorf("key: %v", err)
	}
	kv := make([]merge.Value, len(keys))
	for i, k := range keys {
		if k == nil {
			return merge.Op{}, fmt.Errorf("NULL in the key")
		}
		kv[i] = merge.Value{Text: *k}
	}
	var val *string
	if err := json.Unmarshal(r[1], &val); err != nil {
		return merge.Op{}, fmt.Errorf("value: %w", err)
	}
	v := merge.Value{Null: true}
	if val != nil {
		v = merge.Value{Text: *val}
	}
	return merge.Op{Kind: kind, Table: table, Key: merge.EncodeKey(kv), Columns: map[string]merge.Value{column: v}}, nil
}
