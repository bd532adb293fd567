//go:build unix

package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// lockDevDir takes the lock of LOCKBOX_DEV_DIR for as long as this dev
// runs, and refuses when another dev holds it: two devs in one directory
// each ran their own empty store, and the second rewrote the token and env
// files to point at itself. flock, not a pid file: the kernel drops the
// lock when its holder exits, crashes or is killed, so none is left stale.
func lockDevDir(dir string) (unlock func(), err error) {
	path := filepath.Join(dir, "lock")
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("LOCKBOX_DEV_DIR: %w", err)
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		holder, _ := io.ReadAll(io.LimitReader(f, 32))
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			// The holder's pid, which it wrote there, so that the one it
			// was left running by (a closed terminal) can be found.
			which := ""
			if pid, err := strconv.Atoi(strings.TrimSpace(string(holder))); err == nil && pid > 0 {
				which = fmt.Sprintf(" (pid %d)", pid)
			}
			return nil, fmt.Errorf("LOCKBOX_DEV_DIR: another lockbox dev%s is already running with %s (its tokens and env file point at it): stop it, or set LOCKBOX_DEV_DIR to another directory", which, dir)
		}
		return nil, fmt.Errorf("LOCKBOX_DEV_DIR: lock %s: %w", path, err)
	}
	if err := f.Truncate(0); err == nil {
		_, _ = f.WriteAt([]byte(strconv.Itoa(os.Getpid())+"\n"), 0)
	}
	return func() { f.Close() }, nil
}
