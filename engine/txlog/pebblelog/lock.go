package pebblelog

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// lockFile is the file in the state directory that an open Log holds an
// exclusive flock on, with the holder's pid in it for the error message.
const lockFile = "electric.lock"

// ErrLocked is returned by Open when another process holds the state
// directory.
var ErrLocked = errors.New("another electric process holds it")

// lockDir takes the state directory's lock. The kernel drops a flock when
// its holder dies, so a crash never leaves the directory locked.
func lockDir(dir string) (*os.File, error) {
	path := filepath.Join(dir, lockFile)
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o644)
	if err != nil {
		return nil, fmt.Errorf("open txlog: locking the state directory: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			if b, rerr := os.ReadFile(path); rerr == nil {
				if pid, perr := strconv.Atoi(strings.TrimSpace(string(b))); perr == nil && pid > 0 {
					return nil, fmt.Errorf("%w (pid %d)", ErrLocked, pid)
				}
			}
			return nil, ErrLocked
		}
		return nil, fmt.Errorf("open txlog: locking the state directory: %w", err)
	}
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return f, nil
}

// unlockDir releases the lock; the file stays (removing it would race a
// process that has just opened it).
func unlockDir(f *os.File) {
	if f != nil {
		_ = syscall.Flock(int(f.Fd()), syscall.LOCK_UN)
		_ = f.Close()
	}
}
