package satellite

import (
	"bytes"
	"testing"

	"github.com/electric-sql/electric-go/engine/merge"
	"github.com/electric-sql/electric-go/engine/satellite/satpb"
)

func TestBitmaskSpecExamples(t *testing.T) {
	n := merge.Value{Null: true}
	v := func(s string) merge.Value { return merge.Value{Text: s} }
	// spec §3.6: [null, absent(=null), "4"] ⇒ 0b11000000
	r := encodeRow([]merge.Value{n, n, v("4")})
	if !bytes.Equal(r.NullsBitmask, []byte{0xC0}) || len(r.Values) != 3 || string(r.Values[2]) != "4" || len(r.Values[0]) != 0 {
		t.Fatalf("got %x %q", r.NullsBitmask, r.Values)
	}
	// 6 columns, NULL at 2 and 4 ⇒ 0b00101000
	r = encodeRow([]merge.Value{v("a"), v(""), n, v("x"), n, v("")})
	if !bytes.Equal(r.NullsBitmask, []byte{0x28}) {
		t.Fatalf("got %x", r.NullsBitmask)
	}
	// 9 columns with mask D0 80 ⇒ 0,1,3,8 NULL
	vals, err := decodeRow(&satpb.SatOpRow{NullsBitmask: []byte{0xD0, 0x80},
		Values: [][]byte{{}, {}, []byte("c"), {}, []byte(""), []byte("f"), []byte("g"), []byte("h"), {}}}, 9)
	if err != nil {
		t.Fatal(err)
	}
	for i, val := range vals {
		wantNull := i == 0 || i == 1 || i == 3 || i == 8
		if val.Null != wantNull {
			t.Fatalf("column %d: null=%v", i, val.Null)
		}
	}
	if vals[4].Null || vals[4].Text != "" {
		t.Fatalf("empty string column 4 decoded as %+v", vals[4])
	}
	back := encodeRow(vals)
	if !bytes.Equal(back.NullsBitmask, []byte{0xD0, 0x80}) {
		t.Fatalf("round trip %x", back.NullsBitmask)
	}
}

func TestDecodeRowErrors(t *testing.T) {
	if _, err := decodeRow(nil, 1); err == nil {
		t.Fatal("nil row accepted")
	}
	if _, err := decodeRow(&satpb.SatOpRow{NullsBitmask: []byte{0}, Values: [][]byte{{}}}, 2); err == nil {
		t.Fatal("too few values accepted")
	}
	if _, err := decodeRow(&satpb.SatOpRow{Values: [][]byte{{}}}, 1); err == nil {
		t.Fatal("missing bitmask accepted")
	}
	vals9 := make([][]byte, 9)
	if _, err := decodeRow(&satpb.SatOpRow{NullsBitmask: []byte{0}, Values: vals9}, 9); err == nil {
		t.Fatal("short bitmask accepted")
	}
}

func TestClientLSNOrder(t *testing.T) {
	cases := []struct {
		a, b []byte
		want int
	}{
		{nil, []byte{0, 0, 0, 1}, -1},
		{[]byte{0, 0, 0, 1}, []byte{1}, 0},
		{[]byte{0, 0, 1, 0}, []byte{0xff}, 1},
		{[]byte("9"), []byte("10"), -1}, // ASCII lengths differ: "10" is longer
		{[]byte{0, 0, 0, 5}, []byte{0, 0, 0, 0, 0, 0, 0, 5}, 0},
		{[]byte{2}, []byte{1}, 1},
	}
	for _, c := range cases {
		if got := compareClientLSN(c.a, c.b); got != c.want {
			t.Errorf("compare(%x, %x) = %d, want %d", c.a, c.b, got, c.want)
		}
	}
}

func TestServerLSN(t *testing.T) {
	b := ServerLSN(5)
	if !bytes.Equal(b, []byte{0, 0, 0, 0, 0, 0, 0, 5}) {
		t.Fatalf("got %x", b)
	}
	if o, err := OffsetOfServerLSN(b); err != nil || o != 5 {
		t.Fatalf("got %d %v", o, err)
	}
	for _, bad := range [][]byte{nil, {}, {1, 2, 3}, make([]byte, 9)} {
		if _, err := OffsetOfServerLSN(bad); err == nil {
			t.Fatalf("%x accepted", bad)
		}
	}
}
