package sparkline

import "testing"

func TestRender(t *testing.T) {
	for _, tc := range []struct {
		in    []float64
		width int
		want  string
	}{
		{nil, 4, "    "},
		{[]float64{0, 0}, 4, "  ▁▁"},
		{[]float64{0, 1, 2, 4, 8}, 5, "▁▂▂▄█"},
		{[]float64{0, 1, 2, 4, 8}, 3, "▂▄█"},
		{[]float64{0.01, 100}, 2, "▂█"},
		{[]float64{-3, 3}, 2, "▁█"},
		{[]float64{1}, 0, ""},
	} {
		if got := Render(tc.in, tc.width); got != tc.want {
			t.Errorf("Render(%v, %d) = %q, want %q", tc.in, tc.width, got, tc.want)
		}
	}
}
