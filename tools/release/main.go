// Command release builds electric's release artifacts; `make image` and
// `make release` run it, and the Dockerfile runs its rootfs step. Run from the
// repository root:
//
//	go run ./tools/release image   -version V -commit C -out dist/electric-V.tar
//	go run ./tools/release release -version V -commit C -out dist
//	go run ./tools/release rootfs  -version V -commit C -arch amd64 -out /rootfs
//
// All the logic is in internal/release.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strconv"
	"time"

	"github.com/electric-sql/electric-go/internal/release"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], os.Stdout, os.Stderr))
}

const usage = `usage: release image|release|rootfs [flags]  (release <command> -h for the flags)`

func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprintln(stderr, usage)
		return 2
	}
	fs := flag.NewFlagSet("release "+args[0], flag.ContinueOnError)
	fs.SetOutput(stderr)
	version := fs.String("version", "", "version to stamp and tag (required)")
	commit := fs.String("commit", "", "commit to stamp (required)")
	out := fs.String("out", "", "output: the image tarball (image), a directory (release, rootfs)")
	var arch, source, license *string
	var epoch *int64
	switch args[0] {
	case "image", "rootfs":
		arch = fs.String("arch", runtime.GOARCH, "image architecture: amd64 or arm64")
	case "release":
	default:
		fmt.Fprintln(stderr, usage)
		return 2
	}
	if args[0] == "image" {
		source = fs.String("source", release.DefaultSource, "org.opencontainers.image.source label")
		license = fs.String("license", release.DefaultLicense, "org.opencontainers.image.licenses label")
		epoch = fs.Int64("epoch", envEpoch(), "every timestamp in the image, Unix seconds (default $SOURCE_DATE_EPOCH, else 0)")
	}
	if err := fs.Parse(args[1:]); err != nil {
		return 2
	}
	if *version == "" || *commit == "" || *out == "" || fs.NArg() != 0 {
		fmt.Fprintf(stderr, "release %s: -version, -commit and -out are required, and nothing else\n", args[0])
		return 2
	}

	var err error
	switch args[0] {
	case "release":
		var names []string
		names, err = release.Release(ctx, release.ReleaseOptions{
			ModuleDir: ".", OutDir: *out, Version: *version, Commit: *commit, Progress: stderr,
		})
		for _, n := range names {
			fmt.Fprintln(stdout, filepath.Join(*out, n))
		}
		if err == nil {
			fmt.Fprintln(stdout, filepath.Join(*out, "SHA256SUMS"))
		}
	case "image":
		err = buildImage(ctx, *out, release.ImageOptions{
			Arch: *arch, Version: *version, Commit: *commit,
			Created: time.Unix(*epoch, 0).UTC(), Source: *source, License: *license,
		})
		if err == nil {
			fmt.Fprintln(stdout, *out)
		}
	case "rootfs":
		err = buildRootFS(ctx, *out, *arch, *version, *commit)
	}
	if err != nil {
		fmt.Fprintln(stderr, "release:", err)
		return 1
	}
	return 0
}

func envEpoch() int64 {
	n, err := strconv.ParseInt(os.Getenv("SOURCE_DATE_EPOCH"), 10, 64)
	if err != nil {
		return 0
	}
	return n
}

// staticBinary builds electric for linux/arch into a temporary directory and
// returns its bytes.
func staticBinary(ctx context.Context, arch, version, commit string) ([]byte, error) {
	dir, err := os.MkdirTemp("", "electric-release-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	bin := filepath.Join(dir, "electric")
	err = release.BuildBinary(ctx, release.BuildOptions{
		ModuleDir: ".", Platform: release.Platform{OS: "linux", Arch: arch},
		Version: version, Commit: commit, Output: bin,
	})
	if err != nil {
		return nil, err
	}
	return os.ReadFile(bin)
}

func buildImage(ctx context.Context, out string, o release.ImageOptions) error {
	bin, err := staticBinary(ctx, o.Arch, o.Version, o.Commit)
	if err != nil {
		return err
	}
	o.Binary = bin
	return release.WriteImage(out, o)
}

func buildRootFS(ctx context.Context, out, arch, version, commit string) error {
	bin, err := staticBinary(ctx, arch, version, commit)
	if err != nil {
		return err
	}
	files, err := release.RootFS(bin)
	if err != nil {
		return err
	}
	return release.WriteRootFS(out, files)
}
