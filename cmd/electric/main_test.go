package main

import (
	"errors"
	"flag"
	"net"
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"testing"

	"github.com/rogpeppe/go-internal/testscript"
)

var update = flag.Bool("update", false, "rewrite the cmp golden files of testdata/*.txtar")

// TestMain makes the test binary double as the electric command: testscript
// re-executes it under the name "electric" for `exec electric …` in scripts.
func TestMain(m *testing.M) {
	testscript.Main(m, map[string]func(){
		"electric": func() { os.Exit(run(os.Args[1:])) },
	})
}

// TestScripts runs every testdata/*.txtar (each command's helper adds its own:
// help_*, token_*, serve_*, dev_*, migrate_*, dashboard_*).
//
// Scripts run in parallel, each in its own $WORK, with HOME=$WORK/home and the
// test's PATH (so initdb, pg_ctl and psql are found where the system has them).
// Besides testscript's built-ins, scripts can use:
//
//	exitcode N PROG [ARGS…]   run PROG like exec and require exit status N
//	freeport VAR…             set each VAR to a free TCP port on 127.0.0.1
//	setfrom VAR FILE REGEXP   set VAR to REGEXP's first group (or whole match)
//	                          in FILE, which may be stdout or stderr
func TestScripts(t *testing.T) {
	testscript.Run(t, testscript.Params{
		Dir:                 "testdata",
		UpdateScripts:       *update,
		RequireExplicitExec: true,
		Setup: func(env *testscript.Env) error {
			home := env.WorkDir + "/home"
			env.Setenv("HOME", home)
			return os.MkdirAll(home, 0o755)
		},
		Cmds: map[string]func(ts *testscript.TestScript, neg bool, args []string){
			"exitcode": cmdExitCode,
			"freeport": cmdFreePort,
			"setfrom":  cmdSetFrom,
		},
	})
}

func cmdExitCode(ts *testscript.TestScript, neg bool, args []string) {
	if neg {
		ts.Fatalf("unsupported: ! exitcode")
	}
	if len(args) < 2 {
		ts.Fatalf("usage: exitcode N PROG [ARGS…]")
	}
	want, err := strconv.Atoi(args[0])
	if err != nil {
		ts.Fatalf("exitcode: %q is not a number", args[0])
	}
	got := 0
	if err := ts.Exec(args[1], args[2:]...); err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			ts.Fatalf("exitcode: running %s: %v", args[1], err)
		}
		got = ee.ExitCode()
	}
	if got != want {
		ts.Fatalf("%s exited with status %d, want %d", args[1], got, want)
	}
}

func cmdFreePort(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) == 0 {
		ts.Fatalf("usage: freeport VAR…")
	}
	// Hold every listener until all ports are chosen, so they differ.
	var ls []net.Listener
	defer func() {
		for _, l := range ls {
			l.Close()
		}
	}()
	for _, name := range args {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			ts.Fatalf("freeport: %v", err)
		}
		ls = append(ls, l)
		ts.Setenv(name, strconv.Itoa(l.Addr().(*net.TCPAddr).Port))
	}
}

func cmdSetFrom(ts *testscript.TestScript, neg bool, args []string) {
	if neg || len(args) != 3 {
		ts.Fatalf("usage: setfrom VAR FILE REGEXP")
	}
	re, err := regexp.Compile(args[2])
	if err != nil {
		ts.Fatalf("setfrom: %v", err)
	}
	m := re.FindStringSubmatch(ts.ReadFile(args[1]))
	switch {
	case m == nil:
		ts.Fatalf("setfrom: no match for %q in %s", args[2], args[1])
	case len(m) > 1:
		ts.Setenv(args[0], m[1])
	default:
		ts.Setenv(args[0], m[0])
	}
}
