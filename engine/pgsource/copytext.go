package pgsource

import (
	"bytes"
	"errors"
	"fmt"

	"github.com/electric-sql/electric-go/engine/merge"
)

// errCopyFormat is wrapped by every error of parseCopyRow.
var errCopyFormat = errors.New("malformed COPY text row")

// parseCopyRow splits one row of COPY ... TO STDOUT text format (without its
// newline) into want values, appending to dst: fields separated by tabs,
// \N for NULL, backslash escapes (\b \f \n \r \t \v \\, \digits octal,
// \xhex) for everything else. The text is the column's output function's,
// the same pgoutput streams.
func parseCopyRow(line []byte, want int, dst []merge.Value) ([]merge.Value, error) {
	start := len(dst)
	for {
		field := line
		i := bytes.IndexByte(line, '\t')
		if i >= 0 {
			field, line = line[:i], line[i+1:]
		}
		if len(dst)-start == want {
			return dst, fmt.Errorf("%w: more than %d fields", errCopyFormat, want)
		}
		v, err := copyField(field)
		if err != nil {
			return dst, err
		}
		dst = append(dst, v)
		if i < 0 {
			break
		}
	}
	if n := len(dst) - start; n != want {
		return dst, fmt.Errorf("%w: %d fields, want %d", errCopyFormat, n, want)
	}
	return dst, nil
}

func copyField(f []byte) (merge.Value, error) {
	if len(f) == 2 && f[0] == '\\' && f[1] == 'N' {
		return merge.Value{Null: true}, nil
	}
	if bytes.IndexByte(f, '\\') < 0 {
		return merge.Value{Text: string(f)}, nil
	}
	out := make([]byte, 0, len(f))
	for i := 0; i < len(f); i++ {
		c := f[i]
		if c != '\\' {
			out = append(out, c)
			continue
		}
		i++
		if i == len(f) {
			return merge.Value{}, fmt.Errorf("%w: trailing backslash", errCopyFormat)
		}
		switch c = f[i]; c {
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'v':
			out = append(out, '\v')
		case 'N':
			return merge.Value{}, fmt.Errorf("%w: \\N inside a value", errCopyFormat)
		case 'x':
			v, n := 0, 0
			for n < 2 && i+1 < len(f) && isHex(f[i+1]) {
				i++
				v = v<<4 | hexVal(f[i])
				n++
			}
			if n == 0 {
				out = append(out, 'x') // Postgres reads a lone \x as x
			} else {
				out = append(out, byte(v))
			}
		case '0', '1', '2', '3', '4', '5', '6', '7':
			v := int(c - '0')
			for n := 1; n < 3 && i+1 < len(f) && f[i+1] >= '0' && f[i+1] <= '7'; n++ {
				i++
				v = v<<3 | int(f[i]-'0')
			}
			out = append(out, byte(v))
		default:
			out = append(out, c) // \\ and any other escaped character stand for themselves
		}
	}
	return merge.Value{Text: string(out)}, nil
}

func isHex(c byte) bool {
	return c >= '0' && c <= '9' || c >= 'a' && c <= 'f' || c >= 'A' && c <= 'F'
}

func hexVal(c byte) int {
	switch {
	case c >= '0' && c <= '9':
		return int(c - '0')
	case c >= 'a' && c <= 'f':
		return int(c-'a') + 10
	default:
		return int(c-'A') + 10
	}
}
