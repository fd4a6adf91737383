// Package migrations owns the migration folder model of Electric (spec §7):
// a migration is the file MIGRATIONS_DIR/<name><suffix> (default suffix
// "/postgres.sql"), named <unix seconds>_<slug>, identified in Postgres by its
// name and the upper-case hex MD5 of the file, and recorded in the
// electric.migrations table. It applies one migration to one Postgres in one
// transaction; pausing replication around it is the engine's job. It also
// holds both ends of the engine's migrations API (Handler, Client, with the
// refusals as typed errors) and the comparison of local migrations with what
// each connector has applied, so that `electric migrate` is only wiring.
package migrations

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/electric-sql/electric-go/engine/config"
)

// DefaultDir is the migrations directory when MIGRATIONS_DIR is not set,
// for the CLI and the engine alike.
const DefaultDir = config.DefaultMigrationsDir

// DefaultSuffix is appended to a migration name to find its Postgres file.
const DefaultSuffix = config.DefaultMigrationsSuffix

// Errors callers act on (the HTTP API maps them to the seed's answers).
var (
	ErrNotFound          = errors.New("migration file not found")
	ErrInvalidName       = errors.New("invalid migration name: use letters, digits and underscores")
	ErrAlreadyMigrated   = errors.New("already migrated")
	ErrHashMismatch      = errors.New("already migrated with a different file (hash mismatch)")
	ErrBadStatements     = errors.New("bad migration statements")
	ErrNoMigrationsTable = errors.New("electric.migrations does not exist")
)

var nameRE = regexp.MustCompile(`^[\w_]+$`)

// ValidName reports whether name may be used as a migration version (the
// seed's API accepts ^[\w_]+$).
func ValidName(name string) bool { return nameRE.MatchString(name) }

// Migration is one migration file.
type Migration struct {
	Name string
	Path string
	SQL  string
	Hash string // MD5 of the file, upper-case hex, as the seed recorded it
}

// Hash is the seed's migration hash: MD5 of the file, upper-case hex.
func Hash(b []byte) string {
	sum := md5.Sum(b)
	return strings.ToUpper(hex.EncodeToString(sum[:]))
}

// Path is where the migration called name lives.
func Path(dir, name, suffix string) string {
	if dir == "" {
		dir = DefaultDir
	}
	if suffix == "" {
		suffix = DefaultSuffix
	}
	return filepath.Join(dir, filepath.FromSlash(name+suffix))
}

// Load reads the migration called name.
func Load(dir, name, suffix string) (Migration, error) {
	if !ValidName(name) {
		return Migration{}, fmt.Errorf("%w: %q", ErrInvalidName, name)
	}
	p := Path(dir, name, suffix)
	b, err := os.ReadFile(p)
	if errors.Is(err, fs.ErrNotExist) {
		return Migration{}, fmt.Errorf("%w: %s", ErrNotFound, p)
	}
	if err != nil {
		return Migration{}, fmt.Errorf("reading migration %s: %w", name, err)
	}
	return Migration{Name: name, Path: p, SQL: string(b), Hash: Hash(b)}, nil
}

// List returns every migration under dir, ordered by name (names start with
// a timestamp, so this is creation order).
func List(dir, suffix string) ([]Migration, error) {
	if dir == "" {
		dir = DefaultDir
	}
	if suffix == "" {
		suffix = DefaultSuffix
	}
	var names []string
	if strings.HasPrefix(suffix, "/") {
		entries, err := os.ReadDir(dir)
		if err != nil {
			return nil, fmt.Errorf("listing migrations in %s: %w", dir, err)
		}
		for _, e := range entries {
			if e.IsDir() && ValidName(e.Name()) {
				if _, err := os.Stat(Path(dir, e.Name(), suffix)); err == nil {
					names = append(names, e.Name())
				}
			}
		}
	} else {
		matches, err := filepath.Glob(filepath.Join(dir, "*"+suffix))
		if err != nil {
			return nil, fmt.Errorf("listing migrations in %s: %w", dir, err)
		}
		for _, m := range matches {
			n := strings.TrimSuffix(filepath.Base(m), suffix)
			if ValidName(n) {
				names = append(names, n)
			}
		}
	}
	sort.Strings(names)
	out := make([]Migration, 0, len(names))
	for _, n := range names {
		m, err := Load(dir, n, suffix)
		if err != nil {
			return nil, err
		}
		out = append(out, m)
	}
	return out, nil
}

