package migrations_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/electric-sql/electric-go/internal/pgtest"
	"github.com/electric-sql/electric-go/migrations"
)

func TestSlugAndName(t *testing.T) {
	for _, tc := range []struct{ title, slug string }{
		{"add items", "add_items"},
		{"  Add `Items`: v2/*fast*  ", "add_items_v2_fast"},
		{"über", "ber"},
		{"a very long title that goes on and on and on forever", "a_very_long_title_that_goes_on_and_on_and"},
	} {
		if got := migrations.Slug(tc.title); got != tc.slug {
			t.Errorf("Slug(%q) = %q, want %q", tc.title, got, tc.slug)
		}
	}
	name, err := migrations.NewName(time.Unix(1669232573, 0), "init")
	if err != nil || name != "1669232573_init" {
		t.Fatalf("NewName = %q, %v", name, err)
	}
	if _, err := migrations.NewName(time.Now(), "!!!"); err == nil {
		t.Fatal("NewName accepted a title without letters")
	}
}

func TestCreateLoadList(t *testing.T) {
	dir := t.TempDir()
	a, err := migrations.Create(dir, "", "init", time.Unix(1669232573, 0))
	if err != nil {
		t.Fatal(err)
	}
	if a.Path != filepath.Join(dir, "1669232573_init", "postgres.sql") {
		t.Fatalf("path %s", a.Path)
	}
	if _, err := migrations.Create(dir, "", "init", time.Unix(1669232573, 0)); err == nil {
		t.Fatal("Create overwrote an existing migration")
	}
	if _, err := migrations.Create(dir, "", "add column", time.Unix(1669232634, 0)); err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Join(dir, "not a migration"), 0o755)
	list, err := migrations.List(dir, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(list) != 2 || list[0].Name != "1669232573_init" || list[1].Name != "1669232634_add_column" {
		t.Fatalf("list %+v", list)
	}
	if len(list[0].Hash) != 32 || list[0].Hash != migrations.Hash([]byte(list[0].SQL)) {
		t.Fatalf("hash %q", list[0].Hash)
	}
	if _, err := migrations.Load(dir, "3", ""); !errors.Is(err, migrations.ErrNotFound) {
		t.Fatalf("Load missing: %v", err)
	}
	if _, err := migrations.Load(dir, "../etc", ""); !errors.Is(err, migrations.ErrInvalidName) {
		t.Fatalf("Load bad name: %v", err)
	}
	// Flat files with a ".sql" suffix, as the later local stack used.
	flat := t.TempDir()
	os.WriteFile(filepath.Join(flat, "1_a.sql"), []byte("select 1"), 0o644)
	list, err = migrations.List(flat, ".sql")
	if err != nil || len(list) != 1 || list[0].Name != "1_a" {
		t.Fatalf("flat list %+v %v", list, err)
	}
}

