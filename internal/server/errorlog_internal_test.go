package server

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

// TestErrorLogKeepsPanicStacks: the cut of net/http's long messages leaves
// a handler's panic its whole stack, which is what makes it fixable, and
// cuts every other message whole, lines and all.
func TestErrorLogKeepsPanicStacks(t *testing.T) {
	var buf bytes.Buffer
	l := errorLog(slog.New(slog.NewJSONHandler(&buf, nil)))
	stack := "goroutine 7 [running]:\n" + strings.Repeat("net/http.(*conn).serve(0xc000123456)\n\t/usr/lib/go/src/net/http/server.go:2009 +0x5f4\n", 100)
	l.Printf("%s127.0.0.1:5000: %s\n%s", panicPrefix, strings.Repeat("v", 4<<10), stack)
	got := buf.String()
	// log.Logger drops the message's last line ending.
	want := strings.ReplaceAll(strings.ReplaceAll(strings.TrimSuffix(stack, "\n"), "\n", `\n`), "\t", `\t`)
	if !strings.Contains(got, want) {
		t.Errorf("the panic's stack was not kept whole:\n%.2000s", got)
	}
	if strings.Contains(got, strings.Repeat("v", maxErrorLogMessage)) {
		t.Errorf("the panic's first line was not cut:\n%.2000s", got)
	}

	buf.Reset()
	l.Printf("http: TLS handshake error from 127.0.0.1:5000: tls: client requested unsupported application protocols ([%s])",
		strings.Repeat("a\n", 8<<10))
	if n := buf.Len(); n > 2*maxErrorLogMessage {
		t.Errorf("a handshake error of many lines logged %d bytes:\n%.2000s", n, buf.String())
	}
	if !strings.Contains(buf.String(), "TLS handshake error") {
		t.Errorf("the handshake error was not logged: %s", buf.String())
	}
}
