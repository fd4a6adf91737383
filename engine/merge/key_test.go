package merge

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestKeyEncoding(t *testing.T) {
	cases := []struct {
		vals []Value
		want string
	}{
		{[]Value{txt("42")}, "42"},
		{[]Value{txt("")}, ""},
		{[]Value{null}, "\x00\x02"},
		{[]Value{txt("a:b")}, "a:b"},
		{[]Value{txt("a\x00b")}, "a\x00\xffb"},
		{[]Value{txt("a"), txt("b")}, "a\x00\x01b"},
		{[]Value{txt(""), txt("")}, "\x00\x01"},
		{[]Value{null, txt("")}, "\x00\x02\x00\x01"},
		{[]Value{txt("x"), null}, "x\x00\x01\x00\x02"},
	}
	for _, c := range cases {
		got := EncodeKey(c.vals)
		if got != c.want {
			t.Errorf("EncodeKey(%v) = %q, want %q", c.vals, got, c.want)
		}
		back, err := DecodeKey(got)
		if err != nil || !slices.Equal(back, c.vals) {
			t.Errorf("DecodeKey(%q) = %v, %v, want %v", got, back, err, c.vals)
		}
	}
}

func TestDecodeKeyRejectsNonCanonical(t *testing.T) {
	for _, k := range []string{"\x00", "a\x00", "\x00\x03", "a\x00\x02", "\x00\x02a", "\x00\x02\x00\xff", "\x00\x02\x00\x02"} {
		if v, err := DecodeKey(k); !errors.Is(err, ErrBadKey) {
			t.Errorf("DecodeKey(%q) = %v, %v, want ErrBadKey", k, v, err)
		}
	}
}

func compareTuples(a, b []Value) int {
	for i := 0; i < len(a) && i < len(b); i++ {
		if c := compareKeyValues(a[i], b[i]); c != 0 {
			return c
		}
	}
	return len(a) - len(b)
}

// compareKeyValues is the documented value order: "" < NULL < other texts.
func compareKeyValues(a, b Value) int {
	rank := func(v Value) int {
		switch {
		case !v.Null && v.Text == "":
			return 0
		case v.Null:
			return 1
		}
		return 2
	}
	if ra, rb := rank(a), rank(b); ra != rb {
		return ra - rb
	}
	return strings.Compare(a.Text, b.Text)
}

// tupleFrom splits fuzz input into a key: '|' separates values, a value
// "~" is NULL.
func tupleFrom(s string) []Value {
	var vals []Value
	for _, p := range strings.Split(s, "|") {
		if p == "~" {
			vals = append(vals, null)
		} else {
			vals = append(vals, txt(p))
		}
	}
	return vals
}

func sign(x int) int {
	switch {
	case x < 0:
		return -1
	case x > 0:
		return 1
	}
	return 0
}

func FuzzKeyRoundTrip(f *testing.F) {
	for _, s := range []string{"", "42", "a|b", "~", "~|", "|~", "a\x00b|\x00", "a\x00\x01b", "\x00\x02", "\xff|\x00\xff"} {
		f.Add(s, "a|~")
	}
	f.Fuzz(func(t *testing.T, a, b string) {
		// Any string either decodes to a key that re-encodes to it, or is rejected.
		if vals, err := DecodeKey(a); err == nil {
			if back := EncodeKey(vals); back != a {
				t.Fatalf("DecodeKey(%q) = %v re-encodes as %q", a, vals, back)
			}
		}
		ta, tb := tupleFrom(a), tupleFrom(b)
		ka, kb := EncodeKey(ta), EncodeKey(tb)
		for _, c := range []struct {
			vals []Value
			key  string
		}{{ta, ka}, {tb, kb}} {
			back, err := DecodeKey(c.key)
			if err != nil || !slices.Equal(back, c.vals) {
				t.Fatalf("round trip of %v via %q gave %v, %v", c.vals, c.key, back, err)
			}
		}
		if got, want := sign(strings.Compare(ka, kb)), sign(compareTuples(ta, tb)); got != want {
			t.Fatalf("order of %v (%q) vs %v (%q): keys compare %d, tuples %d", ta, ka, tb, kb, got, want)
		}
	})
}