func TestApply(t *testing.T) {
	pg := pgtest.Start(t)
	pg.Exec(migrations.TableDDL)
	ctx := context.Background()
	conn := pg.Connect()
	dir := t.TempDir()
	write := func(name, sql string) migrations.Migration {
		p := migrations.Path(dir, name, "")
		os.MkdirAll(filepath.Dir(p), 0o755)
		os.WriteFile(p, []byte(sql), 0o644)
		m, err := migrations.Load(dir, name, "")
		if err != nil {
			t.Fatal(err)
		}
		return m
	}
	init := write("1669232573_init", "CREATE TABLE public.items (id text PRIMARY KEY, content text);\nCREATE TABLE public.other (id text PRIMARY KEY);")
	if err := migrations.Apply(ctx, conn, init); err != nil {
		t.Fatal(err)
	}
	if err := migrations.Apply(ctx, conn, init); !errors.Is(err, migrations.ErrAlreadyMigrated) {
		t.Fatalf("re-apply: %v", err)
	}
	changed := write("1669232573_init", "CREATE TABLE public.items2 (id text PRIMARY KEY);")
	if err := migrations.Apply(ctx, conn, changed); !errors.Is(err, migrations.ErrHashMismatch) {
		t.Fatalf("changed file: %v", err)
	}
	bad := write("1669232634_bad", "ALTER TABLE public.items ADD COLUMN x int;\nALTER TABLE public.nope ADD COLUMN y int;")
	if err := migrations.Apply(ctx, conn, bad); !errors.Is(err, migrations.ErrBadStatements) {
		t.Fatalf("bad statements: %v", err)
	}
	var n int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM information_schema.columns WHERE table_name = 'items' AND column_name = 'x'`).Scan(&n); err != nil || n != 0 {
		t.Fatalf("failed migration left column x: %d %v", n, err)
	}
	applied, err := migrations.AppliedList(ctx, conn)
	if err != nil {
		t.Fatal(err)
	}
	if len(applied) != 2 || applied[0].Version != "1669232573_init" || applied[0].Hash != init.Hash || applied[1].Hash != "initial" {
		t.Fatalf("applied %+v", applied)
	}
	pg.Exec("DROP SCHEMA electric CASCADE")
	if _, err := migrations.AppliedList(ctx, conn); !errors.Is(err, migrations.ErrNoMigrationsTable) {
		t.Fatalf("no table: %v", err)
	}
}

// A Postgres prepared without the seed's init script gets electric.migrations
// from the first migration; ApplyThen's extra work shares its transaction.
func TestApplyCreatesTableAndThenShares(t *testing.T) {
	pg := pgtest.Start(t)
	ctx := context.Background()
	conn := pg.Connect()
	dir := t.TempDir()
	p := migrations.Path(dir, "1_first", "")
	os.MkdirAll(filepath.Dir(p), 0o755)
	os.WriteFile(p, []byte("CREATE TABLE public.a (id text PRIMARY KEY);"), 0o644)
	m, err := migrations.Load(dir, "1_first", "")
	if err != nil {
		t.Fatal(err)
	}
	boom := errors.New("boom")
	if err := migrations.ApplyThen(ctx, conn, m, func(ctx context.Context, tx pgx.Tx) error { return boom }); !errors.Is(err, boom) {
		t.Fatalf("ApplyThen with a failing step: %v", err)
	}
	if list, err := migrations.AppliedList(ctx, conn); !errors.Is(err, migrations.ErrNoMigrationsTable) {
		t.Fatalf("after a rolled-back first migration: %v %v, want no table", list, err)
	}
	if err := migrations.ApplyThen(ctx, conn, m, func(ctx context.Context, tx pgx.Tx) error {
		_, err := tx.Exec(ctx, "INSERT INTO public.a VALUES ('then')")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	list, err := migrations.AppliedList(ctx, conn)
	if err != nil || len(list) != 1 || list[0].Version != "1_first" {
		t.Fatalf("applied %+v %v", list, err)
	}
	var n int
	if err := conn.QueryRow(ctx, "SELECT count(*) FROM public.a").Scan(&n); err != nil || n != 1 {
		t.Fatalf("then's row: %d %v", n, err)
	}
}

// EnsureTable makes electric.migrations on a bare Postgres and leaves an
// existing one, rows included, alone; TableDDL adds the seed's initial row
// only to an empty table.
func TestEnsureTable(t *testing.T) {
	pg := pgtest.Start(t)
	ctx := context.Background()
	conn := pg.Connect()
	if _, err := migrations.AppliedList(ctx, conn); !errors.Is(err, migrations.ErrNoMigrationsTable) {
		t.Fatalf("bare Postgres: %v, want no table", err)
	}
	for i := 0; i < 2; i++ {
		if err := migrations.EnsureTable(ctx, conn); err != nil {
			t.Fatalf("EnsureTable #%d: %v", i+1, err)
		}
	}
	if list, err := migrations.AppliedList(ctx, conn); err != nil || len(list) != 0 {
		t.Fatalf("after EnsureTable: %+v %v, want an empty table", list, err)
	}
	pg.Exec(`INSERT INTO electric.migrations (version, hash) VALUES ('2_x', 'H')`)
	if err := migrations.EnsureTable(ctx, conn); err != nil {
		t.Fatal(err)
	}
	pg.Exec(migrations.TableDDL)
	list, err := migrations.AppliedList(ctx, conn)
	if err != nil || len(list) != 1 || list[0].Version != "2_x" || list[0].Hash != "H" || list[0].AppliedAt.IsZero() {
		t.Fatalf("existing rows after EnsureTable and TableDDL: %+v %v", list, err)
	}
	if _, err := conn.Exec(ctx, `INSERT INTO electric.migrations (version, hash) VALUES ('2_x', 'again')`); err == nil {
		t.Fatal("a version was recorded twice: electric.migrations lacks UNIQUE(version)")
	}
}
