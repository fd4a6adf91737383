package satellite

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"reflect"
	"strings"
	"testing"

	"github.com/electric-sql/electric-go/engine/merge"
	"github.com/electric-sql/electric-go/engine/satellite/satpb"
	"github.com/electric-sql/electric-go/engine/schema"
	"github.com/electric-sql/electric-go/engine/txlog"
	"github.com/electric-sql/electric-go/internal/testkit"
)

var clientOwned = &satpb.SatRelation{SchemaName: "public", TableName: "owned", RelationId: 1,
	Columns: []*satpb.SatRelationColumn{{Name: "id", Type: "TEXT"}, {Name: "value", Type: "TEXT"}, {Name: OwnerColumn, Type: "TEXT"}}}

func ownedOp(id, value, owner string) merge.Op {
	o := txt(owner)
	if owner == "" {
		o = null
	}
	return merge.Op{Kind: merge.OpInsert, Table: "public.owned", Key: id,
		Columns: map[string]merge.Value{"id": txt(id), "value": txt(value), OwnerColumn: o}}
}

// The ownership filter works per row: in one transaction each user gets
// its own rows and the unowned ones (DESIGN.md), and a transaction left
// with no row for a user is not sent to that user at all.
func TestOutboundOwnershipPerRow(t *testing.T) {
	env := newEnv(t, nil)
	c := env.dial()
	c.handshake("cli", "alice", fromFirst)
	env.write("pg_a", ownedOp("1", "a", "alice"), ownedOp("2", "b", "bob"), ownedOp("3", "n", ""),
		merge.Op{Kind: merge.OpInsert, Table: "public.owned", Key: "4",
			Columns: map[string]merge.Value{"id": txt("4"), "value": txt("e"), OwnerColumn: txt("")}})
	env.write("pg_a", ownedOp("5", "b only", "bob"))
	off := env.write("pg_a", ownedOp("6", "a again", "alice"))
	rels := map[uint32]*satpb.SatRelation{}
	_, ops := c.recvTx(rels)
	var ids []string
	for _, op := range ops {
		_, row := rowOf(t, rels, op)
		ids = append(ids, row["id"].Text)
	}
	if strings.Join(ids, ",") != "1,3,4" {
		t.Fatalf("alice got rows %v", ids)
	}
	b, ops := c.recvTx(rels)
	if !bytes.Equal(b.Lsn, ServerLSN(off)) || len(ops) != 1 {
		t.Fatalf("bob's transaction was not skipped: got %x", b.Lsn)
	}
	// Bob's row was deleted: alice hears nothing of it either.
	env.write("pg_a", merge.Op{Kind: merge.OpDelete, Table: "public.owned", Key: "2"})
	off = env.write("pg_a", merge.Op{Kind: merge.OpDelete, Table: "public.owned", Key: "1"})
	b, ops = c.recvTx(rels)
	if kind, row := rowOf(t, rels, ops[0]); !bytes.Equal(b.Lsn, ServerLSN(off)) || kind != "delete" || row["id"] != txt("1") {
		t.Fatalf("got %x %s %v", b.Lsn, kind, row)
	}
}

// Inbound writes to a row owned by someone else, or that would hand a row
// to someone else, are not applied; the rest of the transaction is, and
// the transaction is acked so the client moves on.
func TestInboundOwnership(t *testing.T) {
	env := newEnv(t, nil)
	env.write("pg_a", ownedOp("bobs", "b", "bob"), ownedOp("free", "f", ""))
	c := env.dial()
	c.handshake("cli", "alice", fromFirst)
	c.recvTx(map[uint32]*satpb.SatRelation{})
	c.send(&satpb.SatPingResp{Lsn: c.lastLSN})
	testkit.Eventually(t, "ack", func() bool { return env.srv.Sessions()[0].AckedOffset == 1 })
	c.send(clientOwned)
	c.send(oplog(begin(be32(3), nowMs()),
		insert(1, txt("bobs"), txt("stolen"), txt("alice")),
		insert(1, txt("gift"), txt("x"), txt("bob")),
		insert(1, txt("mine"), txt("m"), txt("alice")),
		commit()))
	if ack := nextAck(c); !bytes.Equal(ack.Lsn, be32(3)) {
		t.Fatalf("ack %x", ack.Lsn)
	}
	c.send(oplog(begin(be32(5), nowMs()),
		del(1, txt("bobs"), txt("b"), txt("bob")),
		insert(1, txt("free"), txt("taken"), txt("alice")),
		commit()))
	if ack := nextAck(c); !bytes.Equal(ack.Lsn, be32(5)) {
		t.Fatalf("ack %x", ack.Lsn)
	}
	if r := env.row("public.owned", "bobs"); r["value"] != txt("b") || r[OwnerColumn] != txt("bob") {
		t.Fatalf("bob's row: %v", r)
	}
	if r := env.row("public.owned", "gift"); r != nil {
		t.Fatalf("row given to bob: %v", r)
	}
	if r := env.row("public.owned", "mine"); r[OwnerColumn] != txt("alice") {
		t.Fatalf("alice's own row: %v", r)
	}
	if r := env.row("public.owned", "free"); r["value"] != txt("taken") || r[OwnerColumn] != txt("alice") {
		t.Fatalf("unowned row: %v", r)
	}
	if st := env.srv.Status(); st.RejectedOps != 3 {
		t.Fatalf("rejected %d, want 3", st.RejectedOps)
	}
	if s := env.srv.Sessions(); len(s) != 1 || s[0].RejectedOps != 3 || s[0].TxIn != 2 {
		t.Fatalf("session %+v", s)
	}
}

