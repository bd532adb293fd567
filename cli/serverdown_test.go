package cli

import (
	"bytes"
	"context"
	"net"
	"strings"
	"testing"
)

// With lockbox dev stopped (Ctrl-C, a reboot), every command said
// "cannot reach the Lockbox API at http://127.0.0.1:8080: dial tcp
// 127.0.0.1:8080: connect: connection refused": the cause, in Go's words,
// and nothing of what to do. On a loopback address, where nothing
// listening means this machine's Lockbox is not running, the line now
// says so and how to start it, or which address to give instead.
func TestNothingListeningOnLoopbackSaysHowToStart(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	var stdout, stderr bytes.Buffer
	vars := map[string]string{EnvAddr: addr, EnvToken: envToken, EnvConfigDir: t.TempDir()}
	code := Run(context.Background(), []string{"get", "requests"}, func(k string) string { return vars[k] }, &stdout, &stderr)
	want := "lockboxctl: cannot reach the Lockbox API at http://" + addr + ": dial tcp " + addr + ": connect: connection refused; nothing listens there: start Lockbox (make run starts lockbox dev), or give the address it listens on (--addr, $LOCKBOX_ADDR)\n"
	if code != exitError || stderr.String() != want {
		t.Errorf("exit %d, stderr:\n%s\nwant exit 1 and:\n%s", code, stderr.String(), want)
	}
	if strings.Count(stderr.String(), "\n") != 1 {
		t.Errorf("not one line: %q", stderr.String())
	}
}
