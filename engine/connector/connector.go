// Package connector sets up the receiving side of one Postgres connector:
// the subscription "<connector>" to Electric's publisher, and on every
// replicated table a replica-enabled upsert trigger so that a stock Postgres
// never stops applying on a conflict. It keeps both in step with the
// database's schema (a table created later is picked up) and exposes what
// that Postgres has to the publisher; a migration pauses and resumes the
// subscription through it (Pause, Resume). It owns the subscription, the
// electric.upsert_* functions and the electric_upsert triggers; it does not
// touch the publication or the slot (pgsource owns those).
package connector

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"reflect"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/electric-sql/electric-go/engine/publisher"
	"github.com/electric-sql/electric-go/engine/schema"
)

// Options configures a Connector.
type Options struct {
	Name          string // connector name = subscription name = the role it logs in to the publisher as
	URI           string // Postgres connection URI (superuser: CREATE SUBSCRIPTION needs it)
	ElectricHost  string // how that Postgres reaches Electric's publisher
	PublisherPort int
	// Password is this connector's password at the publisher
	// (publisher.ConnectorPassword); it is written into the subscription's
	// connection string. Required.
	Password string
	// SSLMode, when set, is the subscription's sslmode (e.g. "require" when
	// the publisher has TLS); unset, libpq's default (prefer) applies.
	SSLMode string
	// Publication is the publication name the subscription asks for; the
	// publisher serves every replicated table whatever the name. Default
	// "all_tables".
	Publication string
	// PollInterval between schema checks; default 1 s.
	PollInterval time.Duration
	Logger       *slog.Logger
	// OnTablesChanged, when set, is called after a refresh with the tables
	// (qualified names) that were newly subscribed or whose columns changed:
	// entries of the log written before then were not applied to them, so
	// the engine backfills them from the merged row state.
	OnTablesChanged func(tables []string)
	// StartHead is the log head when the engine started: a subscriber whose
	// origin is beyond it is rewound to it at the first setup (rewind.go).
	StartHead uint64
	// WaitIngested, when set, waits (bounded) until this Postgres' own
	// stream has made durable everything up to WAL position lsn. A schema
	// change is published only after it: the DDL's transaction carries what
	// it did to the values (a rename, a default; see pgsource's schema
	// history), and rows sent with the new columns before the merged rows
	// have them would carry NULL.
	WaitIngested func(ctx context.Context, lsn uint64)
}

// Connector keeps one Postgres subscribed.
type Connector struct {
	opts Options
	log  *slog.Logger
	view atomic.Pointer[publisher.View]

	mu     sync.Mutex
	status Status

	originChecked atomic.Bool // rewindIfAhead ran
}

// State is the connector's lifecycle state.
type State string

// States.
const (
	StateInit      State = "init"      // not set up yet
	StateSubscribe State = "subscribe" // triggers installed, subscription being set up
	StateReady     State = "ready"     // subscribed and following the schema
	StateError     State = "error"     // the last attempt failed; retrying
)

// Status is a snapshot for the status API.
type Status struct {
	Name            string
	State           State
	LastError       string
	SubscriptionOID uint32 // the subscriber's own WAL names its applies pg_<oid>
	Tables          int    // replicated tables on that Postgres
	Subscribed      int    // tables in the subscription
	LastRefresh     time.Time
	// ApplyErrors is pg_stat_subscription_stats.apply_error_count of the
	// subscription (Postgres 15 and later; 0 before).
	ApplyErrors int64
	// Failing says why the subscription, set up, is not applying (its
	// apply worker keeps failing, or is not running); empty when it is, or
	// while the subscription is disabled (paused by a migration).
	Failing string
	// Rewound, when set, says that the subscriber had applied beyond the
	// log this engine started with, and was rewound (rewind.go).
	Rewound string `json:",omitempty"`
}

// ErrOptions reports invalid options.
var ErrOptions = errors.New("connector options")

