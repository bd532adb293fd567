package main

import (
	"bytes"
	"context"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A second checkout's "make run", with another "lockbox dev" on the
// default ports, stopped at "LOCKBOX_METRICS_ADDR: listen tcp
// 127.0.0.1:8082: bind: address already in use": the first of three ports
// taken, and no word of how to run a second dev. Set to another port, the
// next start stopped at the API's, then the proxy's. The line still names
// the variable and the address, and says what holds it and how to start
// on three free ports at once, where to read them afterwards.
func TestDevSaysHowToRunBesideAPortTaken(t *testing.T) {
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	for _, name := range []string{"LOCKBOX_API_ADDR", "LOCKBOX_PROXY_ADDR", "LOCKBOX_METRICS_ADDR"} {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "dev")
			env := devEnv(dir)
			env[name] = taken.Addr().String()
			// Bounds a start that should not happen.
			ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
			defer cancel()
			var out, errb bytes.Buffer
			if code := run(ctx, []string{"dev"}, env, &out, &errb); code != 1 {
				t.Fatalf("exit %d, want 1\nstdout: %s\nstderr: %s", code, out.String(), errb.String())
			}
			want := "lockbox: " + name + ": listen tcp " + taken.Addr().String() + ": bind: address already in use: another lockbox dev or another program listens there: stop it, or start this one on free ports with LOCKBOX_API_ADDR=127.0.0.1:0 LOCKBOX_PROXY_ADDR=127.0.0.1:0 LOCKBOX_METRICS_ADDR=127.0.0.1:0 (its banner and " + filepath.Join(dir, "env") + " name them)\n"
			var last string
			for line := range strings.Lines(errb.String()) {
				if strings.HasPrefix(line, "lockbox: ") {
					last = line
				}
			}
			if last != want {
				t.Errorf("stderr ends with\n%s\nwant\n%s\nall of stderr:\n%s", last, want, errb.String())
			}
		})
	}
}
