//go:build unix

package config

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

// TestSecretFileBoundedWhateverItIs: a secret variable's file is bounded
// (maxSecretFile) so that a wrong path is refused before it is read whole
// into memory. The bound was checked by os.Stat's size, so only for a
// regular file: a pipe (as bash's <(...) makes) or a device (/dev/zero
// named by mistake) was read whole, /dev/zero until the memory ran out.
func TestSecretFileBoundedWhateverItIs(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "password")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	big := strings.Repeat("a", 4*maxSecretFile)
	go func() {
		// Blocks until Load opens the FIFO for reading.
		f, err := os.OpenFile(fifo, os.O_WRONLY, 0)
		if err != nil {
			return
		}
		_, _ = f.WriteString(big)
		f.Close()
	}()
	type result struct {
		c   Config
		err error
	}
	done := make(chan result, 1)
	go func() {
		c, err := Load(map[string]string{
			"LOCKBOX_REDIS_URL":           "redis://127.0.0.1:6379",
			"LOCKBOX_REDIS_PASSWORD_FILE": fifo,
		})
		done <- result{c, err}
	}()
	var r result
	select {
	case r = <-done:
	case <-time.After(30 * time.Second):
		t.Fatal("Load did not return")
	}
	if r.err == nil {
		t.Errorf("LOCKBOX_REDIS_PASSWORD_FILE naming a pipe of %d bytes (the bound is %d) was read whole and taken as a %d-byte password, where a regular file that large is refused",
			len(big), maxSecretFile, len(r.c.RedisPassword.Value()))
	} else if !strings.Contains(r.err.Error(), "LOCKBOX_REDIS_PASSWORD_FILE") {
		t.Errorf("error does not name the variable: %v", r.err)
	}
	// A device: read up to the bound, then refused.
	if _, err := os.Stat("/dev/zero"); err == nil {
		_, err := Load(map[string]string{"LOCKBOX_REDIS_URL": "redis://127.0.0.1:6379", "LOCKBOX_SMTP_PASSWORD_FILE": "/dev/zero"})
		if err == nil || !strings.Contains(err.Error(), "LOCKBOX_SMTP_PASSWORD_FILE") || !strings.Contains(err.Error(), "larger than") {
			t.Errorf("LOCKBOX_SMTP_PASSWORD_FILE=/dev/zero: %v, want it refused as larger than the bound", err)
		}
	}
	// A pipe within the bound is a secret like any other.
	small := filepath.Join(t.TempDir(), "small")
	if err := syscall.Mkfifo(small, 0o600); err != nil {
		t.Fatal(err)
	}
	go func() {
		f, err := os.OpenFile(small, os.O_WRONLY, 0)
		if err != nil {
			return
		}
		_, _ = f.WriteString("s3cret\n")
		f.Close()
	}()
	c, err := Load(map[string]string{"LOCKBOX_REDIS_URL": "redis://127.0.0.1:6379", "LOCKBOX_REDIS_PASSWORD_FILE": small})
	if err != nil || c.RedisPassword.Value() != "s3cret" {
		t.Errorf("a pipe of 7 bytes: password %q, %v; want s3cret", c.RedisPassword.Value(), err)
	}
}