// New validates options.
func New(opts Options) (*Connector, error) {
	switch {
	case opts.Name == "":
		return nil, fmt.Errorf("%w: Name is required", ErrOptions)
	case opts.URI == "":
		return nil, fmt.Errorf("%w: URI is required for connector %s", ErrOptions, opts.Name)
	case opts.Password == "":
		return nil, fmt.Errorf("%w: Password is required for connector %s", ErrOptions, opts.Name)
	case opts.ElectricHost == "":
		return nil, fmt.Errorf("%w: ElectricHost is required for connector %s", ErrOptions, opts.Name)
	case opts.PublisherPort <= 0 || opts.PublisherPort > 65535:
		return nil, fmt.Errorf("%w: PublisherPort %d is not a port", ErrOptions, opts.PublisherPort)
	}
	if opts.Publication == "" {
		opts.Publication = "all_tables"
	}
	if opts.PollInterval <= 0 {
		opts.PollInterval = time.Second
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	c := &Connector{opts: opts, log: opts.Logger.With("component", "connector", "connector", opts.Name)}
	c.status = Status{Name: opts.Name, State: StateInit}
	return c, nil
}

// Name is the connector name.
func (c *Connector) Name() string { return c.opts.Name }

// View is what this Postgres has, for the publisher; nil before the first
// introspection.
func (c *Connector) View() *publisher.View { return c.view.Load() }

// Status returns a snapshot.
func (c *Connector) Status() Status {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.status
}

// Ready reports whether the connector is subscribed and following the schema.
func (s Status) Ready() bool { return s.State == StateReady }

// SubscriptionOID is the OID of the subscription once it exists (0 before).
func (c *Connector) SubscriptionOID() uint32 { return c.Status().SubscriptionOID }

func (c *Connector) setStatus(fn func(s *Status)) {
	c.mu.Lock()
	defer c.mu.Unlock()
	fn(&c.status)
}

// Run sets up the subscription and triggers, then follows the schema until
// ctx is done. Failures are retried with backoff (1 s to 10 s), as the seed
// did; the last one is in Status.
func (c *Connector) Run(ctx context.Context) error {
	backoff := time.Second
	for {
		err := c.session(ctx)
		if ctx.Err() != nil {
			return nil
		}
		c.log.Warn("connector setup failed, retrying", "err", err, "in", backoff)
		c.setStatus(func(s *Status) { s.State = StateError; s.LastError = err.Error() })
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		backoff = min(2*backoff, 10*time.Second)
	}
}

// session is one connection's worth of work: setup then polling.
func (c *Connector) session(ctx context.Context) error {
	cctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	conn, err := pgx.Connect(cctx, c.opts.URI)
	cancel()
	if err != nil {
		return fmt.Errorf("connecting to %s: %w", c.opts.Name, err)
	}
	defer conn.Close(context.Background())

	if _, err := conn.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS electric"); err != nil {
		return fmt.Errorf("creating schema electric: %w", err)
	}
	var user, current string
	if err := conn.QueryRow(ctx, "SELECT current_user::text, coalesce(current_schema()::text, '')").Scan(&user, &current); err != nil {
		return fmt.Errorf("reading the search path: %w", err)
	}
	if current == "electric" {
		// "$user" comes first in the default search_path: a role named
		// electric now creates its unqualified tables in the electric
		// schema, which is never replicated.
		c.log.Warn("unqualified CREATE TABLE by this role lands in the electric schema, which is not replicated: qualify names (public.t) or set the role's search_path (ALTER ROLE "+user+" SET search_path = public)", "role", user)
	}
	tables, err := ReplicatedTables(ctx, conn)
	if err != nil {
		return err
	}
	if err := c.syncTriggers(ctx, conn, tables); err != nil {
		return err
	}
	// Ready before ENABLE/REFRESH: both make Postgres connect to the
	// publisher, which refuses a connector whose schema it does not know.
	c.publish(tables, nil, false)
	c.setStatus(func(s *Status) { s.State = StateSubscribe; s.Tables = len(tables) })
	if err := c.ensureSubscription(ctx, conn); err != nil {
		return err
	}
	if err := c.refresh(ctx, conn, tables, nil); err != nil {
		return err
	}
	c.setStatus(func(s *Status) { s.State = StateReady; s.LastError = "" })
	c.log.Info("connector ready", "tables", len(tables))

	tick := time.NewTicker(c.opts.PollInterval)
	defer tick.Stop()
	health := applyHealth{}
	for {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-tick.C:
		}
		sub, err := c.subscription(ctx, conn)
		if err != nil {
			return err
		}
		if sub != nil && !sub.enabled {
			// Someone disabled the subscription (the seed's conflict
			// scenarios do): REFRESH is refused on a disabled subscription,
			// and failing here would re-enable it on the retry. Leave it
			// alone; a schema change is picked up once it is enabled again.
			health.reset()
			c.setStatus(func(s *Status) { s.Failing = "" })
			continue
		}
		if err := c.checkApply(ctx, conn, &health); err != nil {
			return err
		}
		now, err := ReplicatedTables(ctx, conn)
		if err != nil {
			return err
		}
		if sameSubscribedSchema(now, tables) {
			continue
		}
		c.log.Info("schema changed, refreshing the subscription", "tables", len(now))
		if err := c.waitIngested(ctx, conn); err != nil {
			return err
		}
		if err := c.syncTriggers(ctx, conn, now); err != nil {
			return err
		}
		prev := tables
		tables = now
		// The catalog answers list the new tables at once (REFRESH reads
		// them); they are streamed once the subscription includes them.
		c.publish(tables, c.View().Subscribed, true)
		c.setStatus(func(s *Status) { s.Tables = len(tables) })
		if err := c.refresh(ctx, conn, tables, prev); err != nil {
			return err
		}
	}
}

