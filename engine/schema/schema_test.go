package schema_test

import (
	"context"
	"testing"

	"github.com/electric-sql/electric-go/engine/schema"
	"github.com/electric-sql/electric-go/internal/pgtest"
)

func TestIntrospect(t *testing.T) {
	pg := pgtest.Start(t)
	pg.Exec(`CREATE TABLE public.items (b text, id serial, a int NOT NULL, PRIMARY KEY (a, id));
CREATE TABLE public.nokey (x int);
CREATE SCHEMA electric; CREATE TABLE electric.migrations (id int primary key);
ALTER TABLE public.items DROP COLUMN b; ALTER TABLE public.items ADD COLUMN "Odd ""name""" varchar(20);`)
	tables, err := schema.Introspect(context.Background(), pg.Connect())
	if err != nil {
		t.Fatal(err)
	}
	if len(tables) != 2 {
		t.Fatalf("got %d tables, want 2: %+v", len(tables), tables)
	}
	items := tables[0]
	if items.QualifiedName() != "public.items" {
		t.Fatalf("first table %s", items.QualifiedName())
	}
	var names []string
	for _, c := range items.Columns {
		names = append(names, c.Name)
	}
	if got := len(names); got != 3 || names[0] != "id" || names[1] != "a" || names[2] != `Odd "name"` {
		t.Fatalf("columns %q", names)
	}
	if len(items.PrimaryKey) != 2 || items.PrimaryKey[0] != "a" || items.PrimaryKey[1] != "id" {
		t.Fatalf("primary key %q", items.PrimaryKey)
	}
	if len(items.GeneratedKey) != 1 || items.GeneratedKey[0] != "id" {
		t.Fatalf("generated key %q", items.GeneratedKey)
	}
	if c, _ := items.Column(`Odd "name"`); c.TypeName != "character varying(20)" {
		t.Fatalf("type %q", c.TypeName)
	}
	if items.ReplicaIdentity != 'd' || items.Quoted() != `"public"."items"` {
		t.Fatalf("identity %c quoted %s", items.ReplicaIdentity, items.Quoted())
	}
	if len(tables[1].PrimaryKey) != 0 {
		t.Fatalf("nokey has key %q", tables[1].PrimaryKey)
	}
}

func TestQuoteLiteral(t *testing.T) {
	tests := []struct{ in, want string }{
		{"", `''`},
		{"all_tables", `'all_tables'`},
		{"it's", `'it''s'`},
		{"''", `''''''`},
		{`a\b`, `'a\b'`},
		{`\'`, `'\'''`},
		{`host=x password='p\'q'`, `'host=x password=''p\''q'''`},
		{"é\n\t", "'é\n\t'"},
	}
	for _, tt := range tests {
		if got := schema.QuoteLiteral(tt.in); got != tt.want {
			t.Errorf("QuoteLiteral(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}

	// Postgres reads every one of them back as the original string.
	pg := pgtest.Start(t)
	conn := pg.Connect()
	ctx := context.Background()
	var scs string
	if err := conn.QueryRow(ctx, "SHOW standard_conforming_strings").Scan(&scs); err != nil || scs != "on" {
		t.Fatalf("standard_conforming_strings = %q (%v), want on", scs, err)
	}
	for _, tt := range tests {
		var got string
		if err := conn.QueryRow(ctx, "SELECT "+schema.QuoteLiteral(tt.in)+"::text").Scan(&got); err != nil {
			t.Errorf("SELECT %s: %v", schema.QuoteLiteral(tt.in), err)
			continue
		}
		if got != tt.in {
			t.Errorf("SELECT %s = %q, want %q", schema.QuoteLiteral(tt.in), got, tt.in)
		}
	}
}
