package engine_test

import (
	"strings"
	"testing"
	"time"

	"github.com/electric-sql/electric-go/migrations"
)

// Schema changes keep every value (issue 13 point 1): each DDL statement
// users commonly run, with psql on one connector at a time, ends with the
// same rows on both Postgres, no value turned NULL, and no subscription
// looping.

const schemaTableSQL = `CREATE TABLE public.s (id text PRIMARY KEY, v text, n int);`

// settle lets the connectors see a schema change (they poll every second)
// and a backfill run.
func settle() { time.Sleep(3 * time.Second) }

func TestSchemaChangesOnOneConnector(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 2, schemaTableSQL+migrations.TableDDL)
	c.start(t.TempDir())
	c.exec("postgres_1", "INSERT INTO public.s VALUES ('1', 'one', 1), ('2', 'two', 2)")
	c.exec("postgres_2", "INSERT INTO public.s VALUES ('3', 'three', 3)")
	all := "SELECT id, coalesce(v, '-'), n FROM public.s ORDER BY id"
	c.waitAll(all, "1|one|1", "2|two|2", "3|three|3")

	// RENAME on postgres_1 only: its rows keep their values, through a
	// backfill and through writes from the other side.
	c.exec("postgres_1", "ALTER TABLE public.s RENAME COLUMN v TO v2")
	settle()
	c.exec("postgres_2", "UPDATE public.s SET n = 30 WHERE id = '3'")
	c.waitRows("postgres_1", "SELECT id, coalesce(v2, '-'), n FROM public.s ORDER BY id", "1|one|1", "2|two|2", "3|three|30")
	c.exec("postgres_2", "ALTER TABLE public.s RENAME COLUMN v TO v2")
	sel := "SELECT id, coalesce(v2, '-'), n FROM public.s ORDER BY id"
	c.waitAll(sel, "1|one|1", "2|two|2", "3|three|30")
	c.exec("postgres_2", "UPDATE public.s SET v2 = 'THREE' WHERE id = '3'")
	c.waitAll(sel, "1|one|1", "2|two|2", "3|THREE|30")

	// ADD COLUMN ... NOT NULL DEFAULT on postgres_1, then on postgres_2 with
	// a row written in between: the default is a value, never NULL.
	c.exec("postgres_1", "ALTER TABLE public.s ADD COLUMN d text NOT NULL DEFAULT 'dflt'")
	settle()
	c.exec("postgres_1", "UPDATE public.s SET d = 'set on 1' WHERE id = '1'")
	c.exec("postgres_2", "UPDATE public.s SET n = 31 WHERE id = '3'")
	c.waitRows("postgres_1", "SELECT id, d, n FROM public.s ORDER BY id", "1|set on 1|1", "2|dflt|2", "3|dflt|31")
	c.exec("postgres_2", "ALTER TABLE public.s ADD COLUMN d text NOT NULL DEFAULT 'dflt'")
	selD := "SELECT id, coalesce(v2, '-'), n, d FROM public.s ORDER BY id"
	c.waitAll(selD, "1|one|1|set on 1", "2|two|2|dflt", "3|THREE|31|dflt")

	// ADD COLUMN with a default and nullable, on both.
	c.exec("postgres_1", "ALTER TABLE public.s ADD COLUMN e text DEFAULT 'e0'")
	c.exec("postgres_2", "ALTER TABLE public.s ADD COLUMN e text DEFAULT 'e0'")
	settle()
	c.exec("postgres_2", "INSERT INTO public.s (id, v2, n) VALUES ('4', 'four', 4)")
	selE := "SELECT id, coalesce(v2, '-'), n, d, coalesce(e, '-') FROM public.s ORDER BY id"
	c.waitAll(selE, "1|one|1|set on 1|e0", "2|two|2|dflt|e0", "3|THREE|31|dflt|e0", "4|four|4|dflt|e0")

	// A type change on postgres_1 only (int to bigint, with USING): its
	// rewritten values reach the other side.
	c.exec("postgres_1", "ALTER TABLE public.s ALTER COLUMN n TYPE bigint USING n * 10")
	c.waitAll(selE, "1|one|10|set on 1|e0", "2|two|20|dflt|e0", "3|THREE|310|dflt|e0", "4|four|40|dflt|e0")
	c.exec("postgres_2", "ALTER TABLE public.s ALTER COLUMN n TYPE bigint")
	c.exec("postgres_2", "UPDATE public.s SET n = 41 WHERE id = '4'")
	c.waitAll(selE, "1|one|10|set on 1|e0", "2|two|20|dflt|e0", "3|THREE|310|dflt|e0", "4|four|41|dflt|e0")

	// DROP COLUMN on one side, then the other.
	c.exec("postgres_1", "ALTER TABLE public.s DROP COLUMN e")
	c.exec("postgres_2", "UPDATE public.s SET v2 = 'TWO' WHERE id = '2'")
	c.waitRows("postgres_1", "SELECT id, coalesce(v2, '-') FROM public.s WHERE id = '2'", "2|TWO")
	c.exec("postgres_2", "ALTER TABLE public.s DROP COLUMN e")

	// CREATE TABLE with rows on one side, then the other; DROP TABLE.
	c.exec("postgres_1", "CREATE TABLE public.u (id int PRIMARY KEY, w text DEFAULT 'w'); INSERT INTO public.u (id) VALUES (1)")
	c.exec("postgres_2", "CREATE TABLE public.u (id int PRIMARY KEY, w text DEFAULT 'w')")
	c.waitAll("SELECT id, w FROM public.u", "1|w")
	c.exec("postgres_2", "INSERT INTO public.u VALUES (2, 'from 2')")
	c.waitAll("SELECT id, w FROM public.u ORDER BY id", "1|w", "2|from 2")
	c.exec("postgres_1", "DROP TABLE public.u")
	c.exec("postgres_2", "INSERT INTO public.u VALUES (3, 'after the drop on 1')")
	c.exec("postgres_2", "UPDATE public.s SET n = 42 WHERE id = '4'")
	c.waitRows("postgres_1", "SELECT n FROM public.s WHERE id = '4'", "42")
	c.exec("postgres_2", "DROP TABLE public.u")

	selFinal := "SELECT id, coalesce(v2, '-'), n, d FROM public.s ORDER BY id"
	c.waitAll(selFinal, "1|one|10|set on 1", "2|TWO|20|dflt", "3|THREE|310|dflt", "4|four|42|dflt")
	c.assertSame("public.s")
	// DDL run with psql on a subscriber takes effect there before the
	// engine sees it (it polls): an entry already on its way with the old
	// columns stops the apply worker once, which restarts with the new
	// schema. Those and nothing else; a loop would count many more.
	c.checkNoApplyErrors("is missing replicated column", `relation "public.u" does not exist`)
	for _, n := range c.names {
		for _, r := range c.query(n, "SELECT apply_error_count FROM pg_stat_subscription_stats") {
			if r > "5" || len(r) > 1 {
				t.Errorf("%s: %s apply errors: a subscription looped", n, r)
			}
		}
	}
	c.checkEngineLog()
	checkNoRequeueLoop(t, c)
}

