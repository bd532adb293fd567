package main

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"runtime"
	"strings"
	"syscall"
	"testing"
	"time"
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
		"LOCKBOX_ADDR="+srv.URL, "LOCKBOX_TOKEN=t.o.k", "LOCKBOX_CONFIG_DIR="+t.TempDir())
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
