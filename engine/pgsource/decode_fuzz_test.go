package pgsource

import (
	"context"
	"encoding/binary"
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/jackc/pglogrepl"

	"github.com/electric-sql/electric-go/engine/merge"
	"github.com/electric-sql/electric-go/internal/fuzzseed"
)

// pgoutput v1 messages as Postgres writes them (proto.c); the builders
// below make the seeds. Relation 16384 is public.items (id, content,
// content_b; key id), 16390 public.multi (a, b, v; key (a, b)), 16400
// public.nokey, 16500 electric.migrations.

func pgBegin(finalLSN uint64, xid uint32) []byte {
	b := []byte{'B'}
	b = binary.BigEndian.AppendUint64(b, finalLSN)
	b = binary.BigEndian.AppendUint64(b, 784111777000000) // 2024-11-06 in Postgres epoch µs
	return binary.BigEndian.AppendUint32(b, xid)
}

func pgCommit(lsn, end uint64) []byte {
	b := []byte{'C', 0}
	b = binary.BigEndian.AppendUint64(b, lsn)
	b = binary.BigEndian.AppendUint64(b, end)
	return binary.BigEndian.AppendUint64(b, 784111777000000)
}

func pgOrigin(lsn uint64, name string) []byte {
	b := binary.BigEndian.AppendUint64([]byte{'O'}, lsn)
	return append(append(b, name...), 0)
}

func pgRelation(id uint32, nsp, name string, cols ...string) []byte {
	b := binary.BigEndian.AppendUint32([]byte{'R'}, id)
	b = append(append(b, nsp...), 0)
	b = append(append(b, name...), 0)
	b = append(b, 'd')
	b = binary.BigEndian.AppendUint16(b, uint16(len(cols)))
	for i, c := range cols {
		b = append(b, byte(max(0, 1-i))) // first column flagged as key
		b = append(append(b, c...), 0)
		b = binary.BigEndian.AppendUint32(b, 25)
		b = binary.BigEndian.AppendUint32(b, 0xffffffff)
	}
	return b
}

// pgTuple: "n" is NULL, "u" unchanged TOAST, anything else a text value.
func pgTuple(b []byte, vals ...string) []byte {
	b = binary.BigEndian.AppendUint16(b, uint16(len(vals)))
	for _, v := range vals {
		switch v {
		case "n", "u":
			b = append(b, v[0])
		default:
			b = append(b, 't')
			b = binary.BigEndian.AppendUint32(b, uint32(len(v)))
			b = append(b, v...)
		}
	}
	return b
}

func pgInsert(rel uint32, vals ...string) []byte {
	return pgTuple(append(binary.BigEndian.AppendUint32([]byte{'I'}, rel), 'N'), vals...)
}

// pgUpdate with an old tuple of kind 'O' (full) or 'K' (key), or none (0).
func pgUpdate(rel uint32, oldKind byte, old []string, vals ...string) []byte {
	b := binary.BigEndian.AppendUint32([]byte{'U'}, rel)
	if oldKind != 0 {
		b = pgTuple(append(b, oldKind), old...)
	}
	return pgTuple(append(b, 'N'), vals...)
}

func pgDelete(rel uint32, kind byte, old ...string) []byte {
	return pgTuple(append(binary.BigEndian.AppendUint32([]byte{'D'}, rel), kind), old...)
}

func pgTruncate(rels ...uint32) []byte {
	b := binary.BigEndian.AppendUint32([]byte{'T'}, uint32(len(rels)))
	b = append(b, 0)
	for _, r := range rels {
		b = binary.BigEndian.AppendUint32(b, r)
	}
	return b
}

func pgType(id uint32, nsp, name string) []byte {
	b := binary.BigEndian.AppendUint32([]byte{'Y'}, id)
	return append(append(append(append(b, nsp...), 0), name...), 0)
}

// joinMessages frames messages as a fuzz input: each prefixed by its length,
// 4 bytes big-endian (a short last message takes what is left).
func joinMessages(msgs ...[]byte) []byte {
	var out []byte
	for _, m := range msgs {
		out = binary.BigEndian.AppendUint32(out, uint32(len(m)))
		out = append(out, m...)
	}
	return out
}

