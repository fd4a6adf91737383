package bundle_test

import (
	"fmt"

	"github.com/electric-sql/electric-go/migrations/bundle"
)

func ExampleBody() {
	v1 := bundle.Schema{Tables: []bundle.Table{{Schema: "public", Name: "todos", Columns: []bundle.Column{
		{Num: 1, Name: "id", Type: "uuid", NotNull: true, PrimaryKey: 1},
		{Num: 2, Name: "title", Type: "text", NotNull: true},
	}}}}
	body, err := bundle.Body(bundle.Schema{}, v1)
	if err != nil {
		panic(err)
	}
	for _, s := range body {
		fmt.Println(s)
	}
	// Output:
	// CREATE TABLE "todos" ("id" TEXT NOT NULL, "title" TEXT, PRIMARY KEY ("id"));
	// INSERT OR IGNORE INTO _electric_trigger_settings (tablename, flag) VALUES ('main.todos', 1);
	// DROP TRIGGER IF EXISTS "update_ensure_main_todos_primarykey";
	// DROP TRIGGER IF EXISTS "insert_main_todos_into_oplog";
	// DROP TRIGGER IF EXISTS "update_main_todos_into_oplog";
	// DROP TRIGGER IF EXISTS "delete_main_todos_into_oplog";
	// DROP TRIGGER IF EXISTS "guard_main_todos_primarykey";
	// CREATE TRIGGER "update_ensure_main_todos_primarykey" BEFORE UPDATE ON "todos" BEGIN SELECT CASE WHEN old."id" IS NOT new."id" THEN RAISE(ABORT, 'cannot change the value of column id as it belongs to the primary key') END; END;
	// CREATE TRIGGER "insert_main_todos_into_oplog" AFTER INSERT ON "todos" WHEN 1 = (SELECT flag FROM _electric_trigger_settings WHERE tablename = 'main.todos') BEGIN INSERT INTO _electric_oplog (namespace, tablename, optype, primaryKey, newRow, oldRow, timestamp) VALUES ('main', 'todos', 'INSERT', json_object('id', new."id"), json_object('id', new."id", 'title', new."title"), NULL, NULL); END;
	// CREATE TRIGGER "update_main_todos_into_oplog" AFTER UPDATE ON "todos" WHEN 1 = (SELECT flag FROM _electric_trigger_settings WHERE tablename = 'main.todos') BEGIN INSERT INTO _electric_oplog (namespace, tablename, optype, primaryKey, newRow, oldRow, timestamp) VALUES ('main', 'todos', 'UPDATE', json_object('id', new."id"), json_object('id', new."id", 'title', new."title"), json_object('id', old."id", 'title', old."title"), NULL); END;
	// CREATE TRIGGER "delete_main_todos_into_oplog" AFTER DELETE ON "todos" WHEN 1 = (SELECT flag FROM _electric_trigger_settings WHERE tablename = 'main.todos') BEGIN INSERT INTO _electric_oplog (namespace, tablename, optype, primaryKey, newRow, oldRow, timestamp) VALUES ('main', 'todos', 'DELETE', json_object('id', old."id"), NULL, json_object('id', old."id", 'title', old."title"), NULL); END;
	// CREATE TRIGGER "guard_main_todos_primarykey" BEFORE INSERT ON "todos" WHEN (new."id" IS NULL) AND 1 IS NOT (SELECT flag FROM _electric_trigger_settings WHERE tablename = 'main.todos') BEGIN SELECT RAISE(IGNORE); END;
}
