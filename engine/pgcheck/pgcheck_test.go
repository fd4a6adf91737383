package pgcheck_test

import (
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/electric-sql/electric-go/engine/merge"
	"github.com/electric-sql/electric-go/engine/pgcheck"
	"github.com/electric-sql/electric-go/engine/schema"
	"github.com/electric-sql/electric-go/internal/pgtest"
)

const ddl = `
CREATE DOMAIN positive AS int CHECK (VALUE > 0);
CREATE TABLE public.t (id int PRIMARY KEY, small int2, v3 varchar(3), txt text NOT NULL DEFAULT '',
  n numeric(4,1), ts timestamptz, ints int[], pos positive, u uuid);`

func tablesOf(t testing.TB, pg *pgtest.Cluster) func() []schema.Table {
	conn := pg.Connect()
	tabs, err := schema.Introspect(context.Background(), conn)
	if err != nil {
		t.Fatal(err)
	}
	return func() []schema.Table { return tabs }
}

func v(s string) merge.Value { return merge.Value{Text: s} }

var null = merge.Value{Null: true}

// Each value as the apply worker would parse it: the column's input
// function with its type modifier, and NOT NULL.
func TestCheckValues(t *testing.T) {
	pg := pgtest.Start(t)
	pg.Exec(ddl)
	c := pgcheck.New(pgcheck.Options{Targets: []pgcheck.Target{{Name: "pg", URI: pg.URI(), Tables: tablesOf(t, pg)}}})
	defer c.Close()
	cases := []struct {
		col  string
		val  merge.Value
		code string // "" valid
	}{
		{"id", v("42"), ""},
		{"id", v("abc"), "22P02"},
		{"id", v(" 7 "), ""}, // int4in allows surrounding blanks
		{"id", v("2147483648"), "22003"},
		{"small", v("32767"), ""},
		{"small", v("40000"), "22003"},
		{"small", null, ""},
		{"v3", v("abc"), ""},
		{"v3", v("abcd"), "22001"},
		{"v3", v("ab   "), ""}, // varchar(n) drops excess trailing blanks on input
		{"v3", v("äöü"), ""},   // characters, not bytes
		{"txt", null, "23502"},
		{"txt", v("a\x00b"), "22021"},
		{"txt", v("any text"), ""},
		{"txt", v("\xff\xfe"), "22021"},
		{"n", v("999.9"), ""},
		{"n", v("1000"), "22003"},
		{"n", v("12.34"), ""}, // rounded to the scale, as on insert
		{"ts", v("2024-01-02 03:04:05+00"), ""},
		{"ts", v("yesterday-ish"), "22007"},
		{"ints", v("{1,2,3}"), ""},
		{"ints", v("{1,x}"), "22P02"},
		{"pos", v("3"), ""},
		{"pos", v("-3"), "23514"},
		{"u", v("not-a-uuid"), "22P02"},
	}
	for _, tc := range cases {
		t.Run(tc.col+"="+tc.val.Text, func(t *testing.T) {
			cells := []pgcheck.Cell{{Table: "public.t", Column: "id", Value: v("1")}, {Table: "public.t", Column: tc.col, Value: tc.val}}
			bad, err := c.Check(context.Background(), cells)
			if err != nil {
				t.Fatal(err)
			}
			if tc.code == "" {
				if len(bad) != 0 {
					t.Fatalf("valid value refused: %+v", bad)
				}
				return
			}
			if len(bad) != 1 || bad[0].Cell != 1 || bad[0].Code != tc.code || bad[0].Connector != "pg" {
				t.Fatalf("got %+v, want cell 1 refused with %s", bad, tc.code)
			}
		})
	}
}

// Many values in one check: the bad one is named among them.
func TestCheckAttributesAmongMany(t *testing.T) {
	pg := pgtest.Start(t)
	pg.Exec(ddl)
	c := pgcheck.New(pgcheck.Options{Targets: []pgcheck.Target{{Name: "pg", URI: pg.URI(), Tables: tablesOf(t, pg)}}})
	defer c.Close()
	var cells []pgcheck.Cell
	for i := range 1000 {
		cells = append(cells, pgcheck.Cell{Table: "public.t", Column: "small", Value: v("7")},
			pgcheck.Cell{Table: "public.t", Column: "v3", Value: v("ok")})
		if i == 613 {
			cells = append(cells, pgcheck.Cell{Table: "public.t", Column: "small", Value: v("70000")})
		}
	}
	bad, err := c.Check(context.Background(), cells)
	if err != nil {
		t.Fatal(err)
	}
	if len(bad) != 1 || bad[0].Cell != 2*614 || !strings.Contains(bad[0].Err, "out of range") {
		t.Fatalf("got %+v, want cell %d out of range", bad, 2*614)
	}
}

// A Postgres that is down cannot vouch for anything: the caller must not
// merge.
func TestCheckUnavailable(t *testing.T) {
	pg := pgtest.Start(t)
	pg.Exec(ddl)
	tabs := tablesOf(t, pg)
	c := pgcheck.New(pgcheck.Options{Targets: []pgcheck.Target{{Name: "down", URI: "postgres://nobody@127.0.0.1:1/x?sslmode=disable", Tables: tabs}}})
	defer c.Close()
	_, err := c.Check(context.Background(), []pgcheck.Cell{{Table: "public.t", Column: "id", Value: v("1")}})
	if !errors.Is(err, pgcheck.ErrUnavailable) {
		t.Fatalf("got %v, want ErrUnavailable", err)
	}
	// A table no Postgres holds (no schema known yet) is not vouched for.
	c1 := pgcheck.New(pgcheck.Options{Targets: []pgcheck.Target{{Name: "up", URI: pg.URI(), Tables: func() []schema.Table { return nil }}}})
	defer c1.Close()
	if _, err := c1.Check(context.Background(), []pgcheck.Cell{{Table: "public.t", Column: "id", Value: v("1")}}); !errors.Is(err, pgcheck.ErrUnavailable) {
		t.Fatalf("unknown table: got %v, want ErrUnavailable", err)
	}
	// With a second Postgres up, its check counts.
	c2 := pgcheck.New(pgcheck.Options{Targets: []pgcheck.Target{
		{Name: "down", URI: "postgres://nobody@127.0.0.1:1/x?sslmode=disable", Tables: tabs},
		{Name: "up", URI: pg.URI(), Tables: tabs}}})
	defer c2.Close()
	bad, err := c2.Check(context.Background(), []pgcheck.Cell{{Table: "public.t", Column: "id", Value: v("x")}})
	if err != nil || len(bad) != 1 || bad[0].Connector != "up" {
		t.Fatalf("got %+v, %v", bad, err)
	}
}
