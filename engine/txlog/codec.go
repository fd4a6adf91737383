package txlog

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/electric-sql/electric-go/engine/merge"
)

// The entry format below is hand-written (no reflection) because the
// sequencer encodes every entry it commits and every reader
// decodes every entry it replays. It starts with a format byte so
// a later format can be told apart.
// Row states use merge's own codec (merge.AppendRow / merge.UnmarshalRow).
//
// Format 3 (txlog format 3): format byte, offset, origin, eff, commit
// time, MaxEff, changes, flags byte. Formats 1 and 2 had a per-origin clock
// where MaxEff is (format 2 added a flags byte after the changes, format 1
// had none); only DecodeLegacyEntry reads them, for the txlog upgrade that
// rewrites them.
const (
	entryFormat1     byte = 1
	entryFormatFlags byte = 2
	entryFormat      byte = 3
)

// Entry flag bits.
const (
	flagEchoSafe byte = 1 << iota
)

var errShort = errors.New("truncated record")

func appendString(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendValue(b []byte, v merge.Value) []byte {
	if v.Null {
		return append(b, 1)
	}
	b = append(b, 0)
	return appendString(b, v.Text)
}

// AppendEntry appends the binary encoding of e to b.
func AppendEntry(b []byte, e *Entry) []byte {
	var flags byte
	if e.EchoSafe {
		flags |= flagEchoSafe
	}
	b = append(b, entryFormat)
	b = binary.AppendUvarint(b, e.Offset)
	b = appendString(b, e.Origin)
	b = binary.AppendUvarint(b, e.Eff)
	b = binary.AppendUvarint(b, e.CommitTime)
	b = binary.AppendUvarint(b, e.MaxEff)
	b = binary.AppendUvarint(b, uint64(len(e.Changes)))
	for i := range e.Changes {
		c := &e.Changes[i]
		b = appendString(b, c.Table)
		b = appendString(b, c.Key)
		if c.Deleted {
			b = append(b, 1)
		} else {
			b = append(b, 0)
		}
		if c.Row == nil {
			b = append(b, 0) // nil map
			continue
		}
		b = append(b, 1)
		b = binary.AppendUvarint(b, uint64(len(c.Row)))
		for name, v := range c.Row {
			b = appendString(b, name)
			b = appendValue(b, v)
		}
	}
	return append(b, flags)
}

// decoder reads the formats above. Strings are sliced out of one string copy
// of the whole record: one allocation instead of one per string. Callers get
// records that share that backing memory, which is fine because decoded
// entries and rows are kept or dropped as a whole.
type decoder struct {
	s   string
	pos int
	err error
}

func (d *decoder) fail() {
	if d.err == nil {
		d.err = errShort
	}
}

func (d *decoder) byte() byte {
	if d.err != nil || d.pos >= len(d.s) {
		d.fail()
		return 0
	}
	c := d.s[d.pos]
	d.pos++
	return c
}

func (d *decoder) uvarint() uint64 {
	if d.err != nil {
		return 0
	}
	var x uint64
	var shift uint
	for i := 0; i < binary.MaxVarintLen64; i++ {
		if d.pos >= len(d.s) {
			d.fail()
			return 0
		}
		c := d.s[d.pos]
		d.pos++
		if c < 0x80 {
			if i == binary.MaxVarintLen64-1 && c > 1 {
				d.err = errors.New("varint overflows 64 bits")
				return 0
			}
			return x | uint64(c)<<shift
		}
		x |= uint64(c&0x7f) << shift
		shift += 7
	}
	d.err = errors.New("varint overflows 64 bits")
	return 0
}

// count reads a length and checks it against the bytes left, so a corrupt
// record cannot make the decoder allocate huge maps.
func (d *decoder) count(minSize int) int {
	n := d.uvarint()
	if d.err != nil {
		return 0
	}
	if n > uint64(len(d.s)-d.pos)/uint64(minSize) {
		d.fail()
		return 0
	}
	return int(n)
}

func (d *decoder) string() string {
	n := d.count(1)
	if d.err != nil {
		return ""
	}
	s := d.s[d.pos : d.pos+n]
	d.pos += n
	return s
}

func (d *decoder) value() merge.Value {
	switch d.byte() {
	case 0:
		return merge.Value{Text: d.string()}
	case 1:
		return merge.Value{Null: true}
	default:
		if d.err == nil {
			d.err = errors.New("bad value tag")
		}
		return merge.Value{}
	}
}

// skipClock reads past a per-origin clock of formats 1 and 2.
func (d *decoder) skipClock() {
	n := d.count(2)
	for i := 0; i < n && d.err == nil; i++ {
		d.string()
		d.uvarint()
	}
}

func (d *decoder) bool() bool {
	switch d.byte() {
	case 0:
		return false
	case 1:
		return true
	default:
		if d.err == nil {
			d.err = errors.New("bad boolean")
		}
		return false
	}
}

func (d *decoder) finish(what string) error {
	if d.err == nil && d.pos != len(d.s) {
		d.err = fmt.Errorf("%d trailing bytes", len(d.s)-d.pos)
	}
	if d.err != nil {
		return fmt.Errorf("decode %s: %w", what, d.err)
	}
	return nil
}

// DecodeEntry decodes a record written by AppendEntry.
func DecodeEntry(b []byte) (*Entry, error) {
	if len(b) > 0 && (b[0] == entryFormat1 || b[0] == entryFormatFlags) {
		return nil, fmt.Errorf("decode entry: format %d (txlog format 2 or before), which the upgrade to txlog format 3 rewrites", b[0])
	}
	return decodeEntry(b)
}

// DecodeLegacyEntry decodes an entry of format 1 or 2 (txlog format 2 and
// before): its per-origin clock is dropped and MaxEff left 0. Only the txlog
// upgrade that rewrites such entries uses it.
func DecodeLegacyEntry(b []byte) (*Entry, error) {
	if len(b) > 0 && b[0] == entryFormat {
		return nil, fmt.Errorf("decode legacy entry: format %d is current", b[0])
	}
	return decodeEntry(b)
}

func decodeEntry(b []byte) (*Entry, error) {
	d := decoder{s: string(b)}
	f := d.byte()
	if d.err == nil && f != entryFormat1 && f != entryFormatFlags && f != entryFormat {
		return nil, fmt.Errorf("decode entry: unknown format %d", f)
	}
	e := &Entry{}
	e.Offset = d.uvarint()
	e.Origin = d.string()
	e.Eff = d.uvarint()
	e.CommitTime = d.uvarint()
	if f == entryFormat {
		e.MaxEff = d.uvarint()
	} else {
		d.skipClock()
	}
	n := d.count(4)
	if n > 0 {
		e.Changes = make([]RowChange, n)
	}
	for i := 0; i < n && d.err == nil; i++ {
		c := &e.Changes[i]
		c.Table = d.string()
		c.Key = d.string()
		c.Deleted = d.bool()
		if !d.bool() {
			continue
		}
		m := d.count(2)
		if d.err != nil {
			break
		}
		c.Row = make(map[string]merge.Value, m)
		for j := 0; j < m && d.err == nil; j++ {
			name := d.string()
			c.Row[name] = d.value()
		}
	}
	if f != entryFormat1 {
		flags := d.byte()
		if d.err == nil && flags&^flagEchoSafe != 0 {
			d.err = fmt.Errorf("unknown entry flags %#x", flags)
		}
		e.EchoSafe = flags&flagEchoSafe != 0
	}
	if err := d.finish("entry"); err != nil {
		return nil, err
	}
	return e, nil
}