var slugRE = regexp.MustCompile(`[^a-z0-9_]+`)

// Slug turns a title into the name part of a migration: lower case, runs of
// anything but letters, digits and underscores become one underscore, at most
// 41 characters (as the seed's CLI).
func Slug(title string) string {
	s := slugRE.ReplaceAllString(strings.ToLower(strings.TrimSpace(title)), "_")
	s = strings.Trim(s, "_")
	if len(s) > 41 {
		s = strings.TrimRight(s[:41], "_")
	}
	return s
}

// NewName is the name of a migration created at now with title.
func NewName(now time.Time, title string) (string, error) {
	slug := Slug(title)
	if slug == "" {
		return "", fmt.Errorf("migration title %q has no letters or digits", title)
	}
	return fmt.Sprintf("%d_%s", now.Unix(), slug), nil
}

const template = `-- Electric migration %s
-- title: %s
-- created: %s
--
-- Postgres DDL, applied to every connector by 'electric migrate apply %s'
-- in one transaction together with its row in electric.migrations.
-- Give every replicated table a primary key; prefer keys the application
-- generates (UUIDs) over sequences, which two Postgres would mint alike.
--
-- CREATE TABLE public.items (
--   id uuid PRIMARY KEY,
--   content text NOT NULL DEFAULT ''
-- );
`

// Create writes a new migration file from the template and returns it.
func Create(dir, suffix, title string, now time.Time) (Migration, error) {
	name, err := NewName(now, title)
	if err != nil {
		return Migration{}, err
	}
	p := Path(dir, name, suffix)
	if _, err := os.Stat(p); err == nil {
		return Migration{}, fmt.Errorf("migration %s already exists", p)
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return Migration{}, fmt.Errorf("creating migration folder: %w", err)
	}
	body := fmt.Sprintf(template, name, strings.TrimSpace(title), now.UTC().Format(time.RFC3339), name)
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		return Migration{}, fmt.Errorf("writing %s: %w", p, err)
	}
	return Migration{Name: name, Path: p, SQL: body, Hash: Hash([]byte(body))}, nil
}

// Applied is one row of electric.migrations.
type Applied struct {
	Version   string    `json:"vsn"`
	Hash      string    `json:"hash"`
	AppliedAt time.Time `json:"applied_at"`
}

// Querier is what reading electric.migrations needs: a connection or pool.
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
}

// TableSQL creates the electric schema and the electric.migrations table
// when they do not exist. It is the one definition of that table: the engine,
// 'electric dev up' and tests all create it through TableSQL, EnsureTable or
// TableDDL.
const TableSQL = `CREATE SCHEMA IF NOT EXISTS electric;
CREATE TABLE IF NOT EXISTS electric.migrations (
  id SERIAL PRIMARY KEY,
  version VARCHAR(64) NOT NULL,
  hash VARCHAR(64) NOT NULL,
  applied_at TIMESTAMP WITH TIME ZONE DEFAULT CURRENT_TIMESTAMP,
  UNIQUE(version))`

// TableDDL creates the electric schema and the migrations table as the seed's
// init script did, with the seed's initial row.
const TableDDL = TableSQL + `;
INSERT INTO electric.migrations (version, hash) SELECT '1', 'initial'
  WHERE NOT EXISTS (SELECT 1 FROM electric.migrations);`

// Execer runs a statement: a connection, a pool or a transaction.
type Execer interface {
	Exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error)
}

// EnsureTable creates the electric schema and electric.migrations (TableSQL)
// when they do not exist; it leaves an existing table and its rows alone.
func EnsureTable(ctx context.Context, db Execer) error {
	if _, err := db.Exec(ctx, TableSQL); err != nil {
		return fmt.Errorf("creating electric.migrations: %w", err)
	}
	return nil
}

