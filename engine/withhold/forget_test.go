package withhold

import "testing"

func TestForgetDropsOneConnector(t *testing.T) {
	dir := t.TempDir()
	s, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.Add(
		Record{Connector: "a", Table: "public.t", Key: "k1", Offset: 3},
		Record{Connector: "a", Table: "public.t", Key: "k2", Offset: 4},
		Record{Connector: "a", Skipped: true, Offset: 5},
		Record{Connector: "b", Table: "public.t", Key: "k1", Offset: 3},
	); err != nil {
		t.Fatal(err)
	}
	n, err := s.Forget("a")
	if err != nil || n != 3 {
		t.Fatalf("Forget(a) = %d, %v; want 3 records", n, err)
	}
	if s.Count("a") != 0 || s.Held("a", "public.t", "k1", 3) {
		t.Errorf("a still withholds after Forget")
	}
	re, err := Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got := re.List("a"); len(got) != 0 {
		t.Errorf("a's records after reopen: %+v", got)
	}
	if got := re.List("b"); len(got) != 1 || re.Count("b") != 1 {
		t.Errorf("b's records after Forget(a): %+v", got)
	}
	if n, err := re.Forget("nobody"); n != 0 || err != nil {
		t.Errorf("Forget(nobody) = %d, %v", n, err)
	}
}
