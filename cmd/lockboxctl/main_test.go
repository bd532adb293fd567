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
	if runtime.GOOS == "windows" {
		t.Skip("no SIGINT to send on Windows")
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
	if err := cmd.Process.Signal(syscall.SIGINT); err != nil {
		t.Fatal(err)
	}
	select {
	case <-exited:
	case <-time.After(30 * time.Second):
		_ = cmd.Process.Kill()
		<-exited
		t.Fatal("lockboxctl did not stop on SIGINT")
	}
	if code := cmd.ProcessState.ExitCode(); code != 130 || stderr.String() != "lockboxctl: interrupted\n" || stdout.Len() != 0 {
		t.Errorf("exit %d, stdout %q, stderr %q: want exit 130 and one line saying it was interrupted", code, stdout.String(), stderr.String())
	}
}
