//go:build unix

package main

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"syscall"
	"testing"
)

// TestClosedStdoutExitsZero: "lockboxctl get requests | head -1" was
// killed by SIGPIPE once head had gone (exit 141 in a shell), failing the
// pipeline under "set -o pipefail". lockboxctl now ends quietly with
// exit 0, as a reader that took what it wanted is no failure.
func TestClosedStdoutExitsZero(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"requests": [{"id": "0190a1b2-0000-7000-8000-000000000001", "tenant": "contoso", "service": "exchange", "state": "pending_manager"}]}`)
	}))
	defer srv.Close()
	outR, outW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	outR.Close() // the reader is gone before lockboxctl writes
	defer outW.Close()
	cmd := mainCommand(t, srv.URL)
	cmd.Stdout = outW
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	err = cmd.Run()
	if ee, ok := errors.AsType[*exec.ExitError](err); ok {
		if ws, ok := ee.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			t.Fatalf("lockboxctl on a closed stdout ended by %s, want exit 0\n%s", ws.Signal(), stderr.String())
		}
		t.Fatalf("lockboxctl on a closed stdout: %v, want exit 0\n%s", err, stderr.String())
	} else if err != nil {
		t.Fatal(err)
	}
	if stderr.String() != "" {
		t.Errorf("stderr %q, want nothing", stderr.String())
	}
}
