package server_test

import (
	"crypto/tls"
	"strings"
	"testing"

	"github.com/lockbox-oss/lockbox/internal/tlstest"
)

// TestHandshakeErrorLogIsBounded: net/http logs every failed TLS handshake
// on a listener, quoting the TLS error, and a ClientHello's error may quote
// what the client sent (a list of application protocols none of which the
// server speaks, up to 64 KiB, of bytes logged as four-byte escapes).
// Anyone who can reach a listener could make each connection a line of a
// quarter of a megabyte. The line is still written, cut short.
func TestHandshakeErrorLogIsBounded(t *testing.T) {
	serving := tlstest.NewCA(t, "lockbox serving CA")
	files := serving.WriteFiles(t, serving.Server(t, "lockbox"))
	lb := start(t, map[string]string{
		"LOCKBOX_TLS_CERT_FILE": files.CertFile,
		"LOCKBOX_TLS_KEY_FILE":  files.KeyFile,
		"LOCKBOX_UPSTREAMS":     "exchange=http://127.0.0.1:1",
	})
	var protos []string
	for range 200 {
		protos = append(protos, strings.Repeat("\xff", 250))
	}
	for name, addr := range map[string]string{"proxy": lb.srv.ProxyAddr(), "api": lb.srv.APIAddr(), "metrics": lb.srv.MetricsAddr()} {
		t.Run(name, func(t *testing.T) {
			before := len(lb.logs.String())
			c, err := tls.Dial("tcp", addr, &tls.Config{RootCAs: serving.Pool(), ServerName: "lockbox", NextProtos: protos})
			if err == nil {
				c.Close()
				t.Fatal("handshake offering no protocol the server speaks succeeded")
			}
			// The client hears the alert before the server logs.
			var line string
			waitFor(t, "the handshake error logged", func() bool {
				for l := range strings.Lines(lb.logs.String()[before:]) {
					if strings.Contains(l, "TLS handshake error") {
						line = l
						return true
					}
				}
				return false
			})
			if len(line) > 4<<10 {
				t.Errorf("one failed handshake logged %d bytes, want at most 4 KiB:\n%.600s…", len(line), line)
			}
		})
	}
}
