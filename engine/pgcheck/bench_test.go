package pgcheck_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/electric-sql/electric-go/engine/pgcheck"
	"github.com/electric-sql/electric-go/internal/pgtest"
)

// BenchmarkCheck is the cost one client transaction pays before merge:
// rows of five columns (four need Postgres, text does not), all valid, one
// Postgres. Reports µs per transaction.
func BenchmarkCheck(b *testing.B) {
	pg := pgtest.Start(b)
	pg.Exec(ddl)
	c := pgcheck.New(pgcheck.Options{Targets: []pgcheck.Target{{Name: "pg", URI: pg.URI(), Tables: tablesOf(b, pg)}}})
	defer c.Close()
	for _, rows := range []int{1, 10, 100} {
		var cells []pgcheck.Cell
		for i := range rows {
			for _, cv := range [][2]string{{"id", fmt.Sprint(i)}, {"small", "7"}, {"v3", "abc"}, {"txt", "text"}, {"ts", "2024-01-02 03:04:05+00"}} {
				cells = append(cells, pgcheck.Cell{Table: "public.t", Column: cv[0], Value: v(cv[1])})
			}
		}
		b.Run(fmt.Sprintf("rows=%d", rows), func(b *testing.B) {
			for b.Loop() {
				if bad, err := c.Check(context.Background(), cells); err != nil || len(bad) > 0 {
					b.Fatal(bad, err)
				}
			}
		})
	}
}
