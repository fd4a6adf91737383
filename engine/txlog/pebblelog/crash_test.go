package pebblelog

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/electric-sql/electric-go/engine/txlog"
	"github.com/electric-sql/electric-go/engine/txlog/logtest"
)

// crashChildEnv names the data directory in which the re-executed test
// binary commits until it is killed.
const crashChildEnv = "TXLOG_CRASH_CHILD_DIR"

// crashChild commits batches forever, printing "ack N" once the batch with
// entry N is durable. Each batch holds its entry's rows and sets the source
// position to N, so a partial batch would show as a mismatch.
func crashChild(dir string) {
	l, err := Open(dir, Options{})
	if err != nil {
		fmt.Println("open:", err)
		os.Exit(2)
	}
	for {
		off := l.Head() + 1
		b := &txlog.Batch{}
		e := logtest.Entry(off, 200)
		b.Append(e)
		for _, c := range e.Changes {
			b.SetRow(c.Table, c.Key, logtest.Row(c.Key))
		}
		b.SetPosition("src", []byte(strconv.FormatUint(off, 10)))
		if err := l.Commit(b); err != nil {
			fmt.Println("commit:", err)
			os.Exit(2)
		}
		fmt.Printf("ack %d\n", off)
	}
}

func TestCrashSafety(t *testing.T) {
	if dir := os.Getenv(crashChildEnv); dir != "" {
		crashChild(dir)
		return
	}
	dir := t.TempDir()
	var acked uint64
	for round, kills := range []int{5, 40, 17, 1, 60} {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		cmd := exec.CommandContext(ctx, os.Args[0], "-test.run=^TestCrashSafety$")
		cmd.Env = append(os.Environ(), crashChildEnv+"="+dir)
		out, err := cmd.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd.Stderr = os.Stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(out)
		for n := 0; n < kills && sc.Scan(); {
			line := sc.Text()
			if s, ok := strings.CutPrefix(line, "ack "); ok {
				v, err := strconv.ParseUint(s, 10, 64)
				if err != nil {
					t.Fatalf("child said %q", line)
				}
				if v <= acked {
					t.Fatalf("round %d: child acked %d after %d", round, v, acked)
				}
				acked = v
				n++
			} else if !strings.HasPrefix(line, "=== RUN") {
				t.Fatalf("child: %s", line)
			}
		}
		// The child is in the middle of its next commit.
		if err := cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		_ = cmd.Wait()
		cancel()

		l, err := Open(dir, Options{})
		if err != nil {
			t.Fatalf("round %d: reopen after kill: %v", round, err)
		}
		head := l.Head()
		if head < acked {
			t.Fatalf("round %d: head %d, but %d was acknowledged", round, head, acked)
		}
		// Everything or nothing of each batch: the position matches the
		// head, the head entry's rows exist, the next one's do not.
		pos, err := l.Position("src")
		if err != nil || string(pos) != strconv.FormatUint(head, 10) {
			t.Fatalf("round %d: position %q (err %v), head %d", round, pos, err, head)
		}
		for _, off := range []uint64{head, head + 1} {
			r, err := l.Row("public.items", fmt.Sprintf("k%d-199", off))
			if err != nil || (r != nil) != (off == head) {
				t.Fatalf("round %d: row of entry %d = %v, %v (head %d)", round, off, r, err, head)
			}
		}
		rd := l.NewReader(0)
		got := logtest.ReadN(t, rd, int(head))
		for i, e := range got {
			if e.Offset != uint64(i+1) || len(e.Changes) != 200 {
				t.Fatalf("round %d: entry %d = offset %d with %d changes", round, i+1, e.Offset, len(e.Changes))
			}
		}
		rd.Close()
		acked = head // the next child continues from here
		if err := l.Close(); err != nil {
			t.Fatal(err)
		}
	}
}