func TestOwned(t *testing.T) {
	tests := []struct {
		name     string
		row      map[string]merge.Value
		hasOwner bool
		alice    bool // owned(row, "alice")
	}{
		{"no owner column", map[string]merge.Value{"id": txt("1")}, false, true},
		{"NULL owner", map[string]merge.Value{OwnerColumn: null}, false, true},
		{"empty owner", map[string]merge.Value{OwnerColumn: txt("")}, false, true},
		{"the user's row", map[string]merge.Value{OwnerColumn: txt("alice")}, true, true},
		{"another user's row", map[string]merge.Value{OwnerColumn: txt("bob")}, true, false},
		{"owner compared exactly", map[string]merge.Value{OwnerColumn: txt("Alice")}, true, false},
		{"no image (a delete)", nil, false, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := hasOwner(tt.row); got != tt.hasOwner {
				t.Errorf("hasOwner = %v, want %v", got, tt.hasOwner)
			}
			if got := owned(tt.row, "alice"); got != tt.alice {
				t.Errorf("owned by alice = %v, want %v", got, tt.alice)
			}
		})
	}
}

// rowsLog is a Log that only answers Row, from a map by key.
type rowsLog struct {
	Log
	rows map[string]*merge.Row
	err  error
}

func (l rowsLog) Row(_, key string) (*merge.Row, error) { return l.rows[key], l.err }

// liveRow is a merged row that exists, with the given owner ("" for none).
func liveRow(owner string) *merge.Row {
	r := &merge.Row{Cells: map[string]merge.Cell{"id": {Value: txt("x")}}, Tags: []merge.Tag{{Origin: "pg_a", Eff: 1}}}
	if owner != "" {
		r.Cells[OwnerColumn] = merge.Cell{Value: txt(owner)}
	}
	return r
}

