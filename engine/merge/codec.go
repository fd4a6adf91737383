package merge

import (
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"strings"
)

// Row state encoding (MarshalRow), for the store that persists row states.
// Deterministic (the same row always gives the same bytes) and compact:
// origins are written once and referred to by index.
//
//	version      byte (2)
//	origins      uvarint n, then n × (uvarint len, bytes)
//	cells        uvarint n, then n × (uvarint len, name, flags byte (bit 0: NULL),
//	             [uvarint len, text when not NULL], uvarint eff, uvarint origin index,
//	             uvarint offset)
//	tags         uvarint n, then n × (uvarint origin index, uvarint eff, uvarint offset)
//
// Cells are sorted by name, tags by origin. Version 1 (txlog format 2 and
// before) had cells and tags without offsets and a removed clock after them; only
// UnmarshalLegacyRow reads it, for the txlog upgrade that rewrites it.

const (
	rowCodecVersion       = 2
	legacyRowCodecVersion = 1
)

// ErrBadRow is wrapped by UnmarshalRow's errors.
var ErrBadRow = errors.New("malformed row state")

// MarshalRow encodes r (nil encodes as an empty row).
func MarshalRow(r *Row) []byte { return AppendRow(nil, r) }

// AppendRow appends the encoding of r to dst.
func AppendRow(dst []byte, r *Row) []byte {
	if r == nil {
		r = &Row{}
	}
	var nameBuf [16]string
	names := nameBuf[:0]
	for name := range r.Cells {
		names = append(names, name)
	}
	slices.Sort(names)

	var originBuf [8]string
	origins := originBuf[:0]
	idx := func(o string) uint64 {
		for i, have := range origins {
			if have == o {
				return uint64(i)
			}
		}
		origins = append(origins, o)
		return uint64(len(origins) - 1)
	}
	var tagBuf [8]Tag
	tags := append(tagBuf[:0], r.Tags...)
	slices.SortFunc(tags, func(a, b Tag) int {
		if c := strings.Compare(a.Origin, b.Origin); c != 0 {
			return c
		}
		return cmpUint(a.Eff, b.Eff)
	})
	// Collect origins first, in a fixed order: they are written before the
	// cells.
	for _, name := range names {
		idx(r.Cells[name].Origin)
	}
	for _, t := range tags {
		idx(t.Origin)
	}

	dst = append(dst, rowCodecVersion)
	dst = binary.AppendUvarint(dst, uint64(len(origins)))
	for _, o := range origins {
		dst = appendString(dst, o)
	}
	dst = binary.AppendUvarint(dst, uint64(len(names)))
	for _, name := range names {
		c := r.Cells[name]
		dst = appendString(dst, name)
		if c.Value.Null {
			dst = append(dst, 1)
		} else {
			dst = append(dst, 0)
			dst = appendString(dst, c.Value.Text)
		}
		dst = binary.AppendUvarint(dst, c.Eff)
		dst = binary.AppendUvarint(dst, idx(c.Origin))
		dst = binary.AppendUvarint(dst, c.Offset)
	}
	dst = binary.AppendUvarint(dst, uint64(len(tags)))
	for _, t := range tags {
		dst = binary.AppendUvarint(dst, idx(t.Origin))
		dst = binary.AppendUvarint(dst, t.Eff)
		dst = binary.AppendUvarint(dst, t.Offset)
	}
	return dst
}

func cmpUint(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}

func appendString(dst []byte, s string) []byte {
	dst = binary.AppendUvarint(dst, uint64(len(s)))
	return append(dst, s...)
}

// UnmarshalRow decodes what MarshalRow encoded. The strings of the result
// share one copy of b; b may be reused afterwards.
func UnmarshalRow(b []byte) (*Row, error) {
	d := rowDecoder{s: string(b), version: rowCodecVersion}
	r, err := d.row()
	if err != nil {
		return nil, fmt.Errorf("unmarshal row state: %w", err)
	}
	return r, nil
}

// UnmarshalLegacyRow decodes a row state of codec version 1: its tags come
// without offsets (0) and its removed clock is dropped. Only the txlog
// upgrade that rewrites such states uses it.
func UnmarshalLegacyRow(b []byte) (*Row, error) {
	d := rowDecoder{s: string(b), version: legacyRowCodecVersion}
	r, err := d.row()
	if err != nil {
		return nil, fmt.Errorf("unmarshal row state of codec 1: %w", err)
	}
	return r, nil
}

type rowDecoder struct {
	s       string
	pos     int
	version byte
}

func (d *rowDecoder) fail(what string) error {
	return fmt.Errorf("%w: %s at byte %d", ErrBadRow, what, d.pos)
}

func (d *rowDecoder) uvarint(what string) (uint64, error) {
	v, n := uvarintString(d.s[d.pos:])
	if n <= 0 {
		return 0, d.fail("bad " + what)
	}
	d.pos += n
	return v, nil
}

