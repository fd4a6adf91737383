package main

import (
	"encoding/json"
	"fmt"
	"io"
	"runtime"
	"runtime/debug"

	"github.com/spf13/cobra"
)

// Set at build time: -ldflags "-X main.version=… -X main.commit=…" (the
// Makefile and internal/release do).
var (
	version = "dev"
	commit  = ""
)

// buildInfo is what `electric version` reports.
type buildInfo struct {
	Version string `json:"version"`
	Commit  string `json:"commit"`
	Go      string `json:"go"`
	OS      string `json:"os"`
	Arch    string `json:"arch"`
}

// currentBuild is the running binary's build. Without -X main.commit it
// falls back to the VCS stamp `go build` records (absent with -buildvcs=false),
// then to "unknown".
func currentBuild() buildInfo {
	b := buildInfo{Version: version, Commit: commit, Go: runtime.Version(), OS: runtime.GOOS, Arch: runtime.GOARCH}
	if b.Commit == "" {
		b.Commit = "unknown"
		if info, ok := debug.ReadBuildInfo(); ok {
			var rev, modified string
			for _, s := range info.Settings {
				switch s.Key {
				case "vcs.revision":
					rev = s.Value
				case "vcs.modified":
					modified = s.Value
				}
			}
			if rev != "" {
				b.Commit = rev
				if modified == "true" {
					b.Commit += "-dirty"
				}
			}
		}
	}
	return b
}

// versionString is the version, or for a development build "dev-" and the
// commit it was built from when that is known.
func versionString() string {
	b := currentBuild()
	if b.Version == "dev" && b.Commit != "unknown" && len(b.Commit) >= 12 {
		return "dev-" + b.Commit[:12]
	}
	return b.Version
}

type versionOptions struct {
	json bool
}

func newVersionCmd() *cobra.Command { return newVersionCmdWith(currentBuild) }

// newVersionCmdWith takes the build to report, so tests can check the output
// of a stamped build without building one.
func newVersionCmdWith(build func() buildInfo) *cobra.Command {
	var opts versionOptions
	cmd := &cobra.Command{
		Use:   "version",
		Short: "Print the version, commit and Go version of electric",
		Example: `  electric version
  electric version --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return printVersion(cmd.OutOrStdout(), build(), opts)
		},
	}
	cmd.Flags().BoolVar(&opts.json, "json", false, "print a JSON object (version, commit, go, os, arch)")
	return cmd
}

func printVersion(w io.Writer, b buildInfo, opts versionOptions) error {
	if opts.json {
		enc := json.NewEncoder(w)
		return enc.Encode(b)
	}
	_, err := fmt.Fprintf(w, "electric %s (commit %s, %s %s/%s)\n", b.Version, b.Commit, b.Go, b.OS, b.Arch)
	return err
}
