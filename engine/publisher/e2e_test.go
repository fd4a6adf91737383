package publisher_test

import (
	"testing"

	"github.com/electric-sql/electric-go/internal/pgtest"
)

func TestSubscriberAppliesEntries(t *testing.T) {
	e := newEnv(t)
	pg := pgtest.Start(t)
	pg.Exec(`CREATE TABLE items (id int PRIMARY KEY, v text, extra text)`)
	e.startConnector("a", pg)
	e.log.append("b", upsert("public.items", "id=1", "v=one", "extra=x"))
	e.log.append("b", upsert("public.items", "id=2", "v=two", "extra=NULL"))
	waitDump(t, pg, "items", "id=1,v=one,extra=x\nid=2,v=two,extra=NULL")
}