func splitMessages(data []byte) [][]byte {
	var msgs [][]byte
	for len(data) >= 4 {
		n := uint64(binary.BigEndian.Uint32(data))
		data = data[4:]
		n = min(n, uint64(len(data)))
		msgs = append(msgs, data[:n])
		data = data[n:]
	}
	return msgs
}

var (
	relItems = pgRelation(16384, "public", "items", "id", "content", "content_b")
	relMulti = pgRelation(16390, "public", "multi", "a", "b", "v")
	relNoKey = pgRelation(16400, "public", "nokey", "x")
	relElec  = pgRelation(16500, "electric", "migrations", "id", "version")
)

func pgoutputSeeds() []fuzzseed.Seed {
	seed := func(name string, msgs ...[]byte) fuzzseed.Seed {
		return fuzzseed.Seed{Name: name, Args: []any{joinMessages(msgs...)}}
	}
	return []fuzzseed.Seed{
		seed("insert-update-delete", relItems, pgBegin(0x1000, 700),
			pgInsert(16384, "1", "hello", "n"),
			pgUpdate(16384, 0, nil, "1", "hello again", "b"),
			pgUpdate(16384, 'O', []string{"1", "hello again", "b"}, "1", "u", "c"),
			pgDelete(16384, 'K', "1", "n", "n"),
			pgCommit(0x1000, 0x1010)),
		seed("key-change", relItems, relMulti, pgBegin(0x2000, 701),
			pgUpdate(16384, 'K', []string{"1", "n", "n"}, "2", "moved", "n"),
			pgInsert(16390, "a", "b", "v"),
			pgUpdate(16390, 'O', []string{"a", "b", "v"}, "a", "c", "v"),
			pgDelete(16390, 'O', "a", "c", "v"),
			pgCommit(0x2000, 0x2010)),
		seed("echo-with-origin", relItems, pgBegin(0x3000, 702), pgOrigin(0x55, "pg_16999"),
			pgInsert(16384, "3", "echo", "n"), pgCommit(0x3000, 0x3010)),
		seed("skipped-and-electric", relNoKey, relElec, pgType(90000, "public", "mood"), pgBegin(0x4000, 703),
			pgInsert(16400, "x"), pgInsert(16500, "1", "v1"), pgCommit(0x4000, 0x4010)),
		seed("truncate", relItems, relMulti, pgBegin(0x5000, 704), pgTruncate(16384, 16390), pgCommit(0x5000, 0x5010)),
		seed("logical-message", pgBegin(0x6000, 705), append([]byte("M\x01"), binary.BigEndian.AppendUint64(nil, 0x6000)...), pgCommit(0x6000, 0x6010)),
		seed("change-outside-tx", relItems, pgInsert(16384, "1", "x", "n")),
		seed("tuple-too-long", relItems, pgBegin(0x7000, 706), pgInsert(16384, "1", "x", "n", "extra")),
		// A text value claiming 4 GiB, and a tuple claiming 65535 columns.
		seed("hostile-lengths", relItems, pgBegin(0x8000, 707),
			append(binary.BigEndian.AppendUint32([]byte{'I'}, 16384), 'N', 0, 1, 't', 0xff, 0xff, 0xff, 0xff, 'x'),
			append(binary.BigEndian.AppendUint32([]byte{'I'}, 16384), 'N', 0xff, 0xff, 'n')),
	}
}

// fuzzCatalog resolves relations as the real catalog does, against a fixed
// schema: keys by name, the electric schema flagged, keyless tables skipped.
type fuzzCatalog struct{}

