package satellite

import (
	"bytes"
	"testing"

	"github.com/electric-sql/electric-go/engine/merge"
	"github.com/electric-sql/electric-go/engine/satellite/satpb"
)

// rowsByID decodes a transaction's ops into id → row, all of them updates.
func rowsByID(t *testing.T, rels map[uint32]*satpb.SatRelation, ops []*satpb.SatTransOp) map[string]map[string]merge.Value {
	t.Helper()
	out := map[string]map[string]merge.Value{}
	for _, op := range ops {
		kind, row := rowOf(t, rels, op)
		if kind != "update" {
			t.Fatalf("backfill op %s", kind)
		}
		out[row["id"].Text] = row
	}
	return out
}

// When the streamed tables grow while a client is connected and idle, it
// gets the SatRelation with the new columns and then the merged rows of
// what it gained, at the offset it had: only its own and unowned rows.
func TestBackfillOnTablesChanged(t *testing.T) {
	env := newEnv(t, nil)
	narrow := itemsTable
	narrow.Columns = narrow.Columns[:2] // without content_b
	env.setTables(narrow)
	env.write("pg_a", itemOp("k1", "one", txt("b1")), itemOp("k2", "two", null),
		ownedOp("o1", "alice's", "alice"), ownedOp("o2", "bob's", "bob"), ownedOp("o3", "nobody's", ""))
	off := env.write("pg_a", merge.Op{Kind: merge.OpDelete, Table: "public.items", Key: merge.EncodeKey([]merge.Value{txt("k2")}),
		Columns: map[string]merge.Value{"id": txt("k2")}})
	c := env.dial()
	c.handshake("cli", "alice", fromFirst)
	rels := map[uint32]*satpb.SatRelation{}
	c.recvTx(rels)
	c.recvTx(rels)
	// A second client resumes at the head: it is sent nothing before the
	// change, and must be backfilled all the same.
	c2 := env.dial()
	c2.handshake("cli2", "alice", &satpb.SatInStartReplicationReq{Lsn: ServerLSN(off)})

	env.setTables(itemsTable, ownedTable)
	env.srv.TablesChanged()
	b, ops := c.recvTx(rels)
	if !bytes.Equal(b.Lsn, ServerLSN(off)) {
		t.Fatalf("backfill at lsn %x, want the client's offset %d", b.Lsn, off)
	}
	rows := rowsByID(t, rels, ops)
	if len(rows) != 3 || rows["k1"]["content_b"] != txt("b1") || rows["o1"]["value"] != txt("alice's") || rows["o3"] == nil {
		t.Fatalf("backfilled rows %v (want k1 with content_b, o1 and o3; not the deleted k2 nor bob's o2)", rows)
	}
	for _, r := range rels {
		if r.TableName == "items" && len(r.Columns) != 3 {
			t.Fatalf("items re-announced with %d columns", len(r.Columns))
		}
	}
	rels2 := map[uint32]*satpb.SatRelation{}
	b, ops = c2.recvTx(rels2)
	if rows := rowsByID(t, rels2, ops); !bytes.Equal(b.Lsn, ServerLSN(off)) || len(rows) != 3 {
		t.Fatalf("idle client's backfill at %x: %v", b.Lsn, rows)
	}
	// The stream goes on after it.
	off = env.write("pg_a", itemOp("k3", "three", txt("b3")))
	b, ops = c.recvTx(rels)
	if !bytes.Equal(b.Lsn, ServerLSN(off)) || len(ops) != 1 {
		t.Fatalf("next entry: lsn %x, %d ops", b.Lsn, len(ops))
	}
}

// A client resuming after a publish it missed gets the rows of the tables
// Options.Gained names before the rest of the log; one resuming after it
// does not.
func TestBackfillOnResume(t *testing.T) {
	var publishedAt uint64
	env := newEnv(t, func(o *Options) {
		o.Gained = func(after uint64) []string {
			if after <= publishedAt {
				return []string{"public.items"}
			}
			return nil
		}
	})
	env.write("pg_a", itemOp("k1", "one", txt("b1")))
	publishedAt = env.write("pg_a", itemOp("k2", "two", txt("b2")))
	c := env.dial()
	c.handshake("cli", "alice", &satpb.SatInStartReplicationReq{Lsn: ServerLSN(publishedAt)})
	rels := map[uint32]*satpb.SatRelation{}
	b, ops := c.recvTx(rels)
	if !bytes.Equal(b.Lsn, ServerLSN(publishedAt)) {
		t.Fatalf("backfill at lsn %x", b.Lsn)
	}
	if rows := rowsByID(t, rels, ops); len(rows) != 2 || rows["k1"]["content_b"] != txt("b1") {
		t.Fatalf("backfilled rows %v", rows)
	}
	_ = c.conn.Close()

	at := env.write("pg_a", itemOp("k3", "three", null))
	off := env.write("pg_a", itemOp("k4", "four", null))
	c = env.dial()
	c.handshake("cli", "alice", &satpb.SatInStartReplicationReq{Lsn: ServerLSN(at)})
	b, ops = c.recvTx(map[uint32]*satpb.SatRelation{})
	if !bytes.Equal(b.Lsn, ServerLSN(off)) || len(ops) != 1 {
		t.Fatalf("after the publish: lsn %x, %d ops (want only the entry at %d)", b.Lsn, len(ops), off)
	}
}
