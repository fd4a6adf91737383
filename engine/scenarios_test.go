package engine_test

import "testing"

// The seed's single_dc scenarios (spec §10.2) on two stock Postgres 15.

func TestStatusReady(t *testing.T) {
	c := newCluster(t, 2, initSQL)
	c.start(t.TempDir())
}

func TestOneDirection(t *testing.T) {
	c := newCluster(t, 2, initSQL)
	c.start(t.TempDir())
	for _, table := range []string{"entries", "entries_default"} {
		id := "00000000-0000-0000-0000-000000000001"
		sel := "SELECT id::text, content, content_b FROM public." + table + " ORDER BY id"
		c.exec("postgres_1", "INSERT INTO public."+table+" (id, content) VALUES ($1, 'hello')", id)
		c.waitRows("postgres_2", sel, id+"|hello|<NULL>")
		c.exec("postgres_1", "UPDATE public."+table+" SET content = 'other' WHERE id = $1", id)
		c.waitRows("postgres_2", sel, id+"|other|<NULL>")
		c.exec("postgres_1", "DELETE FROM public."+table+" WHERE id = $1", id)
		c.waitRows("postgres_2", sel)
	}
}
