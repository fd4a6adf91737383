package merge

import (
	"errors"
	"fmt"
	"strings"
)

// Key encoding
//
// EncodeKey turns the primary key values of a row (in primary key order) into
// the string that identifies the row everywhere in the engine (row states,
// log entries, sinks). The encoding is canonical (one string per key) and
// unambiguous, and a single text value without NUL bytes encodes as itself,
// so the usual keys ("42", a uuid, a name) read plainly in logs.
//
// Bytes other than 0x00 are copied as they are. 0x00 starts an escape:
//
//	0x00 0x01   separates two values
//	0x00 0x02   a NULL value (it forms the whole value)
//	0x00 0xFF   a literal 0x00 byte inside a text value
//
// Comparing two encoded keys as byte strings orders them like the tuples
// of values, each value ordered: "" < NULL < any other text, and texts
// bytewise (Postgres's "C" collation). So single text keys sort as plain
// strings, and a key sorts right after its own prefixes.
//
// A key has at least one value; an empty list encodes as "", the encoding of
// the single empty string.

const (
	escByte  = 0x00
	escSep   = 0x01
	escNull  = 0x02
	escZero  = 0xFF
	nullCode = "\x00\x02"
	sepCode  = "\x00\x01"
)

// ErrBadKey is wrapped by DecodeKey's errors.
var ErrBadKey = errors.New("malformed key")

// EncodeKey encodes primary key values as described in "Key encoding".
func EncodeKey(vals []Value) string {
	if len(vals) == 1 && !vals[0].Null && strings.IndexByte(vals[0].Text, escByte) < 0 {
		return vals[0].Text
	}
	n := 0
	for _, v := range vals {
		n += len(v.Text) + 2
	}
	var b strings.Builder
	b.Grow(n)
	for i, v := range vals {
		if i > 0 {
			b.WriteString(sepCode)
		}
		if v.Null {
			b.WriteString(nullCode)
			continue
		}
		t := v.Text
		for {
			j := strings.IndexByte(t, escByte)
			if j < 0 {
				b.WriteString(t)
				break
			}
			b.WriteString(t[:j])
			b.WriteByte(escByte)
			b.WriteByte(escZero)
			t = t[j+1:]
		}
	}
	return b.String()
}

// DecodeKey is the inverse of EncodeKey. It rejects every string that
// EncodeKey cannot produce, so a decoded key re-encodes to the same string.
func DecodeKey(key string) ([]Value, error) {
	if strings.IndexByte(key, escByte) < 0 {
		return []Value{{Text: key}}, nil
	}
	vals := make([]Value, 0, 2)
	var cur strings.Builder
	start := 0 // offset where the current value began
	null := false
	for i := 0; i < len(key); i++ {
		c := key[i]
		if c != escByte {
			if null {
				return nil, fmt.Errorf("decode key %q: %w: data after NULL at byte %d", key, ErrBadKey, i)
			}
			cur.WriteByte(c)
			continue
		}
		if i+1 == len(key) {
			return nil, fmt.Errorf("decode key %q: %w: truncated escape at byte %d", key, ErrBadKey, i)
		}
		i++
		switch key[i] {
		case escSep:
			vals = append(vals, Value{Text: cur.String(), Null: null})
			cur.Reset()
			null = false
			start = i + 1
		case escNull:
			if i-1 != start {
				return nil, fmt.Errorf("decode key %q: %w: NULL inside a value at byte %d", key, ErrBadKey, i-1)
			}
			null = true
		case escZero:
			if null {
				return nil, fmt.Errorf("decode key %q: %w: data after NULL at byte %d", key, ErrBadKey, i-1)
			}
			cur.WriteByte(escByte)
		default:
			return nil, fmt.Errorf("decode key %q: %w: unknown escape 0x%02x at byte %d", key, ErrBadKey, key[i], i-1)
		}
	}
	return append(vals, Value{Text: cur.String(), Null: null}), nil
}