func (fuzzCatalog) resolve(_ context.Context, m *pglogrepl.RelationMessage) (*relation, error) {
	keys := map[string][]string{"public.items": {"id"}, "public.multi": {"a", "b"}, "public.nokey": nil}
	name := m.Namespace + "." + m.RelationName
	rel := &relation{id: m.RelationID, table: name}
	for _, c := range m.Columns {
		rel.cols = append(rel.cols, c.Name)
	}
	if m.Namespace == "electric" {
		rel.electric = true
		return rel, nil
	}
	pk, ok := keys[name]
	if !ok || len(pk) == 0 {
		rel.skip = true
		return rel, nil
	}
	for _, k := range pk {
		idx := -1
		for i, c := range rel.cols {
			if c == k {
				idx = i
			}
		}
		if idx < 0 {
			rel.skip = true
			return rel, nil
		}
		rel.keyIdx = append(rel.keyIdx, idx)
	}
	return rel, nil
}

// FuzzDecodePgoutput feeds a stream of pgoutput messages to the decoder. It
// never panics; what it allocates for a message is bounded by the
// message's size, whatever its length fields claim; a malformed or misplaced message is an error (after which
// the source reconnects, so decoding stops); a committed transaction has at
// most two ops per row change, each on a table of a Relation message, with
// a key that is the encoding of its key columns' values.
func FuzzDecodePgoutput(f *testing.F) {
	fuzzseed.Sync(f, pgoutputSeeds())
	f.Fuzz(func(t *testing.T, data []byte) {
		d := newDecoder(fuzzCatalog{}, nopWarner{})
		ctx := context.Background()
		var ms runtime.MemStats
		// A Relation message may replace a relation after ops on it in the
		// same transaction (a rename in that transaction): an op is checked
		// against the relation it was decoded with, one of those seen.
		seen := map[*relation]bool{}
		for _, msg := range splitMessages(data) {
			runtime.ReadMemStats(&ms)
			before := ms.TotalAlloc
			tx, err := d.handle(ctx, msg)
			runtime.ReadMemStats(&ms)
			for _, r := range d.rels {
				seen[r] = true
			}
			if n := ms.TotalAlloc - before; n > uint64(256*len(msg)+1<<20) {
				t.Fatalf("a %d-byte message allocated %d bytes", len(msg), n)
			}
			if err != nil {
				if tx != nil {
					t.Fatalf("error %v with a transaction", err)
				}
				return
			}
			if tx == nil {
				continue
			}
			if d.inTx() {
				t.Fatal("transaction still open after its commit")
			}
			if len(tx.ops) > 2*tx.rows {
				t.Fatalf("%d ops from %d row changes", len(tx.ops), tx.rows)
			}
			for _, op := range tx.ops {
				checkOp(t, seen, op)
			}
		}
	})
}

// checkOp fails t unless some replicated relation seen in the stream names
// op's table and has key columns whose values in op encode to op.Key.
func checkOp(t *testing.T, seen map[*relation]bool, op merge.Op) {
	var errs []string
	for r := range seen {
		if r.table != op.Table || r.skip || r.electric {
			continue
		}
		err := opMatches(r, op)
		if err == nil {
			return
		}
		errs = append(errs, err.Error())
	}
	if len(errs) == 0 {
		t.Fatalf("op on %s, which no replicated relation names", op.Table)
	}
	t.Fatalf("%v op on %s matches no relation of that name: %s", op.Kind, op.Table, strings.Join(errs, "; "))
}

// opMatches says why op cannot have been decoded with rel, or nil.
func opMatches(rel *relation, op merge.Op) error {
	if op.Kind == merge.OpTruncate {
		return nil
	}
	img := op.Columns
	if op.Kind == merge.OpDelete {
		img = op.Old
	}
	key := make([]merge.Value, len(rel.keyIdx))
	for i, k := range rel.keyIdx {
		v, ok := img[rel.cols[k]]
		if !ok {
			if op.Kind == merge.OpUpdate {
				return nil // an update writes only the changed columns
			}
			return fmt.Errorf("no key column %s in %v", rel.cols[k], img)
		}
		key[i] = v
	}
	if got := merge.EncodeKey(key); got != op.Key {
		return fmt.Errorf("key %q, its key columns say %q", op.Key, got)
	}
	return nil
}