// waitIngested waits until the schema change just seen has reached the
// merged rows through the connector's stream (Options.WaitIngested).
func (c *Connector) waitIngested(ctx context.Context, conn *pgx.Conn) error {
	if c.opts.WaitIngested == nil {
		return nil
	}
	var lsn int64
	if err := conn.QueryRow(ctx, "SELECT (pg_catalog.pg_current_wal_lsn() - '0/0'::pg_catalog.pg_lsn)::bigint").Scan(&lsn); err != nil {
		return fmt.Errorf("reading the WAL position: %w", err)
	}
	c.opts.WaitIngested(ctx, uint64(lsn))
	return nil
}

// sameSubscribedSchema reports whether a and b are the same tables and
// columns for the subscription: a change of replica identity (pgsource sets
// FULL on tables right after setup) is not a reason to refresh.
func sameSubscribedSchema(a, b []schema.Table) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		x, y := a[i], b[i]
		x.ReplicaIdentity, y.ReplicaIdentity = 0, 0
		if !reflect.DeepEqual(x, y) {
			return false
		}
	}
	return true
}

// publish installs a new view for the publisher.
func (c *Connector) publish(tables []schema.Table, subscribed map[string]bool, refreshed bool) {
	c.view.Store(&publisher.View{Ready: true, Tables: tables, Subscribed: subscribed, Refreshed: refreshed})
}

// ReplicatedTables introspects the tables that can be replicated into: a
// primary key is required (the upsert needs it), and generated columns are
// left out (a subscriber refuses values for them).
func ReplicatedTables(ctx context.Context, conn *pgx.Conn) ([]schema.Table, error) {
	all, err := schema.Introspect(ctx, conn)
	if err != nil {
		return nil, err
	}
	rows, err := conn.Query(ctx, `SELECT attrelid::oid, attname::text FROM pg_catalog.pg_attribute
WHERE attnum > 0 AND NOT attisdropped AND attgenerated <> ''`)
	if err != nil {
		return nil, fmt.Errorf("reading generated columns: %w", err)
	}
	generated := map[uint32]map[string]bool{}
	for rows.Next() {
		var oid uint32
		var name string
		if err := rows.Scan(&oid, &name); err != nil {
			return nil, fmt.Errorf("reading generated columns: %w", err)
		}
		if generated[oid] == nil {
			generated[oid] = map[string]bool{}
		}
		generated[oid][name] = true
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("reading generated columns: %w", err)
	}
	out := all[:0]
	for _, t := range all {
		if len(t.PrimaryKey) == 0 {
			continue
		}
		if g := generated[t.OID]; g != nil {
			cols := t.Columns[:0:0]
			for _, col := range t.Columns {
				if !g[col.Name] {
					cols = append(cols, col)
				}
			}
			t.Columns = cols
		}
		out = append(out, t)
	}
	return out, nil
}