// The ownership rule refuses a write alone when the row it writes or the row it
// replaces belongs to another user; the other writes of the transaction
// are kept, in order.
func TestOwnedOps(t *testing.T) {
	bobs := liveRow("bob")
	deadBobs := liveRow("bob")
	deadBobs.Tags = nil
	rows := map[string]*merge.Row{"bobs": bobs, "alices": liveRow("alice"), "free": liveRow(""), "gone": deadBobs}
	tests := []struct {
		name string
		op   merge.Op
		kept bool
	}{
		{"new row of the user", ownedOp("new", "v", "alice"), true},
		{"new unowned row", ownedOp("new", "v", ""), true},
		{"new row given to another user", ownedOp("new", "v", "bob"), false},
		{"update of the user's row", ownedOp("alices", "v", "alice"), true},
		{"user's row given away", ownedOp("alices", "v", "bob"), false},
		{"unowned row taken", ownedOp("free", "v", "alice"), true},
		{"another user's row taken", ownedOp("bobs", "v", "alice"), false},
		{"another user's row updated as unowned", ownedOp("bobs", "v", ""), false},
		// Its last image keeps bob's cells: a write that does not win them
		// all would revive bob's row, or show alice bob's values.
		{"another user's deleted row reused", ownedOp("gone", "v", "alice"), false},
		{"delete of the user's row", merge.Op{Kind: merge.OpDelete, Table: "public.owned", Key: "alices",
			Old: map[string]merge.Value{OwnerColumn: txt("alice")}}, true},
		{"delete of another user's row", merge.Op{Kind: merge.OpDelete, Table: "public.owned", Key: "bobs",
			Old: map[string]merge.Value{OwnerColumn: txt("alice")}}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := testSession(rowsLog{rows: rows})
			mine := ownedOp("mine", "m", "alice")
			sc, err := s.screen([]merge.Op{mine, tt.op, mine})
			if err != nil {
				t.Fatal(err)
			}
			s.report(sc.refs)
			kept := sc.ops
			want, rejected := []merge.Op{mine, tt.op, mine}, uint64(0)
			if !tt.kept {
				want, rejected = []merge.Op{mine, mine}, 1
			}
			if !reflect.DeepEqual(kept, want) {
				t.Errorf("kept %v, want %v", kept, want)
			}
			if got := s.rejected.Load(); got != rejected {
				t.Errorf("rejected %d, want %d", got, rejected)
			}
			if got := s.srv.stats.rejectedOps.Load(); got != rejected {
				t.Errorf("server rejected %d, want %d", got, rejected)
			}
			if len(sc.comp) != int(rejected) || rejected == 1 && sc.comp[0].key != tt.op.Key {
				t.Errorf("compensated %v, want the refused row", sc.comp)
			}
		})
	}
}

// A row that cannot be read is an error, not a silent refusal or a write
// let through.
func TestOwnedOpsReadError(t *testing.T) {
	boom := errors.New("disk on fire")
	s := testSession(rowsLog{err: boom})
	if _, err := s.screen([]merge.Op{ownedOp("1", "v", "alice")}); !errors.Is(err, boom) {
		t.Fatalf("err %v, want %v", err, boom)
	}
}

// encodeOps sends each user its own rows and the unowned ones of an entry,
// and nothing when none is left.
func TestEncodeOpsOwnership(t *testing.T) {
	tables := &tableIndex{byID: map[string]*schema.Table{"public.owned": &ownedTable}, relID: map[string]uint32{"public.owned": 7}}
	change := func(id, owner string, deleted bool) txlog.RowChange {
		o := txt(owner)
		if owner == "" {
			o = null
		}
		return txlog.RowChange{Table: "public.owned", Key: id, Deleted: deleted,
			Row: map[string]merge.Value{"id": txt(id), "value": txt("v"), OwnerColumn: o}}
	}
	e := &txlog.Entry{Offset: 3, Eff: 5000, Changes: []txlog.RowChange{
		change("a1", "alice", false), change("b1", "bob", false), change("n1", "", false),
		change("a2", "alice", true), change("b2", "bob", true),
	}}
	for user, want := range map[string][]string{
		"alice": {"a1", "n1", "a2"},
		"bob":   {"b1", "n1", "b2"},
		"carol": {"n1"},
	} {
		frames, err := encodeOps(e, tables, user, 0)
		if err != nil {
			t.Fatal(err)
		}
		var got []string
		for _, f := range frames {
			m, err := satpb.Decode(f)
			if err != nil {
				t.Fatal(err)
			}
			for _, op := range m.(*satpb.SatOpLog).Ops {
				var row *satpb.SatOpRow
				switch o := op.Op.(type) {
				case *satpb.SatTransOp_Update:
					row = o.Update.RowData
				case *satpb.SatTransOp_Delete:
					row = o.Delete.OldRowData
				default:
					continue
				}
				vals, err := decodeRow(row, len(ownedTable.Columns))
				if err != nil {
					t.Fatal(err)
				}
				got = append(got, vals[0].Text)
			}
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s gets %v, want %v", user, got, want)
		}
	}
	only := &txlog.Entry{Offset: 4, Changes: []txlog.RowChange{change("b3", "bob", false)}}
	if frames, err := encodeOps(only, tables, "alice", 0); err != nil || frames != nil {
		t.Fatalf("entry with only bob's row: alice gets %d frames, err %v", len(frames), err)
	}
}

// testSession is a session of alice on a server with the owned table.
func testSession(l Log) *session {
	srv := &Server{opts: Options{Log: l, Tables: func() []schema.Table { return []schema.Table{ownedTable} }}}
	s := &session{srv: srv, log: slog.New(slog.DiscardHandler), userID: "alice", ctx: context.Background()}
	return s
}
