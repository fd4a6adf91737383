package pgsource

import (
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/electric-sql/electric-go/engine/merge"
	"github.com/electric-sql/electric-go/internal/pgtest"
	"github.com/electric-sql/electric-go/internal/testkit"
)

// Each DDL statement users commonly run reaches the log as the ops that
// keep the merged rows' values, in the DDL's own transaction.
func TestSchemaHistoryOps(t *testing.T) {
	t.Parallel()
	pg := pgtest.Start(t)
	pg.Exec(`CREATE TABLE public.t (id int PRIMARY KEY, v text, n int); INSERT INTO t VALUES (1, 'a', 10), (2, NULL, 20);
		CREATE TABLE public.u2 (id int PRIMARY KEY)`) // u2: a marker row ends each step
	sink := newRecSink()
	r := startSource(t, pg, "pg1", sink, sink)
	for step, tc := range []struct {
		ddl  string
		want []string
	}{
		{`ALTER TABLE t RENAME COLUMN v TO v2`, []string{`rename public.t v->v2`}},
		{`ALTER TABLE t ADD COLUMN d text NOT NULL DEFAULT 'x y'`, []string{`default public.t * d='x y'`}},
		{`ALTER TABLE t ADD COLUMN e text`, []string{`default public.t * e=NULL`}},
		{`ALTER TABLE t ADD COLUMN b bool DEFAULT (random() < 2)`, []string{`default public.t "1" b='t'`, `default public.t "2" b='t'`}},
		{`ALTER TABLE t ALTER COLUMN n TYPE text USING (n * 2)::text`, []string{`rewrite public.t "1" n='20'`, `rewrite public.t "2" n='40'`}},
		{`ALTER TABLE t DROP COLUMN e`, nil},
		{`CREATE TABLE public.u (id int PRIMARY KEY)`, nil},
	} {
		before := len(sink.all())
		pg.Exec(fmt.Sprintf(`%s; INSERT INTO u2 VALUES (%d)`, tc.ddl, step))
		marker := merge.EncodeKey([]merge.Value{val(fmt.Sprint(step))})
		testkit.Eventually(t, "the marker of "+tc.ddl, func() bool {
			for _, it := range sink.all()[before:] {
				for _, op := range it.Tx.Ops {
					if op.Table == "public.u2" && op.Key == marker {
						return true
					}
				}
			}
			return false
		})
		var got []string
		for _, it := range sink.all()[before:] {
			for _, op := range it.Tx.Ops {
				if op.Table != "public.u2" {
					got = append(got, schemaOpString(op))
				}
			}
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%s: ops\n%s\nwant\n%s", tc.ddl, strings.Join(got, "\n"), strings.Join(tc.want, "\n"))
		}
	}
	if !strings.Contains(r.logs.String(), "changed type from integer to text") {
		t.Errorf("the type change was not logged")
	}
}

func schemaOpString(op merge.Op) string {
	var cols []string
	for c, v := range op.Columns {
		s := "'" + v.Text + "'"
		if v.Null {
			s = "NULL"
		}
		cols = append(cols, c+"="+s)
	}
	switch op.Kind {
	case merge.OpRenameColumn:
		return fmt.Sprintf("rename %s %s->%s", op.Table, op.Column, op.NewName)
	case merge.OpDefault:
		return fmt.Sprintf("default %s %q %s", op.Table, op.Key, strings.Join(cols, " "))
	case merge.OpDefaultAll:
		return fmt.Sprintf("default %s * %s", op.Table, strings.Join(cols, " "))
	case merge.OpRewrite:
		return fmt.Sprintf("rewrite %s %q %s", op.Table, op.Key, strings.Join(cols, " "))
	}
	return fmtOp(op)
}
