package main

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lockbox-oss/lockbox/cli"
)

// runMainEnv, set in a child's environment, makes the test binary run
// lockboxctl's main instead of the tests: the signal handling under test
// is main's, and a process of its own is what receives the signal.
const runMainEnv = "LOCKBOX_TEST_LOCKBOXCTL_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(runMainEnv) == "1" {
		main()
		return
	}
	os.Exit(m.Run())
}

// TestSIGINTExits130: Ctrl-C while lockboxctl waits on the API exited 1,
// the code of a call that failed. It now exits 130 (128+SIGINT), as
// shells report a command that Ctrl-C stopped, saying it was interrupted.
func TestSIGINTExits130(t *testing.T) {
	stopMain(t, syscall.SIGINT, 130)
}

// TestSIGTERMExits143: SIGTERM (kill, a service manager, a CI job's
// timeout) exited 130 too, the code of Ctrl-C. It now exits 143
// (128+SIGTERM), as shells report a command that SIGTERM stopped.
func TestSIGTERMExits143(t *testing.T) {
	stopMain(t, syscall.SIGTERM, 143)
}

// stopMain runs lockboxctl's main in a child process, sends it sig while
// the API never answers, and wants it to exit with code, saying on one
// line that it was interrupted.
func stopMain(t *testing.T, sig syscall.Signal, code int) {
	t.Helper()
	if runtime.GOOS == "windows" {
		t.Skipf("no %s to send on Windows", sig)
	}
	arrived := make(chan struct{}, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case arrived <- struct{}{}:
		default:
		}
		<-r.Context().Done() // never answers
	}))
	defer srv.Close()

	cmd := mainCommand(t, srv.URL)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	select {
	case <-arrived:
	case err := <-exited:
		t.Fatalf("lockboxctl exited before calling the API: %v\n%s", err, stderr.String())
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		<-exited
		t.Fatalf("the call never reached the API\n%s", stderr.String())
	}
	if err := cmd.Process.Signal(sig); err != nil {
		t.Fatal(err)
	}
	select {
	case <-exited:
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		<-exited
		t.Fatalf("lockboxctl did not stop on %s", sig)
	}
	if got := cmd.ProcessState.ExitCode(); got != code || stderr.String() != "lockboxctl: interrupted\n" || stdout.Len() != 0 {
		t.Errorf("%s: exit %d, stdout %q, stderr %q: want exit %d and one line saying it was interrupted", sig, got, stdout.String(), stderr.String(), code)
	}
}

// mainCommand is lockboxctl's main, in a child process, listing the
// requests of the API at addr.
func mainCommand(t *testing.T, addr string) *exec.Cmd {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "get", "requests")
	// Not the developer's LOCKBOX_ settings (a CA file, a token file):
	// only the test's.
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "LOCKBOX_") {
			env = append(env, kv)
		}
	}
	cmd.Env = append(env, runMainEnv+"=1",
		"LOCKBOX_ADDR="+addr, "LOCKBOX_TOKEN=t.o.k", "LOCKBOX_CONFIG_DIR="+t.TempDir())
	return cmd
}

// TestSecondSIGINTExitsAtOnce: the first Ctrl-C cancels the call under way
// and lockboxctl exits once the run unwinds; when the unwinding itself
// hung (here: writing "interrupted" to a stderr nobody reads, as behind a
// stopped pager), a second Ctrl-C did nothing and only kill -9 ended it.
// It now exits at once, 130.
func TestSecondSIGINTExitsAtOnce(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("fills a pipe the Linux way")
	}
	arrived, gone := make(chan struct{}, 1), make(chan struct{}, 1)
	signal := func(ch chan struct{}) {
		select {
		case ch <- struct{}{}:
		default:
		}
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		signal(arrived)
		<-r.Context().Done() // never answers
		signal(gone)
	}))
	defer srv.Close()

	// stderr is a pipe already full, read only once lockboxctl is gone.
	stderrR, stderrW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer stderrR.Close()
	filled := fillPipe(t, stderrW)

	cmd := mainCommand(t, srv.URL)
	var stdout bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, stderrW
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	stderrW.Close()
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	await := func(ch <-chan struct{}, what string) {
		t.Helper()
		select {
		case <-ch:
		case err := <-exited:
			t.Fatalf("lockboxctl exited (%v) before %s", err, what)
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-exited
			t.Fatalf("lockboxctl never got to %s", what)
		}
	}
	await(arrived, "calling the API")
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	// The call was canceled: the first SIGINT was taken, and the run is
	// stuck on the full stderr.
	await(gone, "canceling the call on the first SIGINT")
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case <-exited:
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		<-exited
		t.Fatal("lockboxctl did not exit on a second SIGINT while the first was stuck")
	}
	rest, err := io.ReadAll(stderrR)
	if err != nil {
		t.Fatal(err)
	}
	if got := cmd.ProcessState.ExitCode(); got != 130 || stdout.Len() != 0 || len(rest) != filled {
		t.Errorf("exit %d, stdout %q, %d bytes on stderr after the %d it held: want exit 130 and nothing written (stderr was full)",
			got, stdout.String(), len(rest)-filled, filled)
	}
}

// fillPipe writes to w until the pipe holds all it can, and returns how
// many bytes that took.
func fillPipe(t *testing.T, w *os.File) int {
	t.Helper()
	rc, err := w.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	werr := rc.Write(func(fd uintptr) bool {
		// Whole pages, then single bytes into what is left of the last.
		for _, size := range []int{4096, 1} {
			chunk := bytes.Repeat([]byte{'.'}, size)
			for {
				m, err := syscall.Write(int(fd), chunk)
				if m > 0 {
					n += m
				}
				if err == syscall.EAGAIN {
					break
				}
				if err != nil {
					t.Errorf("filling the pipe: %v", err)
					return true
				}
			}
		}
		return true
	})
	if werr != nil {
		t.Fatal(werr)
	}
	return n
}

// TestWatchSignals: the first signal cancels the run with its cause; the
// second exits, without waiting for the run, with 128 plus its own
// number, saying so on one line.
func TestWatchSignals(t *testing.T) {
	for _, c := range []struct {
		first, second syscall.Signal
		code          int
	}{
		{syscall.SIGINT, syscall.SIGINT, 130},
		{syscall.SIGTERM, syscall.SIGINT, 130},
		{syscall.SIGINT, syscall.SIGTERM, 143},
	} {
		t.Run(c.first.String()+" then "+c.second.String(), func(t *testing.T) {
			signals := make(chan os.Signal, 2)
			ctx, cancel := context.WithCancelCause(context.Background())
			defer cancel(nil)
			var stderr bytes.Buffer
			exited := make(chan int, 1)
			// Waiting an hour for the line: a buffer takes it at once, and
			// the exit must come after it.
			go watchSignals(signals, cancel, &stderr, func(code int) { exited <- code }, time.Hour)

			signals <- c.first
			<-ctx.Done()
			if got := context.Cause(ctx); got != (cli.SignalCause{Signal: c.first}) {
				t.Errorf("cause %v, want the first signal, %v", got, c.first)
			}
			signals <- c.second
			select {
			case code := <-exited:
				if code != c.code || stderr.String() != "lockboxctl: interrupted again: exiting without waiting for the canceled call to end\n" {
					t.Errorf("exit %d, stderr %q: want exit %d and one line saying it did not wait", code, stderr.String(), c.code)
				}
			case <-time.After(30 * time.Second):
				t.Fatal("no exit on the second signal")
			}
		})
	}
}
