package withhold

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/electric-sql/electric-go/engine/txlog"
)

// Replayer applies rows on a connector's Postgres as its apply worker
// would, in a transaction that is rolled back (connector.Replay).
type Replayer interface {
	// Apply returns, per row, why it failed (nil: applied).
	Apply(ctx context.Context, rows []txlog.RowChange) ([]error, error)
	Close(ctx context.Context)
}

// Subscriber is the receiving side of one connector (connector.Connector).
type Subscriber interface {
	// AppliedOffset is where its apply worker restarts from.
	AppliedOffset(ctx context.Context) (uint64, error)
	BeginReplay(ctx context.Context) (Replayer, error)
	// Sent returns the rows of e its stream sends (publisher.SentRows).
	Sent(e *txlog.Entry) []txlog.RowChange
	// Skip makes it skip the remote transaction with finish LSN lsn.
	Skip(ctx context.Context, lsn uint64) error
}

// Options wires a Doctor.
type Options struct {
	Set *Set
	// Entry reads the log (txlog.Log.Entry); Head its last offset.
	Entry func(offset uint64) (*txlog.Entry, error)
	Head  func() uint64
	// Current returns a row's merged state as sent (false: deleted, or
	// no state at all).
	Current func(table, key string) (txlog.RowChange, bool, error)
	// Pending returns what the connector's next stream sends before the
	// entries after its position (publisher.Server.Pending): the tables to
	// backfill and the rows to resend, with their current merged state.
	Pending func(connector string) (tables []string, rows []RowRef)
	// Rows calls fn with the live merged rows of table (txlog.Log.Rows).
	Rows func(table string, fn func(ch txlog.RowChange) error) error
	// MaxBackfillRows bounds how many rows of pending backfills one
	// diagnosis replays; default 100,000.
	MaxBackfillRows int
	// Subscriber finds a connector's receiving side.
	Subscriber func(connector string) (Subscriber, bool)
	// Resend sends rows again to a connector with their current merged
	// state and calls done per row once the subscriber has it
	// (publisher.Server.Resend).
	Resend func(connector string, rows []Record, done func(Record)) error
	// Withheld, when set, is told of every row withheld (the audit store).
	Withheld func(Record)
	Logger   *slog.Logger
	// MaxEntries bounds how many entries with rows for the connector one
	// diagnosis replays; default 256.
	MaxEntries int
	// MaxScan bounds how many entries after the subscriber's position one
	// diagnosis reads: entries with nothing for it (its own writes coming
	// back, tables it lacks) do not move its position. Default 100,000.
	MaxScan int
}

// Doctor finds the rows a failing subscriber cannot apply and withholds
// them, and retries withheld rows.
type Doctor struct {
	o   Options
	log *slog.Logger
}

// RowRef names a row.
type RowRef struct{ Table, Key string }

// ErrUnattributed is returned by Diagnose when no row of the entries after
// the subscriber's position fails in a replay: the cause is elsewhere.
var ErrUnattributed = errors.New("no row of the unapplied entries fails in a replay")

// NewDoctor returns a Doctor.
func NewDoctor(o Options) *Doctor {
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.MaxBackfillRows <= 0 {
		o.MaxBackfillRows = 100_000
	}
	if o.MaxScan <= 0 {
		o.MaxScan = 100_000
	}
	if o.MaxEntries <= 0 {
		o.MaxEntries = 256
	}
	return &Doctor{o: o, log: o.Logger.With("component", "withhold")}
}

// Set is the withheld set.
func (d *Doctor) Set() *Set { return d.o.Set }

