package bundle_test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/electric-sql/electric-go/migrations/bundle"
)

// The example app examples/todo (issue 15 point 4) against a running engine
// and two Postgres, with a bundle built by this package from the schema its
// migration gives: a todo added in the app reaches both Postgres, a change
// in the second Postgres reaches the app, and done and delete sync back.
func TestTodoExample(t *testing.T) {
	app, err := filepath.Abs("../../examples/todo")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(app, "node_modules/better-sqlite3/build/Release/better_sqlite3.node")); err != nil {
		t.Fatalf("the example's packages are not installed (%v): run `npm ci` in %s", err, app)
	}
	const name = "1700000000_create_todos"
	ddl, err := os.ReadFile(filepath.Join(app, "migrations", name, "postgres.sql"))
	if err != nil {
		t.Fatal(err)
	}
	ee := startEngine(t, string(ddl), "public.todos")
	body, err := bundle.Body(bundle.Schema{}, readSchema(t, ee.pgs[0]))
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	if err := bundle.Write(filepath.Join(dir, "dist", "electric"), []bundle.Migration{bundle.NewMigration(name, "create todos", body)}); err != nil {
		t.Fatal(err)
	}
	todo := func(args ...string) string {
		t.Helper()
		cmd := exec.Command("node", append([]string{filepath.Join(app, "todo.mjs")}, args...)...)
		cmd.Dir = dir
		cmd.Env = append(os.Environ(), fmt.Sprintf("ELECTRIC_PORT=%d", ee.wsPort), "TODO_SETTLE_MS=200")
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("todo %s: %v\n%s", strings.Join(args, " "), err, stderr.String())
		}
		return strings.TrimSpace(string(out))
	}
	id := todo("add", "buy milk")
	const rows = "SELECT id::text, title, completed FROM todos ORDER BY id"
	ee.waitRows(rows, id+"|buy milk|false")

	ee.pgs[1].Exec(fmt.Sprintf("UPDATE todos SET title = 'buy oat milk' WHERE id = '%s'", id))
	want := "[ ] " + id + " buy oat milk"
	var got string
	for i := 0; i < 50 && got != want; i++ {
		got = todo("list")
	}
	if got != want {
		t.Fatalf("list: got %q, want %q", got, want)
	}
	todo("done", id)
	ee.waitRows(rows, id+"|buy oat milk|true")
	todo("delete", id)
	ee.waitRows(rows, "")
	if got := todo("list"); got != "" {
		t.Errorf("list after delete: %q", got)
	}
}
