//go:build unix

package main

import (
	"os"
	"strconv"
	"strings"
	"testing"
)

// TestDevLockNamesItsHolder: a second lockbox dev in one directory is
// refused, and the refusal names the first one's pid: one left running by
// a closed terminal had to be hunted for with ps.
func TestDevLockNamesItsHolder(t *testing.T) {
	dir := t.TempDir()
	unlock, err := lockDevDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	_, err = lockDevDir(dir)
	if want := "another lockbox dev (pid " + strconv.Itoa(os.Getpid()) + ") is already running"; err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("a second lock: %v; want %q", err, want)
	}
	unlock()
	again, err := lockDevDir(dir)
	if err != nil {
		t.Fatalf("once the first let go: %v", err)
	}
	again()
}
