package cli

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// TestInterruptExits130: a command stopped while it waits on the API
// (Ctrl-C: lockboxctl's context canceled) exited 1, the code of a call that
// failed, so a script could not tell "the user stopped it" from "it
// broke". It now exits 130, 128+SIGINT, as shells report a command Ctrl-C
// stopped, saying only that it was interrupted.
func TestInterruptExits130(t *testing.T) {
	arrived := make(chan struct{}, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case arrived <- struct{}{}:
		default:
		}
		<-r.Context().Done() // never answers
	}))
	defer srv.Close()

	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	env := map[string]string{EnvAddr: srv.URL, EnvToken: envToken, EnvConfigDir: t.TempDir()}
	var stdout, stderr bytes.Buffer
	done := make(chan int, 1)
	go func() {
		done <- Run(ctx, []string{"get", "requests"}, func(k string) string { return env[k] }, &stdout, &stderr)
	}()
	select {
	case <-arrived:
	case <-time.After(10 * time.Second):
		t.Fatal("the call never reached the API")
	}
	cancel()
	var code int
	select {
	case code = <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("lockboxctl did not stop when interrupted")
	}
	if code != 130 || stderr.String() != "lockboxctl: interrupted\n" || stdout.Len() != 0 {
		t.Errorf("exit %d, stdout %q, stderr %q: want exit 130 and one line saying it was interrupted", code, stdout.String(), stderr.String())
	}
}
