package publisher

import (
	"context"
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5/pgproto3"

	"github.com/electric-sql/electric-go/engine/schema"
	"github.com/electric-sql/electric-go/engine/txlog"
)

// Type OIDs of the catalog answers' columns.
const (
	oidBool  = 16
	oidName  = 19
	oidInt4  = 23
	oidText  = 25
	oidOID   = 26
	oidChar  = 18
	oidNames = 1003 // name[]
)

// The queries a Postgres 15 subscriber sends (apply worker, REFRESH
// PUBLICATION, table sync), normalised by normalizeQuery. With a
// non-numeric server_version the subscriber uses the pre-15 forms; the
// 15 forms are answered too in case a subscriber parses the version anyway.
const (
	qSetSearchPath = "SELECT pg_catalog.set_config('search_path', '', false)"
	qTablesPrefix  = "SELECT DISTINCT t.schemaname, t.tablename FROM pg_catalog.pg_publication_tables t WHERE t.pubname IN ("
	qTables15      = "SELECT DISTINCT t.schemaname, t.tablename, t.attnames FROM pg_catalog.pg_publication_tables t WHERE t.pubname IN ("
	qRelPrefix     = "SELECT c.oid, c.relreplident, c.relkind FROM pg_catalog.pg_class c INNER JOIN pg_catalog.pg_namespace n ON (c.relnamespace = n.oid) WHERE "
	qAttrPrefix    = "SELECT a.attname, a.atttypid, a.attnum = ANY(i.indkey) FROM pg_catalog.pg_attribute a "
)

var (
	reRel       = regexp.MustCompile(`n\.nspname = '((?:[^']|'')*)' AND c\.relname = '((?:[^']|'')*)'`)
	reAttrRelID = regexp.MustCompile(`a\.attrelid = (\d+)`)
	reStart     = regexp.MustCompile(`^START_REPLICATION SLOT ("(?:[^"]|"")+"|\S+) LOGICAL ([0-9A-Fa-f]+)/([0-9A-Fa-f]+)(?: \((.*)\))?$`)
	reOption    = regexp.MustCompile(`^\s*("(?:[^"]|"")+"|[\w]+)\s+'((?:[^']|'')*)'\s*$`)
)

// query answers one simple query.
func (se *session) query(ctx context.Context, raw string) error {
	q := normalizeQuery(raw)
	se.log.Debug("query", "sql", q)
	up := strings.ToUpper(q)
	switch {
	case q == "":
		se.send(&pgproto3.EmptyQueryResponse{})
		return se.ready()
	case q == qSetSearchPath:
		return se.rows([]column{{"set_config", oidText}}, [][]*string{{str("")}}, "SELECT 1")
	case strings.HasPrefix(q, qTablesPrefix), strings.HasPrefix(q, qTables15):
		return se.publicationTables(strings.HasPrefix(q, qTables15))
	case strings.HasPrefix(q, qRelPrefix):
		return se.relationInfo(q)
	case strings.HasPrefix(q, qAttrPrefix):
		return se.attributeInfo(q)
	case up == "IDENTIFY_SYSTEM":
		return se.rows([]column{{"systemid", oidText}, {"timeline", oidInt4}, {"xlogpos", oidText}, {"dbname", oidText}},
			[][]*string{{str(se.srv.opts.SystemID), str("1"), str("0/1"), str(se.database)}}, "IDENTIFY_SYSTEM")
	case up == "BEGIN" || strings.HasPrefix(up, "BEGIN "):
		// The table sync worker wraps its catalog reads in a transaction;
		// there is nothing to isolate here.
		se.send(&pgproto3.CommandComplete{CommandTag: []byte("BEGIN")})
		return se.ready()
	case up == "COMMIT", up == "ROLLBACK":
		se.send(&pgproto3.CommandComplete{CommandTag: []byte(up)})
		return se.ready()
	case strings.HasPrefix(up, "DROP_REPLICATION_SLOT "):
		// Slots are virtual: the subscriber's replication origin is the
		// position. DROP SUBSCRIPTION must succeed.
		se.send(&pgproto3.CommandComplete{CommandTag: []byte("DROP_REPLICATION_SLOT")})
		return se.ready()
	case strings.HasPrefix(up, "CREATE_REPLICATION_SLOT "):
		return se.queryError("0A000", "Electric does not create replication slots or export snapshots: create the subscription WITH (connect = false) or (create_slot = false, copy_data = false), and refresh it WITH (copy_data = false)")
	case strings.HasPrefix(up, "START_REPLICATION "):
		return se.startReplication(ctx, q)
	default:
		return se.queryError("0A000", fmt.Sprintf("Electric's replication publisher does not support this query: %s", truncate(q, 200)))
	}
}

