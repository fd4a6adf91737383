package main

import (
	"bytes"
	"encoding/json"
	"runtime"
	"strings"
	"testing"
)

func TestVersionOutput(t *testing.T) {
	stamped := buildInfo{Version: "v1.2.3", Commit: "0123456789abcdef0123456789abcdef01234567", Go: "go1.26.8", OS: "linux", Arch: "arm64"}
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"text", nil, "electric v1.2.3 (commit 0123456789abcdef0123456789abcdef01234567, go1.26.8 linux/arm64)\n"},
		{"json", []string{"--json"}, `{"version":"v1.2.3","commit":"0123456789abcdef0123456789abcdef01234567","go":"go1.26.8","os":"linux","arch":"arm64"}` + "\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := newVersionCmdWith(func() buildInfo { return stamped })
			var out, errOut bytes.Buffer
			cmd.SetOut(&out)
			cmd.SetErr(&errOut)
			cmd.SetArgs(tt.args)
			if err := cmd.Execute(); err != nil {
				t.Fatalf("version %v: %v", tt.args, err)
			}
			if out.String() != tt.want {
				t.Errorf("version %v printed\n%q\nwant\n%q", tt.args, out.String(), tt.want)
			}
			if errOut.Len() != 0 {
				t.Errorf("version %v wrote to stderr: %q", tt.args, errOut.String())
			}
		})
	}
}

// TestVersionCurrentBuild checks what an unstamped test binary reports: the
// toolchain and platform it runs on, and a commit that is never empty.
func TestVersionCurrentBuild(t *testing.T) {
	b := currentBuild()
	if b.Go != runtime.Version() || b.OS != runtime.GOOS || b.Arch != runtime.GOARCH {
		t.Errorf("currentBuild() = %+v, want go %s on %s/%s", b, runtime.Version(), runtime.GOOS, runtime.GOARCH)
	}
	if b.Version == "" || b.Commit == "" {
		t.Errorf("currentBuild() = %+v: empty version or commit", b)
	}
	var out bytes.Buffer
	if err := printVersion(&out, b, versionOptions{json: true}); err != nil {
		t.Fatal(err)
	}
	var back buildInfo
	if err := json.Unmarshal(out.Bytes(), &back); err != nil || back != b {
		t.Errorf("--json round trip: %q -> %+v, %v", out.String(), back, err)
	}
	if v := versionString(); v == "" || strings.ContainsAny(v, " \n") {
		t.Errorf("versionString() = %q", v)
	}
}