// Diagnose replays, on connector, the entries after its subscriber's
// position (up to MaxEntries with rows for it), in order, as they are sent to it; it
// withholds the rows that fail (recorded with their error) and returns
// them. The other rows of their entries, and every other entry, are still
// sent.
func (d *Doctor) Diagnose(ctx context.Context, connector string) ([]Record, error) {
	sub, ok := d.o.Subscriber(connector)
	if !ok {
		return nil, fmt.Errorf("unknown connector %s", connector)
	}
	from, err := sub.AppliedOffset(ctx)
	if err != nil {
		return nil, err
	}
	rp, err := sub.BeginReplay(ctx)
	if err != nil {
		return nil, err
	}
	defer rp.Close(context.WithoutCancel(ctx))
	head := d.o.Head()
	last := min(head, from+uint64(d.o.MaxScan))
	now := time.Now().UTC()
	recs, err := d.replayPending(ctx, connector, sub, rp, from, head, now)
	if err != nil {
		return nil, err
	}
	// Rows withheld by this round, to the offset of their record.
	round := map[RowRef]uint64{}
	replayed := 0
	for _, r := range recs {
		round[RowRef{r.Table, r.Key}] = r.Offset
	}
	// Every entry up to the bound, not only the first failing one: the
	// replay keeps what applied and leaves out what failed, as the
	// subscriber will once those rows are withheld, so one round finds
	// what would otherwise take one apply worker restart per entry.
	for off := from + 1; off <= last; off++ {
		e, err := d.o.Entry(off)
		if err != nil {
			return nil, fmt.Errorf("reading log entry %d: %w", off, err)
		}
		var rows []txlog.RowChange
		for _, r := range sub.Sent(e) {
			if o, ok := round[RowRef{r.Table, r.Key}]; ok && off <= o {
				continue
			}
			if !d.o.Set.Withholds(connector, r.Table, r.Key, off) {
				rows = append(rows, r)
			}
		}
		if len(rows) == 0 {
			continue
		}
		if replayed++; replayed > d.o.MaxEntries {
			last = off - 1
			break
		}
		errs, err := rp.Apply(ctx, rows)
		if err != nil {
			return nil, err
		}
		for i, rowErr := range errs {
			if rowErr != nil {
				recs = append(recs, Record{Connector: connector, Table: rows[i].Table, Key: rows[i].Key, KeyText: KeyText(rows[i].Key),
					Offset: off, Error: rowErr.Error(), Time: now})
				round[RowRef{rows[i].Table, rows[i].Key}] = off
			}
		}
	}
	if len(recs) == 0 {
		return nil, fmt.Errorf("connector %s, entries %d to %d: %w", connector, from+1, last, ErrUnattributed)
	}
	if err := d.o.Set.Add(recs...); err != nil {
		return nil, err
	}
	for _, r := range recs {
		d.log.Warn("row withheld from a subscriber that cannot apply it", "connector", connector,
			"table", r.Table, "key", r.KeyText, "offset", r.Offset, "err", r.Error)
		if d.o.Withheld != nil {
			d.o.Withheld(r)
		}
	}
	return recs, nil
}

// replayPending replays what the next stream sends before the entries: the
// pending backfills and resends (a stream after offset 0 sends none). Their
// failing rows are recorded at the log head: the version withheld is the
// current one, and a later write replaces it.
func (d *Doctor) replayPending(ctx context.Context, connector string, sub Subscriber, rp Replayer, from, head uint64, now time.Time) ([]Record, error) {
	if from == 0 || d.o.Pending == nil {
		return nil, nil
	}
	tables, refs := d.o.Pending(connector)
	var rows []txlog.RowChange
	for _, table := range tables {
		err := d.o.Rows(table, func(ch txlog.RowChange) error {
			if d.o.Set.HeldAny(connector, ch.Table, ch.Key) {
				return nil
			}
			if len(rows) >= d.o.MaxBackfillRows {
				return errTooMany
			}
			rows = append(rows, ch)
			return nil
		})
		if errors.Is(err, errTooMany) {
			d.log.Warn("pending backfill too large to replay: its rows are not checked", "connector", connector, "max_rows", d.o.MaxBackfillRows)
			rows = nil
			break
		}
		if err != nil {
			return nil, fmt.Errorf("reading %s: %w", table, err)
		}
	}
	for _, r := range refs {
		ch, ok, err := d.o.Current(r.Table, r.Key)
		if err != nil {
			return nil, err
		}
		if ok {
			rows = append(rows, ch)
		}
	}
	rows = sub.Sent(&txlog.Entry{Changes: rows})
	if len(rows) == 0 {
		return nil, nil
	}
	errs, err := rp.Apply(ctx, rows)
	if err != nil {
		return nil, err
	}
	var recs []Record
	for i, rowErr := range errs {
		if rowErr != nil {
			recs = append(recs, Record{Connector: connector, Table: rows[i].Table, Key: rows[i].Key, KeyText: KeyText(rows[i].Key),
				Offset: head, Error: rowErr.Error(), Time: now})
		}
	}
	return recs, nil
}

var errTooMany = errors.New("too many rows")

// ErrNothingToSkip is returned by Skip when the subscriber's next
// transaction is a backfill or a resend (never skipped whole) or there is
// no entry to skip.
var ErrNothingToSkip = errors.New("no entry to skip")