// syncTriggers installs or replaces the upsert trigger of every table whose
// trigger is missing, not replica-enabled, or out of date.
func (c *Connector) syncTriggers(ctx context.Context, conn *pgx.Conn, tables []schema.Table) error {
	rows, err := conn.Query(ctx, `SELECT t.tgrelid::oid, t.tgenabled::text, p.prosrc, n.nspname::text, p.proname::text
FROM pg_catalog.pg_trigger t
JOIN pg_catalog.pg_proc p ON p.oid = t.tgfoid
JOIN pg_catalog.pg_namespace n ON n.oid = p.pronamespace
WHERE t.tgname = $1 AND NOT t.tgisinternal`, TriggerName)
	if err != nil {
		return fmt.Errorf("reading upsert triggers: %w", err)
	}
	type installed struct{ enabled, src, fn string }
	have := map[uint32]installed{}
	for rows.Next() {
		var oid uint32
		var in installed
		var nsp, fn string
		if err := rows.Scan(&oid, &in.enabled, &in.src, &nsp, &fn); err != nil {
			return fmt.Errorf("reading upsert triggers: %w", err)
		}
		in.fn = nsp + "." + fn
		have[oid] = in
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("reading upsert triggers: %w", err)
	}
	for i := range tables {
		t := &tables[i]
		in, ok := have[t.OID]
		if ok && in.enabled == "R" && in.src == functionBody(t) && in.fn == "electric."+FunctionName(t) {
			continue
		}
		stmts, err := triggerSQL(t)
		if err != nil {
			return err
		}
		if err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			for _, s := range stmts {
				if _, err := tx.Exec(ctx, s); err != nil {
					return fmt.Errorf("%s: %w", s, err)
				}
			}
			return nil
		}); err != nil {
			return fmt.Errorf("installing the upsert trigger on %s: %w", t.QualifiedName(), err)
		}
		c.log.Info("upsert trigger installed", "table", t.QualifiedName())
	}
	return nil
}

// conninfo is the subscription's connection string to the publisher: it
// logs in as the role named like the connector, with its password. masked
// replaces the password, for logs.
func (c *Connector) conninfo(dbname string, masked bool) string {
	pw := c.opts.Password
	if masked {
		pw = "xxxxx"
	}
	kv := [][2]string{
		{"host", c.opts.ElectricHost},
		{"port", strconv.Itoa(c.opts.PublisherPort)},
		{"dbname", dbname},
		{"user", c.opts.Name},
		{"password", pw},
		{"application_name", c.opts.Name},
	}
	if c.opts.SSLMode != "" {
		kv = append(kv, [2]string{"sslmode", c.opts.SSLMode})
	}
	parts := make([]string, len(kv))
	for i, p := range kv {
		parts[i] = p[0] + "=" + conninfoValue(p[1])
	}
	return strings.Join(parts, " ")
}

