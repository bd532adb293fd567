package e2e

import (
	"bytes"
	"context"
	"errors"
	osexec "os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"
)

// makeLine is a line of make's own, at any level of recursion.
var makeLine = regexp.MustCompile(`^make(\[[0-9]+\])?: `)

// "make run" on a machine whose Go module cache is empty and that has no
// network (GOPROXY=off stands for both) printed Go's "module lookup
// disabled" once for every import, some forty lines, and stopped: nothing
// said that the first run downloads modules and needs network once. It
// still shows Go's errors, and ends with one line that says so.
func TestMakeRunWithoutModulesSaysWhatItNeeds(t *testing.T) {
	if _, err := osexec.LookPath("make"); err != nil {
		t.Fatalf("make is not installed: %v", err)
	}
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	// Bounds a failure; were dev to start, it is stopped here.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := osexec.CommandContext(ctx, "make", "--no-print-directory", "run")
	cmd.Dir = root
	cmd.Env = scrubbedEnv(
		"GOMODCACHE="+t.TempDir(), "GOPROXY=off", "GOFLAGS=", "GOWORK=off", "GOTOOLCHAIN=local",
		"LOCKBOX_DEV_DIR="+filepath.Join(t.TempDir(), "dev"), "LOCKBOX_API_ADDR=127.0.0.1:0",
		"LOCKBOX_PROXY_ADDR=127.0.0.1:0", "LOCKBOX_METRICS_ADDR=127.0.0.1:0",
	)
	// make, go run and the server in one process group, stopped together.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err = cmd.Run()
	if ctx.Err() != nil {
		t.Fatalf("make run did not stop within 2 minutes without its modules:\n%s", out.String())
	}
	if _, ok := errors.AsType[*osexec.ExitError](err); !ok {
		t.Fatalf("make run: %v, want it to fail\n%s", err, out.String())
	}
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	// The last line before make's own "Error 1": "make: ***", or
	// "make[1]: ***" when the suite itself runs under make (make test).
	var last string
	for i := len(lines) - 1; i >= 0; i-- {
		if !makeLine.MatchString(lines[i]) {
			last = lines[i]
			break
		}
	}
	for _, want := range []string{"make run: ", "network", "go mod download"} {
		if !strings.Contains(last, want) {
			t.Errorf("last line %q lacks %q; output:\n%s", last, want, out.String())
		}
	}
}