// AppliedList returns electric.migrations, newest first.
func AppliedList(ctx context.Context, q Querier) ([]Applied, error) {
	rows, err := q.Query(ctx, `SELECT version, hash, coalesce(applied_at, 'epoch') FROM electric.migrations ORDER BY applied_at DESC, id DESC`)
	if err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "42P01" {
			return nil, ErrNoMigrationsTable
		}
		return nil, fmt.Errorf("reading electric.migrations: %w", err)
	}
	defer rows.Close()
	var out []Applied
	for rows.Next() {
		var a Applied
		if err := rows.Scan(&a.Version, &a.Hash, &a.AppliedAt); err != nil {
			return nil, fmt.Errorf("reading electric.migrations: %w", err)
		}
		out = append(out, a)
	}
	if err := rows.Err(); err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "42P01" {
			return nil, ErrNoMigrationsTable
		}
		return nil, fmt.Errorf("reading electric.migrations: %w", err)
	}
	return out, nil
}

// CheckNotApplied returns ErrAlreadyMigrated or ErrHashMismatch when the
// Postgres has recorded m already, nil otherwise (also when
// electric.migrations does not exist yet).
func CheckNotApplied(ctx context.Context, q Querier, m Migration) error {
	rows, err := q.Query(ctx, `SELECT hash FROM electric.migrations WHERE version = $1`, m.Name)
	if err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "42P01" {
			return nil
		}
		return fmt.Errorf("checking electric.migrations: %w", err)
	}
	hash, err := pgx.CollectOneRow(rows, pgx.RowTo[string])
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return nil
	case err != nil:
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "42P01" {
			return nil
		}
		return fmt.Errorf("checking electric.migrations: %w", err)
	}
	return alreadyApplied(m, hash)
}

func alreadyApplied(m Migration, hash string) error {
	if hash == m.Hash {
		return fmt.Errorf("%s: %w", m.Name, ErrAlreadyMigrated)
	}
	return fmt.Errorf("%s: %w: recorded %s, file %s", m.Name, ErrHashMismatch, hash, m.Hash)
}

// Apply runs the migration and records it in electric.migrations in one
// transaction: either both happen or neither. The file runs through the
// simple query protocol, so it may hold several statements.
func Apply(ctx context.Context, conn *pgx.Conn, m Migration) error {
	return ApplyThen(ctx, conn, m, nil)
}

// ApplyThen is Apply with more work in the same transaction: then runs after
// the migration is recorded, before the commit, and its error rolls all back.
// The engine re-enables the connector's subscription there, so that nothing
// ever sees the new schema with replication paused.
func ApplyThen(ctx context.Context, conn *pgx.Conn, m Migration, then func(ctx context.Context, tx pgx.Tx) error) error {
	tx, err := conn.Begin(ctx)
	if err != nil {
		return fmt.Errorf("beginning migration %s: %w", m.Name, err)
	}
	defer tx.Rollback(ctx) //nolint:errcheck // no-op after commit
	// A Postgres prepared without the seed's init script has no table yet.
	if err := EnsureTable(ctx, tx); err != nil {
		return err
	}
	var hash string
	err = tx.QueryRow(ctx, `SELECT hash FROM electric.migrations WHERE version = $1`, m.Name).Scan(&hash)
	switch {
	case err == nil:
		return alreadyApplied(m, hash)
	case !errors.Is(err, pgx.ErrNoRows):
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "42P01" {
			return ErrNoMigrationsTable
		}
		return fmt.Errorf("checking electric.migrations: %w", err)
	}
	if _, err := tx.Conn().PgConn().Exec(ctx, m.SQL).ReadAll(); err != nil {
		return fmt.Errorf("%w in %s: %v", ErrBadStatements, m.Name, err)
	}
	if _, err := tx.Exec(ctx, `INSERT INTO electric.migrations (version, hash) VALUES ($1, $2)`, m.Name, m.Hash); err != nil {
		return fmt.Errorf("recording migration %s: %w", m.Name, err)
	}
	if then != nil {
		if err := then(ctx, tx); err != nil {
			return err
		}
	}
	if err := tx.Commit(ctx); err != nil {
		return fmt.Errorf("committing migration %s: %w", m.Name, err)
	}
	return nil
}
