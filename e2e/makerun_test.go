package e2e

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"os"
	osexec "os/exec"
	"path/filepath"
	"regexp"
	"strconv"
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

// "make run" ran "go run ./cmd/lockbox dev", and go run dies of a SIGTERM
// without passing it on to the program it runs. A SIGTERM to make (kill,
// an editor's stop button, a supervisor) ended make and go run and left
// lockbox dev running on its ports, holding
// LOCKBOX_DEV_DIR, so the next "make run" was refused; go run's build
// directory stayed in the temporary directory too. The SIGTERM now reaches
// lockbox dev, which stops, and make ends once it has: nothing is left.
func TestMakeRunStopsOnSIGTERM(t *testing.T) {
	if _, err := osexec.LookPath("make"); err != nil {
		t.Fatalf("make is not installed: %v", err)
	}
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	// Bounds a failure. make run's build is a static one (CGO_ENABLED=0,
	// -trimpath), which shares nothing with the race-enabled tests' builds:
	// run alone on a clean machine it compiles every dependency, beside the
	// other packages' tests, and took over 5 minutes on a loaded one.
	// ("make test" vets with its flags first, which leaves it the link.)
	ctx, cancel := context.WithTimeout(context.Background(), 12*time.Minute)
	defer cancel()
	cmd := osexec.CommandContext(ctx, "make", "--no-print-directory", "run")
	cmd.Dir = root
	cmd.Env = scrubbedEnv(
		"LOCKBOX_DEV_DIR="+filepath.Join(t.TempDir(), "dev"), "LOCKBOX_API_ADDR=127.0.0.1:0",
		"LOCKBOX_PROXY_ADDR=127.0.0.1:0", "LOCKBOX_METRICS_ADDR=127.0.0.1:0",
	)
	// make and what it starts in a process group of their own: the test
	// signals make alone, and asks the group afterwards who is left.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	// A file, not a buffer: a process left behind would hold a pipe open
	// and Wait with it.
	logs, err := os.Create(filepath.Join(t.TempDir(), "stderr"))
	if err != nil {
		t.Fatal(err)
	}
	defer logs.Close()
	cmd.Stderr = logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pgid := cmd.Process.Pid
	// Whatever happens, nothing of the group outlives the test.
	defer syscall.Kill(-pgid, syscall.SIGKILL)
	readLogs := func() string {
		b, _ := os.ReadFile(logs.Name())
		return string(b)
	}

	banner := make(chan struct{})
	go func() {
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			if strings.Contains(sc.Text(), "Stop with Ctrl-C.") {
				close(banner)
				break
			}
		}
		for sc.Scan() {
		}
	}()
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case <-banner:
	case err := <-exited:
		t.Fatalf("make run ended before lockbox dev was running: %v\n%s", err, readLogs())
	case <-ctx.Done():
		t.Fatalf("make run: no banner within 12 minutes\n%s", readLogs())
	}

	if err := syscall.Kill(cmd.Process.Pid, syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	select {
	case <-exited:
	case <-time.After(time.Minute):
		t.Fatalf("make run still running a minute after its SIGTERM\n%s", readLogs())
	}
	// make is gone; anything it started and left running is still in the
	// group. The deadline only bounds a failure.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		err := syscall.Kill(-pgid, 0)
		if errors.Is(err, syscall.ESRCH) {
			break
		}
		if time.Now().After(deadline) {
			out, _ := osexec.Command("pgrep", "-a", "-g", strconv.Itoa(pgid)).CombinedOutput()
			t.Fatalf("make run ended on SIGTERM, and left running:\n%s\nlogs:\n%s", out, readLogs())
		}
	}
}
