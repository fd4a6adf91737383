package migrations

import "context"

// State is where one connector stands with one migration.
type State string

// The states of a migration on a connector.
const (
	StateApplied      State = "applied"
	StatePending      State = "pending"
	StateHashMismatch State = "hash mismatch" // applied, and the file changed since
	StateUnknown      State = "unknown"       // the engine did not say
)

// Row is one local migration against every connector.
type Row struct {
	Name       string           `json:"name"`
	Hash       string           `json:"hash"`
	Connectors map[string]State `json:"connectors"` // connector → state
}

// Compare sets each local migration against what each connector has applied
// (its electric.migrations). A connector missing from applied, because its
// list could not be read, is StateUnknown for every migration.
func Compare(local []Migration, connectors []string, applied map[string][]Applied) []Row {
	done := make(map[string]map[string]string, len(applied)) // connector → version → hash
	for c, list := range applied {
		done[c] = make(map[string]string, len(list))
		for _, a := range list {
			done[c][a.Version] = a.Hash
		}
	}
	rows := make([]Row, 0, len(local))
	for _, m := range local {
		r := Row{Name: m.Name, Hash: m.Hash, Connectors: make(map[string]State, len(connectors))}
		for _, c := range connectors {
			versions, known := done[c]
			hash, ok := versions[m.Name]
			switch {
			case !known:
				r.Connectors[c] = StateUnknown
			case ok && hash != m.Hash:
				r.Connectors[c] = StateHashMismatch
			case ok:
				r.Connectors[c] = StateApplied
			default:
				r.Connectors[c] = StatePending
			}
		}
		rows = append(rows, r)
	}
	return rows
}

// Overview is the local migrations against what each connector of a running
// engine has applied.
type Overview struct {
	// Connectors are the engine's connectors, sorted; none when EngineErr.
	Connectors []string
	Rows       []Row
	// EngineErr says why the connectors are not known: the engine did not
	// answer. The rows then name no connector.
	EngineErr error
}

// Overview asks the engine for its connectors and what each has applied, and
// compares local with it. It does not fail: what the engine does not answer
// is reported in EngineErr or as StateUnknown.
func (c *Client) Overview(ctx context.Context, local []Migration) Overview {
	connectors, err := c.Connectors(ctx)
	applied := make(map[string][]Applied, len(connectors))
	for _, name := range connectors {
		list, err := c.Applied(ctx, name)
		if err != nil {
			continue // StateUnknown
		}
		applied[name] = list
	}
	return Overview{Connectors: connectors, Rows: Compare(local, connectors, applied), EngineErr: err}
}
