package engine

import (
	"fmt"
	"sort"
	"strings"
	"sync"

	"github.com/electric-sql/electric-go/engine/status"
)

// typeReport remembers which column type differences between connectors
// were reported, so each is logged once (and again if it changes).
type typeReport struct {
	mu   sync.Mutex
	seen map[string]string // "table.column" -> the differing types
}

// reportTypeDifferences compares the column types of every table the
// connectors have in common: a column whose type differs (ALTER COLUMN ...
// TYPE run on one of them) carries values one side may refuse. Such rows
// are withheld from that subscriber (never a looping apply worker); this
// says why, once per difference, in the log and the event stream.
func (e *Engine) reportTypeDifferences() {
	types := map[string]map[string][]string{} // table.column -> type -> connectors
	for _, c := range e.conns {
		v := c.sub.View()
		if v == nil {
			continue
		}
		for i := range v.Tables {
			t := &v.Tables[i]
			for _, col := range t.Columns {
				k := t.QualifiedName() + "." + col.Name
				if types[k] == nil {
					types[k] = map[string][]string{}
				}
				types[k][col.TypeName] = append(types[k][col.TypeName], c.cfg.Name)
			}
		}
	}
	e.types.mu.Lock()
	defer e.types.mu.Unlock()
	if e.types.seen == nil {
		e.types.seen = map[string]string{}
	}
	for k, byType := range types {
		if len(byType) < 2 {
			delete(e.types.seen, k)
			continue
		}
		var parts []string
		for typ, conns := range byType {
			parts = append(parts, fmt.Sprintf("%s on %s", typ, strings.Join(conns, ",")))
		}
		sort.Strings(parts)
		desc := strings.Join(parts, "; ")
		if e.types.seen[k] == desc {
			continue
		}
		e.types.seen[k] = desc
		msg := "column " + k + " has different types: " + desc + ": rows a connector cannot parse are withheld from it until its type matches (run the same ALTER COLUMN ... TYPE there)"
		e.log.Warn("column type differs between connectors", "column", k, "types", desc)
		e.events.Publish(status.Event{Kind: status.KindError, Message: msg})
	}
}
