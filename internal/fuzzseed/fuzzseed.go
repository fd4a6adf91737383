// Package fuzzseed keeps the committed seed corpora of the fuzz targets in
// step with the builders that make them. A fuzz target lists its seeds (real
// messages built with the package's test builders) and calls Sync: with
// -update-fuzz-seeds the files under testdata/fuzz/<FuzzName>/ are rewritten
// from that list; without it Sync does nothing and go test reads the
// committed files as usual (crash reproducers added by the fuzzer included).
// It owns only those files; it never touches what a target does with them.
package fuzzseed

import (
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
)

var update = flag.Bool("update-fuzz-seeds", false, "rewrite the seed corpora under testdata/fuzz from the seed builders")

// Seed is one named corpus entry; Args are the fuzz function's arguments
// ([]byte and string are the only kinds the targets use).
type Seed struct {
	Name string
	Args []any
}

// Sync writes seeds to testdata/fuzz/<f.Name()>/seed-<name> when
// -update-fuzz-seeds is set; files of other names (crash reproducers) stay.
func Sync(f *testing.F, seeds []Seed) {
	f.Helper()
	if !*update {
		return
	}
	dir := filepath.Join("testdata", "fuzz", f.Name())
	if err := os.MkdirAll(dir, 0o755); err != nil {
		f.Fatal(err)
	}
	for _, s := range seeds {
		b, err := Marshal(s.Args...)
		if err != nil {
			f.Fatalf("seed %s: %v", s.Name, err)
		}
		if err := os.WriteFile(filepath.Join(dir, "seed-"+s.Name), b, 0o644); err != nil {
			f.Fatal(err)
		}
	}
}

// Marshal encodes arguments in the corpus file format of go test
// ("go test fuzz v1", one Go literal per line).
func Marshal(args ...any) ([]byte, error) {
	var b strings.Builder
	b.WriteString("go test fuzz v1\n")
	for _, a := range args {
		switch v := a.(type) {
		case []byte:
			b.WriteString("[]byte(" + strconv.Quote(string(v)) + ")\n")
		case string:
			b.WriteString("string(" + strconv.Quote(v) + ")\n")
		default:
			return nil, fmt.Errorf("fuzz argument of type %T is not supported", a)
		}
	}
	return []byte(b.String()), nil
}
