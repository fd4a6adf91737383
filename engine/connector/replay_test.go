package connector

import (
	"testing"

	"github.com/electric-sql/electric-go/engine/merge"
	"github.com/electric-sql/electric-go/engine/schema"
	"github.com/electric-sql/electric-go/engine/txlog"
)

// rowSQL is what the apply worker does with a row: every column the table
// has (absent or NULL values as NULL), literals quoted, deletes by key.
func TestRowSQL(t *testing.T) {
	tbl := &schema.Table{Schema: "public", Name: "o'k", PrimaryKey: []string{"id", "Sub"},
		Columns: []schema.Column{{Name: "id"}, {Name: "Sub"}, {Name: "v"}, {Name: "w"}}}
	txt := func(s string) merge.Value { return merge.Value{Text: s} }
	for _, tc := range []struct {
		name string
		ch   txlog.RowChange
		want string
	}{
		{"insert", txlog.RowChange{Row: map[string]merge.Value{"id": txt("1"), "Sub": txt("a'b"), "v": txt("abc"), "w": {Null: true}}},
			`INSERT INTO "public"."o'k" ("id", "Sub", "v", "w") VALUES ('1', 'a''b', 'abc', NULL)`},
		{"missing column", txlog.RowChange{Row: map[string]merge.Value{"id": txt("1"), "Sub": txt("x")}},
			`INSERT INTO "public"."o'k" ("id", "Sub", "v", "w") VALUES ('1', 'x', NULL, NULL)`},
		{"delete", txlog.RowChange{Deleted: true, Row: map[string]merge.Value{"id": txt("1"), "Sub": txt("x"), "v": txt("y")}},
			`DELETE FROM "public"."o'k" WHERE "id" = '1' AND "Sub" = 'x'`},
	} {
		if got := rowSQL(tbl, tc.ch); got != tc.want {
			t.Errorf("%s:\n got %s\nwant %s", tc.name, got, tc.want)
		}
	}
}