// conninfoValue quotes a libpq keyword value when it needs it.
func conninfoValue(v string) string {
	if v != "" && !strings.ContainsAny(v, ` '\`) {
		return v
	}
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(v) + "'"
}

type subscription struct {
	oid      uint32
	enabled  bool
	conninfo string
}

// subscription reads the subscription of this connector in the current
// database; an error when it vanished after setup.
func (c *Connector) subscription(ctx context.Context, conn *pgx.Conn) (*subscription, error) {
	var s subscription
	err := conn.QueryRow(ctx, `SELECT s.oid, s.subenabled, s.subconninfo FROM pg_catalog.pg_subscription s
WHERE s.subname = $1 AND s.subdbid = (SELECT oid FROM pg_catalog.pg_database WHERE datname = current_database())`,
		c.opts.Name).Scan(&s.oid, &s.enabled, &s.conninfo)
	if errors.Is(err, pgx.ErrNoRows) {
		if c.SubscriptionOID() != 0 {
			return nil, fmt.Errorf("subscription %s was dropped", c.opts.Name)
		}
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading subscription %s: %w", c.opts.Name, err)
	}
	return &s, nil
}

// ensureSubscription creates the subscription if missing (WITH connect =
// false: no slot is created on the publisher, slot_name defaults to the
// subscription name), corrects its connection string, and enables it.
func (c *Connector) ensureSubscription(ctx context.Context, conn *pgx.Conn) error {
	ci := c.conninfo(conn.Config().Database, false)
	shown := c.conninfo(conn.Config().Database, true)
	sub, err := c.subscription(ctx, conn)
	if err != nil {
		return err
	}
	name := schema.QuoteIdent(c.opts.Name)
	if sub == nil {
		q := fmt.Sprintf("CREATE SUBSCRIPTION %s CONNECTION %s PUBLICATION %s WITH (connect = false)",
			name, schema.QuoteLiteral(ci), schema.QuoteIdent(c.opts.Publication))
		if _, err := conn.Exec(ctx, q); err != nil {
			return fmt.Errorf("creating subscription %s: %w", c.opts.Name, err)
		}
		c.log.Info("subscription created", "conninfo", shown)
		if sub, err = c.subscription(ctx, conn); err != nil || sub == nil {
			return fmt.Errorf("reading subscription %s after creating it: %w", c.opts.Name, err)
		}
	} else if sub.conninfo != ci {
		if _, err := conn.Exec(ctx, fmt.Sprintf("ALTER SUBSCRIPTION %s CONNECTION %s", name, schema.QuoteLiteral(ci))); err != nil {
			return fmt.Errorf("updating the connection of subscription %s: %w", c.opts.Name, err)
		}
		c.log.Info("subscription connection updated", "conninfo", shown)
	}
	c.setStatus(func(s *Status) { s.SubscriptionOID = sub.oid })
	if err := c.rewindIfAhead(ctx, conn, sub.oid); err != nil {
		return err
	}
	if !sub.enabled {
		return c.setEnabled(ctx, conn, true)
	}
	return nil
}

// subscribedTables reads the tables in the subscription (pg_subscription_rel).
func (c *Connector) subscribedTables(ctx context.Context, conn *pgx.Conn) (map[string]bool, error) {
	rows, err := conn.Query(ctx, `SELECT n.nspname::text, cl.relname::text
FROM pg_catalog.pg_subscription_rel r
JOIN pg_catalog.pg_class cl ON cl.oid = r.srrelid
JOIN pg_catalog.pg_namespace n ON n.oid = cl.relnamespace
WHERE r.srsubid = $1 AND r.srsubstate = 'r'`, c.SubscriptionOID())
	if err != nil {
		return nil, fmt.Errorf("reading the tables of subscription %s: %w", c.opts.Name, err)
	}
	out := map[string]bool{}
	for rows.Next() {
		var nsp, rel string
		if err := rows.Scan(&nsp, &rel); err != nil {
			return nil, fmt.Errorf("reading the tables of subscription %s: %w", c.opts.Name, err)
		}
		out[nsp+"."+rel] = true
	}
	return out, rows.Err()
}

// refresh runs REFRESH PUBLICATION (Postgres asks the publisher for the
// table list) and publishes the subscribed tables. prev is the schema the
// subscription was refreshed with before (nil on setup).
func (c *Connector) refresh(ctx context.Context, conn *pgx.Conn, tables, prev []schema.Table) error {
	before, err := c.subscribedTables(ctx, conn)
	if err != nil {
		return err
	}
	q := fmt.Sprintf("ALTER SUBSCRIPTION %s REFRESH PUBLICATION WITH (copy_data = false)", schema.QuoteIdent(c.opts.Name))
	if _, err := conn.Exec(ctx, q); err != nil {
		return fmt.Errorf("refreshing subscription %s: %w", c.opts.Name, err)
	}
	after, err := c.subscribedTables(ctx, conn)
	if err != nil {
		return err
	}
	c.publish(tables, after, true)
	c.setStatus(func(s *Status) { s.Subscribed = len(after); s.LastRefresh = time.Now() })

	var changed []string
	old := map[string]*schema.Table{}
	for i := range prev {
		old[prev[i].QualifiedName()] = &prev[i]
	}
	for i := range tables {
		t := &tables[i]
		q := t.QualifiedName()
		if !after[q] {
			continue
		}
		if !before[q] {
			changed = append(changed, q)
			continue
		}
		if o, ok := old[q]; ok && !reflect.DeepEqual(o.Columns, t.Columns) {
			changed = append(changed, q)
		}
	}
	sort.Strings(changed)
	if len(changed) > 0 {
		c.log.Info("subscription refreshed", "changed", changed)
		if c.opts.OnTablesChanged != nil {
			c.opts.OnTablesChanged(changed)
		}
	}
	return nil
}