// The same statements through `electric migrate` (the migrations API), one
// migration at a time on each connector, with writes in between: no value
// turns NULL, no subscription errors, and the next DDL after a NOT NULL
// DEFAULT does not send the subscriptions into a backfill loop.
func TestSchemaChangesThroughMigrate(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 2, migrations.TableDDL)
	dir := t.TempDir()
	steps := []struct{ name, sql string }{
		{"1_init", "CREATE TABLE public.s (id text PRIMARY KEY, v text, n int);\n"},
		{"2_rename", "ALTER TABLE public.s RENAME COLUMN v TO v2;\n"},
		{"3_notnull_default", "ALTER TABLE public.s ADD COLUMN d text NOT NULL DEFAULT 'dflt';\n"},
		{"4_default", "ALTER TABLE public.s ADD COLUMN e text DEFAULT 'e0';\n"},
		{"5_volatile_default", "ALTER TABLE public.s ADD COLUMN f bool NOT NULL DEFAULT (random() < 2);\n"},
		{"6_type", "ALTER TABLE public.s ALTER COLUMN n TYPE bigint;\n"},
		{"7_drop_column", "ALTER TABLE public.s DROP COLUMN e;\n"},
		{"8_create_table", "CREATE TABLE public.u (id int PRIMARY KEY, w text DEFAULT 'w');\n"},
		{"9_drop_table", "DROP TABLE public.u;\n"},
	}
	for _, s := range steps {
		writeMigration(t, dir, s.name, s.sql)
	}
	c.start(dir)
	c.migrate("postgres_1", "1_init")
	c.migrate("postgres_2", "1_init")
	c.exec("postgres_1", "INSERT INTO public.s VALUES ('1', 'one', 1), ('2', 'two', 2)")
	c.exec("postgres_2", "INSERT INTO public.s VALUES ('3', 'three', 3)")
	c.waitAll("SELECT id, v, n FROM public.s ORDER BY id", "1|one|1", "2|two|2", "3|three|3")

	c.migrate("postgres_1", "2_rename")
	c.exec("postgres_2", "UPDATE public.s SET n = 30 WHERE id = '3'")
	c.waitRows("postgres_1", "SELECT id, v2, n FROM public.s ORDER BY id", "1|one|1", "2|two|2", "3|three|30")
	c.migrate("postgres_2", "2_rename")
	sel := "SELECT id, coalesce(v2, '-'), n FROM public.s ORDER BY id"
	c.waitAll(sel, "1|one|1", "2|two|2", "3|three|30")

	c.migrate("postgres_1", "3_notnull_default")
	c.exec("postgres_1", "UPDATE public.s SET d = 'set on 1' WHERE id = '1'")
	c.exec("postgres_2", "INSERT INTO public.s VALUES ('4', 'four', 4)")
	c.migrate("postgres_2", "3_notnull_default")
	selD := "SELECT id, coalesce(v2, '-'), n, d FROM public.s ORDER BY id"
	c.waitAll(selD, "1|one|1|set on 1", "2|two|2|dflt", "3|three|30|dflt", "4|four|4|dflt")

	for _, m := range []string{"4_default", "5_volatile_default", "6_type", "7_drop_column", "8_create_table"} {
		c.migrate("postgres_1", m)
		c.migrate("postgres_2", m)
	}
	c.exec("postgres_1", "INSERT INTO public.u (id) VALUES (1)")
	c.exec("postgres_2", "UPDATE public.s SET n = 40000000000 WHERE id = '4'")
	c.waitAll("SELECT id, w FROM public.u", "1|w")
	selF := "SELECT id, coalesce(v2, '-'), n, d, f FROM public.s ORDER BY id"
	c.waitAll(selF, "1|one|1|set on 1|true", "2|two|2|dflt|true", "3|three|30|dflt|true", "4|four|40000000000|dflt|true")
	c.migrate("postgres_1", "9_drop_table")
	c.migrate("postgres_2", "9_drop_table")
	c.exec("postgres_1", "UPDATE public.s SET v2 = 'ONE' WHERE id = '1'")
	c.waitAll(selF, "1|ONE|1|set on 1|true", "2|two|2|dflt|true", "3|three|30|dflt|true", "4|four|40000000000|dflt|true")
	c.assertSame("public.s")
	c.checkNoApplyErrors()
	c.checkEngineLog()
	checkNoRequeueLoop(t, c)
}

