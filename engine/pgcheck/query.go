// The check query and the attribution of its failure to one value.

package pgcheck

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// checkGroups runs one query over groups; when Postgres refuses a value,
// each group is checked alone and a failing one is bisected to its first
// bad value.
func (t *target) checkGroups(ctx context.Context, pool *pgxpool.Pool, groups []*group) ([]Invalid, error) {
	err := t.run(ctx, pool, groups, nil)
	if err == nil {
		return nil, nil
	}
	if !valueError(err) {
		return nil, err
	}
	var bad []Invalid
	for _, g := range groups {
		if len(groups) > 1 {
			err := t.run(ctx, pool, []*group{g}, nil)
			if err == nil {
				continue
			}
			if !valueError(err) {
				return nil, err
			}
		}
		inv, err := t.bisect(ctx, pool, g)
		if err != nil {
			return nil, err
		}
		bad = append(bad, inv)
	}
	if len(bad) == 0 {
		return nil, fmt.Errorf("check query failed but no value alone does: %w", err)
	}
	return bad, nil
}

// bisect finds the first value of g that Postgres refuses: the shortest
// failing prefix, in O(log n) queries.
func (t *target) bisect(ctx context.Context, pool *pgxpool.Pool, g *group) (Invalid, error) {
	lo, hi := 0, len(g.vals) // the first hi values fail together; the first lo pass
	for hi-lo > 1 {
		mid := (lo + hi) / 2
		err := t.run(ctx, pool, []*group{g}, g.vals[:mid])
		switch {
		case err == nil:
			lo = mid
		case valueError(err):
			hi = mid
		default:
			return Invalid{}, err
		}
	}
	// Value hi-1 is the first bad one: its own message.
	last := t.run(ctx, pool, []*group{g}, g.vals[hi-1:hi])
	var pe *pgconn.PgError
	if !errors.As(last, &pe) {
		return Invalid{}, fmt.Errorf("attributing a refused value: %v", last)
	}
	return Invalid{Cell: g.cells[hi-1], Connector: t.Name, Code: pe.Code, Err: pe.Message}, nil
}

// run calls the input function of each group on its values (vals replaces
// the values of a single group). count() makes every call happen.
func (t *target) run(ctx context.Context, pool *pgxpool.Pool, groups []*group, vals []string) error {
	var sb strings.Builder
	args := make([]any, 0, len(groups))
	sb.WriteString("SELECT ")
	t.mu.Lock()
	for i, g := range groups {
		f := t.funcs[g.col.TypeOID]
		if i > 0 {
			sb.WriteString(", ")
		}
		call := f.name + "(pg_catalog.textout(x)"
		switch {
		case f.nargs >= 3:
			call += fmt.Sprintf(", %d::oid, %d", f.ioParam, g.col.TypeMod)
		case f.nargs == 2:
			call += fmt.Sprintf(", %d::oid", f.ioParam)
		}
		call += ")"
		fmt.Fprintf(&sb, "(SELECT count(%s) FROM pg_catalog.unnest($%d::text[]) AS x)", call, i+1)
		if vals != nil {
			args = append(args, vals)
		} else {
			args = append(args, g.vals)
		}
	}
	t.mu.Unlock()
	_, err := pool.Exec(ctx, sb.String(), args...)
	return err
}

// valueError reports whether err is Postgres refusing a value (data
// exception or integrity violation) rather than a failure to check.
func valueError(err error) bool {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return false
	}
	return strings.HasPrefix(pe.Code, "22") || strings.HasPrefix(pe.Code, "23")
}
