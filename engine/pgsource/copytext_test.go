package pgsource

import (
	"errors"
	"slices"
	"testing"

	"github.com/electric-sql/electric-go/engine/merge"
)

func TestParseCopyRow(t *testing.T) {
	txt := func(s string) merge.Value { return merge.Value{Text: s} }
	null := merge.Value{Null: true}
	cases := []struct {
		line string
		want []merge.Value
		err  bool
	}{
		{"1\tabc", []merge.Value{txt("1"), txt("abc")}, false},
		{"1\t\\N", []merge.Value{txt("1"), null}, false},
		{"1\t", []merge.Value{txt("1"), txt("")}, false},
		{`1` + "\t" + `a\tb\nc\\d\re`, []merge.Value{txt("1"), txt("a\tb\nc\\d\re")}, false},
		{`1` + "\t" + `\101\x42\b\f\v`, []merge.Value{txt("1"), txt("AB\b\f\v")}, false},
		{`1` + "\t" + `\\N`, []merge.Value{txt("1"), txt(`\N`)}, false},
		{"1", nil, true},
		{"1\t2\t3", nil, true},
		{"1\ta\\", nil, true},
		{"1\ta\\Nb", nil, true},
	}
	for _, c := range cases {
		got, err := parseCopyRow([]byte(c.line), 2, nil)
		if c.err {
			if !errors.Is(err, errCopyFormat) {
				t.Errorf("%q: err = %v, want errCopyFormat", c.line, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("%q: %v", c.line, err)
			continue
		}
		if !slices.Equal(got, c.want) {
			t.Errorf("%q: got %v, want %v", c.line, got, c.want)
		}
	}
}

func FuzzParseCopyRow(f *testing.F) {
	f.Add([]byte("1\tabc\\n\\x41\\101"), 2)
	f.Fuzz(func(t *testing.T, line []byte, n int) {
		if n < 0 || n > 64 {
			return
		}
		_, _ = parseCopyRow(line, n, nil) // never panics
	})
}