// A type that differs between connectors (ALTER COLUMN ... TYPE with psql
// on one of them) is reported, the row the other cannot parse is withheld
// from it while everything else streams on, and it arrives once the other
// gets the same type through a migration.
func TestSchemaTypeDiffersBetweenConnectors(t *testing.T) {
	t.Parallel()
	c := newCluster(t, 2, schemaTableSQL+migrations.TableDDL)
	dir := t.TempDir()
	writeMigration(t, dir, "1_n_text", "ALTER TABLE public.s ALTER COLUMN n TYPE text;\n")
	c.start(dir)
	c.exec("postgres_1", "INSERT INTO public.s VALUES ('1', 'one', 1), ('2', 'two', 2)")
	all := "SELECT id, v, coalesce(n::text, '-') FROM public.s ORDER BY id"
	c.waitAll(all, "1|one|1", "2|two|2")

	c.exec("postgres_1", "ALTER TABLE public.s ALTER COLUMN n TYPE text")
	c.logOrder(0, "column type differs between connectors")
	c.exec("postgres_1", "UPDATE public.s SET n = 'not a number' WHERE id = '1'")
	c.exec("postgres_1", "UPDATE public.s SET v = 'TWO' WHERE id = '2'")
	c.exec("postgres_2", "INSERT INTO public.s VALUES ('3', 'three', 3)")
	c.waitRows("postgres_2", all, "1|one|1", "2|TWO|2", "3|three|3")
	c.waitRows("postgres_1", all, "1|one|not a number", "2|TWO|2", "3|three|3")

	c.migrate("postgres_2", "1_n_text")
	c.waitAll(all, "1|one|not a number", "2|TWO|2", "3|three|3")
	c.assertSame("public.s")
	for _, n := range c.names {
		for _, r := range c.query(n, "SELECT apply_error_count FROM pg_stat_subscription_stats") {
			if r > "5" || len(r) > 1 {
				t.Errorf("%s: %s apply errors: a subscription looped", n, r)
			}
		}
	}
}

// checkNoRequeueLoop fails on a backfill requeued twice in a row: once is a
// stream that ended (a migration pauses the subscription), again is a
// subscriber refusing it.
func checkNoRequeueLoop(t *testing.T, c *cluster) {
	t.Helper()
	for _, line := range strings.Split(c.logBuf.String(), "\n") {
		if strings.Contains(line, "requeued") && strings.Contains(line, "level=WARN") {
			t.Errorf("backfill requeue loop: %s", line)
		}
	}
}
