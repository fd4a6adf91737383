package devenv

import (
	"errors"
	"fmt"
	"io"
	"sync"
	"time"
)

// progress shows one line per step: on a terminal a spinner with the elapsed
// time while the step runs, in a pipe a plain line when it ends.
type progress struct {
	w   io.Writer
	tty bool
	mu  sync.Mutex
}

// warning is a step outcome that is reported but does not fail the command.
type warning struct{ msg string }

func (w warning) Error() string { return w.msg }

// markColours colour the marks on a terminal: green done, yellow warned,
// red failed.
var markColours = map[string]string{"✓": "\x1b[32m", "!": "\x1b[33m", "✗": "\x1b[31m"}

var spinnerFrames = []string{"⠋", "⠙", "⠹", "⠸", "⠼", "⠴", "⠦", "⠧", "⠇", "⠏"}

// step runs fn under a progress line titled title. fn returns a detail shown
// after the title; an error of type warning is shown with "!" and not
// returned.
func (p *progress) step(title string, fn func() (string, error)) error {
	start := time.Now()
	stop := make(chan struct{})
	var wg sync.WaitGroup
	if p.tty {
		wg.Add(1)
		go func() {
			defer wg.Done()
			t := time.NewTicker(100 * time.Millisecond)
			defer t.Stop()
			for i := 0; ; i++ {
				p.mu.Lock()
				fmt.Fprintf(p.w, "\r\x1b[K%s %s  %s", spinnerFrames[i%len(spinnerFrames)], title, elapsed(time.Since(start)))
				p.mu.Unlock()
				select {
				case <-stop:
					return
				case <-t.C:
				}
			}
		}()
	}
	detail, err := fn()
	close(stop)
	wg.Wait()
	took := elapsed(time.Since(start))
	var warn warning
	switch {
	case errors.As(err, &warn):
		p.line("!", title, warn.msg, took)
		return nil
	case err != nil:
		p.line("✗", title, "failed", took)
		return err
	}
	p.line("✓", title, detail, took)
	return nil
}

// line prints a finished step (took may be empty for instant facts).
func (p *progress) line(mark, title, detail, took string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.tty {
		fmt.Fprint(p.w, "\r\x1b[K")
	}
	if p.tty {
		mark = markColours[mark] + mark + "\x1b[0m"
	}
	s := mark + " " + title
	if detail != "" {
		s += ": " + detail
	}
	if took != "" {
		s += " (" + took + ")"
	}
	fmt.Fprintln(p.w, s)
}

func elapsed(d time.Duration) string {
	return fmt.Sprintf("%.1fs", d.Seconds())
}