// count reads a element count and checks it against the bytes left, each
// element taking at least min bytes, so a corrupt count cannot make us
// allocate wildly.
func (d *rowDecoder) count(what string, min int) (int, error) {
	n, err := d.uvarint(what + " count")
	if err != nil {
		return 0, err
	}
	if n > uint64(len(d.s)-d.pos)/uint64(min) {
		return 0, d.fail(what + " count too large")
	}
	return int(n), nil
}

func (d *rowDecoder) str(what string) (string, error) {
	n, err := d.uvarint(what + " length")
	if err != nil {
		return "", err
	}
	if n > uint64(len(d.s)-d.pos) {
		return "", d.fail(what + " past the end")
	}
	v := d.s[d.pos : d.pos+int(n)]
	d.pos += int(n)
	return v, nil
}

func (d *rowDecoder) origin(origins []string) (string, error) {
	i, err := d.uvarint("origin index")
	if err != nil {
		return "", err
	}
	if i >= uint64(len(origins)) {
		return "", d.fail("origin index out of range")
	}
	return origins[i], nil
}

func (d *rowDecoder) row() (*Row, error) {
	if len(d.s) == 0 {
		return nil, d.fail("empty input")
	}
	if d.s[0] != d.version {
		if d.s[0] == legacyRowCodecVersion {
			return nil, d.fail("row state of codec 1, which the txlog upgrade to format 3 rewrites")
		}
		return nil, d.fail(fmt.Sprintf("unknown version %d", d.s[0]))
	}
	d.pos = 1
	n, err := d.count("origin", 1)
	if err != nil {
		return nil, err
	}
	var originBuf [8]string
	origins := originBuf[:0]
	for range n {
		o, err := d.str("origin")
		if err != nil {
			return nil, err
		}
		origins = append(origins, o)
	}
	r := &Row{}
	minCell := 5
	if d.version == legacyRowCodecVersion {
		minCell = 4
	}
	if n, err = d.count("cell", minCell); err != nil {
		return nil, err
	}
	r.Cells = make(map[string]Cell, n)
	for range n {
		name, err := d.str("column name")
		if err != nil {
			return nil, err
		}
		if d.pos >= len(d.s) {
			return nil, d.fail("missing cell flags")
		}
		var c Cell
		switch d.s[d.pos] {
		case 0:
			d.pos++
			if c.Value.Text, err = d.str("cell value"); err != nil {
				return nil, err
			}
		case 1:
			d.pos++
			c.Value.Null = true
		default:
			return nil, d.fail("bad cell flags")
		}
		if c.Eff, err = d.uvarint("cell eff"); err != nil {
			return nil, err
		}
		if c.Origin, err = d.origin(origins); err != nil {
			return nil, err
		}
		if d.version != legacyRowCodecVersion {
			if c.Offset, err = d.uvarint("cell offset"); err != nil {
				return nil, err
			}
		}
		if _, dup := r.Cells[name]; dup {
			return nil, d.fail("duplicate column " + name)
		}
		r.Cells[name] = c
	}
	minTag := 3
	if d.version == legacyRowCodecVersion {
		minTag = 2
	}
	if n, err = d.count("tag", minTag); err != nil {
		return nil, err
	}
	if n > 0 {
		r.Tags = make([]Tag, n)
		for i := range r.Tags {
			if r.Tags[i].Origin, err = d.origin(origins); err != nil {
				return nil, err
			}
			if r.Tags[i].Eff, err = d.uvarint("tag eff"); err != nil {
				return nil, err
			}
			if d.version == legacyRowCodecVersion {
				continue
			}
			if r.Tags[i].Offset, err = d.uvarint("tag offset"); err != nil {
				return nil, err
			}
		}
	}
	if d.version == legacyRowCodecVersion {
		// The removed clock, not needed in a total order (see the
		// package comment, "Causal context").
		if n, err = d.count("removed", 2); err != nil {
			return nil, err
		}
		for range n {
			if _, err := d.origin(origins); err != nil {
				return nil, err
			}
			if _, err := d.uvarint("removed eff"); err != nil {
				return nil, err
			}
		}
	}
	if d.pos != len(d.s) {
		return nil, d.fail("trailing bytes")
	}
	return r, nil
}

// uvarintString is binary.Uvarint over a string, to decode without copying.
func uvarintString(s string) (uint64, int) {
	var x uint64
	var shift uint
	for i := 0; i < len(s); i++ {
		if i == binary.MaxVarintLen64 {
			return 0, -(i + 1)
		}
		b := s[i]
		if b < 0x80 {
			if i == binary.MaxVarintLen64-1 && b > 1 {
				return 0, -(i + 1)
			}
			return x | uint64(b)<<shift, i + 1
		}
		x |= uint64(b&0x7f) << shift
		shift += 7
	}
	return 0, 0
}