type column struct {
	name string
	oid  uint32
}

func str(s string) *string { return &s }

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

func (se *session) ready() error {
	se.send(&pgproto3.ReadyForQuery{TxStatus: 'I'})
	return se.flush()
}

// rows sends a text-format result set, its command tag and ReadyForQuery.
func (se *session) rows(cols []column, rows [][]*string, tag string) error {
	rd := &pgproto3.RowDescription{}
	for _, c := range cols {
		size := int16(-1)
		switch c.oid {
		case oidBool, oidChar:
			size = 1
		case oidInt4, oidOID:
			size = 4
		case oidName:
			size = 64
		}
		rd.Fields = append(rd.Fields, pgproto3.FieldDescription{Name: []byte(c.name), DataTypeOID: c.oid, DataTypeSize: size, TypeModifier: -1})
	}
	se.send(rd)
	for _, r := range rows {
		dr := &pgproto3.DataRow{}
		for _, v := range r {
			if v == nil {
				dr.Values = append(dr.Values, nil)
			} else {
				dr.Values = append(dr.Values, []byte(*v))
			}
		}
		se.send(dr)
	}
	se.send(&pgproto3.CommandComplete{CommandTag: []byte(tag)})
	return se.ready()
}

// view returns the connector's current view; a connector that vanished or
// lost readiness mid-session gets an error.
func (se *session) view() (*View, error) {
	v, ok := se.srv.opts.Connectors(se.connector)
	if !ok || v == nil || !v.Ready {
		return nil, fmt.Errorf("connector %s is not ready", se.connector)
	}
	return v, nil
}

// publicationTables lists the tables this connector's Postgres has: a stock
// REFRESH PUBLICATION fails on a table the subscriber lacks. Electric
// publishes every replicated table, so the publication names do not filter.
func (se *session) publicationTables(withAttnames bool) error {
	v, err := se.view()
	if err != nil {
		return se.queryError("55000", err.Error())
	}
	cols := []column{{"schemaname", oidName}, {"tablename", oidName}}
	if withAttnames {
		cols = append(cols, column{"attnames", oidNames})
	}
	var rows [][]*string
	for _, t := range v.Tables {
		r := []*string{str(t.Schema), str(t.Name)}
		if withAttnames {
			names := make([]string, len(t.Columns))
			for i, c := range t.Columns {
				names[i] = arrayElem(c.Name)
			}
			r = append(r, str("{"+strings.Join(names, ",")+"}"))
		}
		rows = append(rows, r)
	}
	return se.rows(cols, rows, fmt.Sprintf("SELECT %d", len(rows)))
}

// arrayElem quotes an element of a text array literal when needed.
func arrayElem(s string) string {
	if s != "" && !strings.ContainsAny(s, `{},"\ `) && !strings.EqualFold(s, "null") {
		return s
	}
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`).Replace(s) + `"`
}

func unquoteLiteral(s string) string { return strings.ReplaceAll(s, "''", "'") }

func (se *session) findTable(match func(t *schema.Table) bool) (*schema.Table, error) {
	v, err := se.view()
	if err != nil {
		return nil, err
	}
	for i := range v.Tables {
		if match(&v.Tables[i]) {
			return &v.Tables[i], nil
		}
	}
	return nil, nil
}

// relationInfo answers the table sync worker's pg_class lookup.
func (se *session) relationInfo(q string) error {
	m := reRel.FindStringSubmatch(q)
	if m == nil {
		return se.queryError("0A000", fmt.Sprintf("Electric's replication publisher does not support this query: %s", truncate(q, 200)))
	}
	nsp, rel := unquoteLiteral(m[1]), unquoteLiteral(m[2])
	t, err := se.findTable(func(t *schema.Table) bool { return t.Schema == nsp && t.Name == rel })
	if err != nil {
		return se.queryError("55000", err.Error())
	}
	cols := []column{{"oid", oidOID}, {"relreplident", oidChar}, {"relkind", oidChar}}
	var rows [][]*string
	if t != nil {
		rows = append(rows, []*string{str(strconv.FormatUint(uint64(t.OID), 10)), str("d"), str("r")})
	}
	return se.rows(cols, rows, fmt.Sprintf("SELECT %d", len(rows)))
}

