package cli

import (
	"bytes"
	"context"
	"fmt"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"unsafe"
)

// openPTY returns the terminal end of a new pseudo-terminal, or skips the
// test when the machine has none to give.
func openPTY(t *testing.T) *os.File {
	t.Helper()
	master, err := os.OpenFile("/dev/ptmx", os.O_RDWR, 0)
	if err != nil {
		t.Skipf("no pseudo-terminal: %v", err)
	}
	t.Cleanup(func() { master.Close() })
	var unlock int32
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, master.Fd(), syscall.TIOCSPTLCK, uintptr(unsafe.Pointer(&unlock))); e != 0 {
		t.Skipf("unlocking the pseudo-terminal: %v", e)
	}
	var n uint32
	if _, _, e := syscall.Syscall(syscall.SYS_IOCTL, master.Fd(), syscall.TIOCGPTN, uintptr(unsafe.Pointer(&n))); e != 0 {
		t.Skipf("naming the pseudo-terminal: %v", e)
	}
	tty, err := os.OpenFile(fmt.Sprintf("/dev/pts/%d", n), os.O_RDWR|syscall.O_NOCTTY, 0)
	if err != nil {
		t.Skipf("opening the pseudo-terminal: %v", err)
	}
	t.Cleanup(func() { tty.Close() })
	return tty
}

// TestExportRefusesATerminal: audit export without --out on a terminal
// is refused as a wrong command line (exit 2), with a hint to use --out or
// redirect, and nothing is asked of the API: the export is the raw log,
// whose comments and user ids other parties wrote, for a file, not for a
// screen. To a file (--out, or stdout redirected, even to /dev/null, a
// character device but no terminal) it is written as before.
func TestExportRefusesATerminal(t *testing.T) {
	tty := openPTY(t)
	f := &fakeAPI{}
	srv := httptest.NewServer(f)
	defer srv.Close()
	env := map[string]string{EnvAddr: srv.URL, EnvToken: envToken, EnvConfigDir: t.TempDir()}
	run := func(stdout *os.File, args ...string) (int, string) {
		var stderr bytes.Buffer
		code := Run(context.Background(), args, func(k string) string { return env[k] }, stdout, &stderr)
		return code, stderr.String()
	}
	exports := func() int {
		f.mu.Lock()
		defer f.mu.Unlock()
		n := 0
		for _, c := range f.calls {
			if c.Path == "/v1/audit/export" {
				n++
			}
		}
		return n
	}

	for _, format := range []string{"jsonl", "csv"} {
		code, stderr := run(tty, "audit", "export", "--tenant", "contoso", "--format", format)
		if code != exitUsage || !strings.Contains(stderr, "--out") || !strings.Contains(stderr, "redirect") || !strings.HasPrefix(stderr, "lockboxctl: ") {
			t.Errorf("--format %s on a terminal: exit %d, stderr %q: want exit 2 with a hint to use --out or redirect", format, code, stderr)
		}
		if first, _, _ := strings.Cut(stderr, "\n"); strings.Count(first, "--out") != 1 {
			t.Errorf("the hint is not one line: %q", stderr)
		}
	}
	if n := exports(); n != 0 {
		t.Fatalf("the API got %d exports for a terminal", n)
	}

	out := filepath.Join(t.TempDir(), "audit.jsonl")
	if code, stderr := run(tty, "audit", "export", "--tenant", "contoso", "--out", out); code != 0 {
		t.Fatalf("--out with stdout on a terminal: exit %d, %s", code, stderr)
	}
	if b, err := os.ReadFile(out); err != nil || len(b) == 0 {
		t.Errorf("--out wrote %q, %v", b, err)
	}

	devNull, err := os.OpenFile(os.DevNull, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer devNull.Close()
	if code, stderr := run(devNull, "audit", "export", "--tenant", "contoso"); code != 0 {
		t.Fatalf("stdout redirected to %s: exit %d, %s", os.DevNull, code, stderr)
	}
	if n := exports(); n != 2 {
		t.Errorf("the API got %d exports, want 2 (--out, and %s)", n, os.DevNull)
	}
}
