package pgsource

import (
	"encoding/binary"
	"errors"
	"fmt"
	"sort"

	"github.com/electric-sql/electric-go/engine/merge"
)

// SnapshotSource is the source name under which the snapshot reader of
// connector name stores its progress (a txlog position like the stream's,
// written atomically with each chunk it merges). Connector names cannot
// contain ':', so it never collides with one.
func SnapshotSource(name string) string { return "snapshot:" + name }

// snapProgress is what the snapshot reader has done: the tables whose
// existing rows were read in full, and how far it is into the current one.
// A connector whose state has no progress stored (a new connector, or a
// state written by a version without snapshots) has read no table.
type snapProgress struct {
	done    map[uint32]string // table oid -> qualified name, read in full
	table   uint32            // oid of the table being read, 0 when none
	name    string            // its qualified name
	lastKey []merge.Value     // key values (primary key order) of its last row read
	rows    uint64            // rows read in all, for the status
}

const snapProgressVersion = 1

// isDone reports whether the table (oid, name) was read in full. A table
// renamed, or dropped and created again (a new oid), is read again:
// re-reading rows the state knows changes nothing.
func (p *snapProgress) isDone(oid uint32, name string) bool {
	n, ok := p.done[oid]
	return ok && n == name
}

// encode: version, rows, the done tables (oid, name) sorted by oid, the
// current table (oid, name) and its last key (count, then per value a null
// flag and the text). Integers are uvarints, strings length-prefixed.
func (p *snapProgress) encode() []byte {
	b := []byte{snapProgressVersion}
	b = binary.AppendUvarint(b, p.rows)
	oids := make([]uint32, 0, len(p.done))
	for oid := range p.done {
		oids = append(oids, oid)
	}
	sort.Slice(oids, func(i, j int) bool { return oids[i] < oids[j] })
	b = binary.AppendUvarint(b, uint64(len(oids)))
	for _, oid := range oids {
		b = binary.AppendUvarint(b, uint64(oid))
		b = appendString(b, p.done[oid])
	}
	b = binary.AppendUvarint(b, uint64(p.table))
	b = appendString(b, p.name)
	b = binary.AppendUvarint(b, uint64(len(p.lastKey)))
	for _, v := range p.lastKey {
		if v.Null {
			b = append(b, 1)
		} else {
			b = append(b, 0)
		}
		b = appendString(b, v.Text)
	}
	return b
}

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

var errSnapProgress = errors.New("decoding the stored snapshot progress")

// decodeSnapProgress parses encode's output; nil or empty is no progress.
func decodeSnapProgress(b []byte) (snapProgress, error) {
	p := snapProgress{done: map[uint32]string{}}
	if len(b) == 0 {
		return p, nil
	}
	if b[0] != snapProgressVersion {
		return p, fmt.Errorf("%w: unknown version %d", errSnapProgress, b[0])
	}
	d := progDecoder{b: b[1:]}
	p.rows = d.uvarint()
	n := d.count()
	for i := uint64(0); i < n && d.err == nil; i++ {
		oid := d.oid()
		p.done[oid] = d.string()
	}
	p.table = d.oid()
	p.name = d.string()
	k := d.count()
	for i := uint64(0); i < k && d.err == nil; i++ {
		null := d.byte() == 1
		p.lastKey = append(p.lastKey, merge.Value{Null: null, Text: d.string()})
	}
	if d.err == nil && len(d.b) != 0 {
		d.err = fmt.Errorf("%d trailing bytes", len(d.b))
	}
	if d.err != nil {
		return snapProgress{done: map[uint32]string{}}, fmt.Errorf("%w: %w", errSnapProgress, d.err)
	}
	return p, nil
}

type progDecoder struct {
	b   []byte
	err error
}

func (d *progDecoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	v, n := binary.Uvarint(d.b)
	if n <= 0 {
		d.err = errors.New("truncated integer")
		return 0
	}
	d.b = d.b[n:]
	return v
}

// count reads a count no larger than the bytes left (each item takes one).
func (d *progDecoder) count() uint64 {
	n := d.uvarint()
	if d.err == nil && n > uint64(len(d.b)) {
		d.err = fmt.Errorf("count %d beyond the %d bytes left", n, len(d.b))
		return 0
	}
	return n
}

func (d *progDecoder) oid() uint32 {
	v := d.uvarint()
	if d.err == nil && v > 1<<32-1 {
		d.err = fmt.Errorf("oid %d out of range", v)
	}
	return uint32(v)
}

func (d *progDecoder) byte() byte {
	if d.err != nil {
		return 0
	}
	if len(d.b) == 0 {
		d.err = errors.New("truncated")
		return 0
	}
	c := d.b[0]
	d.b = d.b[1:]
	return c
}

func (d *progDecoder) string() string {
	n := d.count()
	if d.err != nil {
		return ""
	}
	s := string(d.b[:n])
	d.b = d.b[n:]
	return s
}
