package status

import (
	"context"
	"net/http"
	"net/url"
)

// StateOrphaned is a connector the engine's state has served that is no
// longer in CONNECTORS: it is not replicated, and its slot may still hold
// WAL on that Postgres until it is removed (DELETE /api/connectors/{name}).
// It is listed by /api/connectors, never by /api/status.
const StateOrphaned ConnectorState = "orphaned"

// ConnectorRemoval is the answer of DELETE /api/connectors/{name}.
type ConnectorRemoval struct {
	Connector string `json:"connector"`
	// Dropped lists what was dropped on that Postgres, in order
	// ("subscription db_b", "replication slot all_changes", …); empty
	// with Forgotten.
	Dropped []string `json:"dropped"`
	// Forgotten: the Postgres was not touched (?forget=true), only the
	// engine's state of it was removed.
	Forgotten bool `json:"forgotten,omitempty"`
	// State lists what the engine kept for it and removed: "registry",
	// "position", "snapshot progress", "N withheld rows".
	State []string `json:"state"`
}

// RemoveConnector asks the engine to remove connector name (DELETE
// /api/connectors/{name}); forget leaves its Postgres untouched.
func (c *Client) RemoveConnector(ctx context.Context, name string, forget bool) (ConnectorRemoval, error) {
	var q url.Values
	if forget {
		q = url.Values{"forget": {"true"}}
	}
	var r ConnectorRemoval
	err := c.do(ctx, http.MethodDelete, "/api/connectors/"+url.PathEscape(name), q, &r)
	return r, err
}
