package pgsource

import (
	"fmt"
	"strings"
	"testing"

	"github.com/electric-sql/electric-go/engine/merge"
)

func TestDDLOps(t *testing.T) {
	for _, tc := range []struct {
		msg     string
		want    []string // schemaOpString of each op
		note    string
		wantErr string
	}{
		{msg: `{"op":"rename","table":"public.t","from":"a","to":"b"}`, want: []string{`rename public.t a->b`}},
		{msg: `{"op":"default","table":"public.t","column":"c","value":"x"}`, want: []string{`default public.t * c='x'`}},
		{msg: `{"op":"default","table":"public.t","column":"c","value":null}`, want: []string{`default public.t * c=NULL`}},
		{msg: `{"op":"rows","table":"public.t","column":"c","mode":"rewrite","rows":[[["1"],"x"],[["2"],null]]}`,
			want: []string{`rewrite public.t "1" c='x'`, `rewrite public.t "2" c=NULL`}},
		{msg: `{"op":"rows","table":"public.t","column":"c","mode":"default","rows":[[["a","b"],"x"]]}`,
			want: []string{fmt.Sprintf(`default public.t %q c='x'`, merge.EncodeKey([]merge.Value{val("a"), val("b")}))}},
		{msg: `{"op":"type","table":"public.t","column":"c","from":"integer","to":"text"}`, note: "changed type from integer to text"},
		{msg: `{"op":"rename","table":"public.t","from":"a","to":"a"}`, wantErr: "rename"},
		{msg: `{"op":"rename","table":"","from":"a","to":"b"}`, wantErr: "without a table"},
		{msg: `{"op":"rows","table":"public.t","column":"c","mode":"rewrite","rows":[[[null],"x"]]}`, wantErr: "NULL in the key"},
		{msg: `{"op":"rows","table":"public.t","column":"c","mode":"rewrite","rows":[[[],"x"]]}`, wantErr: "key"},
		{msg: `{"op":"rows","table":"public.t","column":"c","mode":"rewrite","rows":[["1"]]}`, wantErr: "want [key, value]"},
		{msg: `{"op":"rows","table":"public.t","column":"c","mode":"other","rows":[]}`, wantErr: "unknown mode"},
		{msg: `{"op":"drop","table":"public.t"}`, wantErr: "unknown op"},
		{msg: `not json`, wantErr: "schema history message"},
		{msg: `{"op":"rename","table":"public.t","from":"a","to":"b"}` + strings.Repeat(" ", ddlMaxBytes), wantErr: "bytes"},
	} {
		ops, _, note, err := ddlOps([]byte(tc.msg))
		if tc.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Errorf("%.80s: err = %v, want %q", tc.msg, err, tc.wantErr)
			}
			continue
		}
		if err != nil {
			t.Errorf("%.80s: %v", tc.msg, err)
			continue
		}
		var got []string
		for _, op := range ops {
			got = append(got, schemaOpString(op))
		}
		if strings.Join(got, "\n") != strings.Join(tc.want, "\n") {
			t.Errorf("%.80s: ops %q, want %q", tc.msg, got, tc.want)
		}
		if !strings.Contains(note, tc.note) {
			t.Errorf("%.80s: note %q, want %q", tc.msg, note, tc.note)
		}
	}
}

// FuzzDDLOps: a schema history message never panics, and every op it gives
// names a table.
func FuzzDDLOps(f *testing.F) {
	f.Add([]byte(`{"op":"rows","table":"public.t","column":"c","mode":"rewrite","rows":[[["1"],"x"]]}`))
	f.Add([]byte(`{"op":"rename","table":"public.t","from":"a","to":"b"}`))
	f.Add([]byte(`{"op":"default","table":"t","column":"c","value":null}`))
	f.Fuzz(func(t *testing.T, data []byte) {
		ops, _, _, err := ddlOps(data)
		if err != nil {
			return
		}
		for _, op := range ops {
			if op.Table == "" {
				t.Fatalf("op without a table: %+v", op)
			}
		}
	})
}