// Skip makes connector's subscriber skip the first entry after its
// position that is sent to it, for a failure that no row could be blamed
// for (Diagnose returned ErrUnattributed, again and again): ALTER
// SUBSCRIPTION … SKIP. The skip is recorded (Record.Skipped) and told to
// the Withheld hook. A pending backfill or resend is never skipped.
func (d *Doctor) Skip(ctx context.Context, connector, why string) (Record, error) {
	sub, ok := d.o.Subscriber(connector)
	if !ok {
		return Record{}, fmt.Errorf("unknown connector %s", connector)
	}
	from, err := sub.AppliedOffset(ctx)
	if err != nil {
		return Record{}, err
	}
	if d.o.Pending != nil {
		if tables, rows := d.o.Pending(connector); from > 0 && (len(tables) > 0 || len(rows) > 0) {
			return Record{}, fmt.Errorf("%w: the next transaction is a backfill or a resend", ErrNothingToSkip)
		}
	}
	for off := from + 1; off <= d.o.Head() && off <= from+uint64(d.o.MaxScan); off++ {
		e, err := d.o.Entry(off)
		if err != nil {
			return Record{}, fmt.Errorf("reading log entry %d: %w", off, err)
		}
		sent := false
		for _, r := range sub.Sent(e) {
			if !d.o.Set.Withholds(connector, r.Table, r.Key, off) {
				sent = true
				break
			}
		}
		if !sent {
			continue
		}
		// The commit LSN of the entry as the publisher sends it (its Begin
		// message's final LSN): one below its end LSN.
		if err := sub.Skip(ctx, txlog.LSN(off)-1); err != nil {
			return Record{}, err
		}
		r := Record{Connector: connector, Offset: off, Skipped: true, Time: time.Now().UTC(),
			Error: "skipped on the subscriber (ALTER SUBSCRIPTION … SKIP): " + why}
		if err := d.o.Set.Add(r); err != nil {
			return r, err
		}
		d.log.Warn("log entry skipped by a subscriber: no row of it could be blamed for its failure", "connector", connector, "offset", off, "why", why)
		if d.o.Withheld != nil {
			d.o.Withheld(r)
		}
		return r, nil
	}
	return Record{}, ErrNothingToSkip
}

// RetryResult says what a retry did.
type RetryResult struct {
	Resent int `json:"resent"` // rows that now apply, sent again
	Still  int `json:"still"`  // rows that still fail, kept (with the new error)
	Gone   int `json:"gone"`   // rows deleted since: nothing to send
}

// Retry replays the current merged state of every row withheld from
// connector ("" for every connector): the rows that now apply are sent
// again (their record is removed once the subscriber has them), the others
// stay withheld with their new error.
func (d *Doctor) Retry(ctx context.Context, connector string) (RetryResult, error) {
	var res RetryResult
	byConn := map[string][]Record{}
	for _, r := range d.o.Set.List(connector) {
		if !r.Skipped {
			byConn[r.Connector] = append(byConn[r.Connector], r)
		}
	}
	var errs []error
	for name, recs := range byConn {
		if err := d.retry(ctx, name, recs, &res); err != nil {
			errs = append(errs, err)
		}
	}
	return res, errors.Join(errs...)
}

func (d *Doctor) retry(ctx context.Context, connector string, recs []Record, res *RetryResult) error {
	sub, ok := d.o.Subscriber(connector)
	if !ok {
		return fmt.Errorf("unknown connector %s", connector)
	}
	var rows []txlog.RowChange
	var live []Record
	var gone []Record
	for _, r := range recs {
		ch, ok, err := d.o.Current(r.Table, r.Key)
		if err != nil {
			return err
		}
		if !ok {
			gone = append(gone, r)
			continue
		}
		rows = append(rows, ch)
		live = append(live, r)
	}
	if len(gone) > 0 {
		d.log.Info("withheld rows deleted since: nothing left to send", "connector", connector, "rows", len(gone))
		if err := d.o.Set.Remove(gone...); err != nil {
			return err
		}
		res.Gone += len(gone)
	}
	if len(rows) == 0 {
		return nil
	}
	rp, err := sub.BeginReplay(ctx)
	if err != nil {
		return err
	}
	errs, err := rp.Apply(ctx, rows)
	rp.Close(context.WithoutCancel(ctx))
	if err != nil {
		return err
	}
	var applies, still []Record
	now := time.Now().UTC()
	for i, rowErr := range errs {
		if rowErr == nil {
			applies = append(applies, live[i])
			continue
		}
		r := live[i]
		r.Error, r.Time = rowErr.Error(), now
		still = append(still, r)
	}
	if err := d.o.Set.Add(still...); err != nil {
		return err
	}
	res.Still += len(still)
	if len(applies) == 0 {
		return nil
	}
	res.Resent += len(applies)
	d.log.Info("retrying withheld rows that now apply", "connector", connector, "rows", len(applies), "still_failing", len(still))
	return d.o.Resend(connector, applies, func(r Record) {
		if err := d.o.Set.Remove(r); err != nil {
			d.log.Error("removing a resent row from the withheld set", "connector", connector, "table", r.Table, "err", err)
		}
	})
}