// attributeInfo answers the table sync worker's pg_attribute lookup.
func (se *session) attributeInfo(q string) error {
	m := reAttrRelID.FindStringSubmatch(q)
	if m == nil {
		return se.queryError("0A000", fmt.Sprintf("Electric's replication publisher does not support this query: %s", truncate(q, 200)))
	}
	oid, err := strconv.ParseUint(m[1], 10, 32)
	if err != nil {
		return se.queryError("22003", fmt.Sprintf("invalid relation oid %s", m[1]))
	}
	t, err := se.findTable(func(t *schema.Table) bool { return uint64(t.OID) == oid })
	if err != nil {
		return se.queryError("55000", err.Error())
	}
	cols := []column{{"attname", oidName}, {"atttypid", oidOID}, {"?column?", oidBool}}
	var rows [][]*string
	if t != nil {
		for _, c := range t.Columns {
			key := "f"
			if t.IsKey(c.Name) {
				key = "t"
			}
			rows = append(rows, []*string{str(c.Name), str(strconv.FormatUint(uint64(c.TypeOID), 10)), str(key)})
		}
	}
	return se.rows(cols, rows, fmt.Sprintf("SELECT %d", len(rows)))
}

// startOptions are the parsed START_REPLICATION arguments.
type startOptions struct {
	slot    string
	lsn     uint64
	options map[string]string
}

func parseStart(q string) (startOptions, error) {
	m := reStart.FindStringSubmatch(q)
	if m == nil {
		return startOptions{}, fmt.Errorf("expected START_REPLICATION SLOT <slot> LOGICAL <X/Y> [(<options>)]")
	}
	hi, err1 := strconv.ParseUint(m[2], 16, 32)
	lo, err2 := strconv.ParseUint(m[3], 16, 32)
	if err1 != nil || err2 != nil {
		return startOptions{}, fmt.Errorf("invalid LSN %s/%s", m[2], m[3])
	}
	so := startOptions{slot: unquoteIdent(m[1]), lsn: hi<<32 | lo, options: map[string]string{}}
	if m[4] != "" {
		for _, part := range splitOptions(m[4]) {
			om := reOption.FindStringSubmatch(part)
			if om == nil {
				return startOptions{}, fmt.Errorf("invalid option %q", part)
			}
			so.options[unquoteIdent(om[1])] = unquoteLiteral(om[2])
		}
	}
	return so, nil
}

func unquoteIdent(s string) string {
	if len(s) >= 2 && s[0] == '"' && s[len(s)-1] == '"' {
		return strings.ReplaceAll(s[1:len(s)-1], `""`, `"`)
	}
	return s
}

// splitOptions splits "k 'v', k 'v'" on commas outside quotes.
func splitOptions(s string) []string {
	var parts []string
	var quote byte
	start := 0
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case quote != 0:
			if c == quote {
				quote = 0
			}
		case c == '\'' || c == '"':
			quote = c
		case c == ',':
			parts = append(parts, s[start:i])
			start = i + 1
		}
	}
	return append(parts, s[start:])
}

// startReplication validates the command and streams until the subscriber
// ends copy mode.
func (se *session) startReplication(ctx context.Context, q string) error {
	so, err := parseStart(q)
	if err != nil {
		return se.queryError("42601", fmt.Sprintf("electric: %v", err))
	}
	if pv := so.options["proto_version"]; pv != "" && pv != "1" && pv != "2" && pv != "3" && pv != "4" {
		return se.queryError("0A000", fmt.Sprintf("electric: pgoutput proto_version %s is not supported (1 is sent)", pv))
	}
	for _, opt := range []string{"streaming", "two_phase", "binary"} {
		if v := strings.ToLower(so.options[opt]); v == "on" || v == "true" || v == "1" {
			return se.queryError("0A000", fmt.Sprintf("electric: pgoutput option %s is not supported", opt))
		}
	}
	if _, err := se.view(); err != nil {
		return se.queryError("55000", err.Error())
	}
	after := txlog.OffsetOfLSN(so.lsn)
	if h := se.srv.opts.Head; h != nil {
		if head := h(); after > head {
			return se.queryError("55000", fmt.Sprintf("electric: subscription %s asks to resume after log offset %d but the log ends at %d (was Electric's data directory reset?); "+
				"to replay from the start: ALTER SUBSCRIPTION %s DISABLE; SELECT pg_replication_origin_advance('pg_' || oid, '0/0') FROM pg_subscription WHERE subname = '%s'; ALTER SUBSCRIPTION %s ENABLE",
				se.connector, after, head, se.connector, se.connector, se.connector))
		}
	}
	st := &stream{se: se, after: after}
	return st.run(ctx)
}
