package client

import (
	"bufio"
	"context"
	"errors"
	"net"
	"net/http"
	"testing"

	"github.com/lockbox-oss/lockbox/api/wire"
)

// TestNotSentTellsAWrittenCallFromOneNeverSent: a call that failed told
// nothing of whether the server could have read it. A TLS handshake the
// other side cut and a connection closed after the call was written both
// came back as "EOF", so lockboxctl said of an approval never sent that it
// "may have been carried out", and filed a request's retry as if the
// first could have been filed. A call never written whole is now a
// *NotSentError; one written is not.
func TestNotSentTellsAWrittenCallFromOneNeverSent(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			// A plain-HTTP server reads the call, then closes without a
			// word; to a TLS client, the same close ends its handshake.
			_, _ = http.ReadRequest(bufio.NewReader(c))
			_ = c.Close()
		}
	}()
	in := wire.CreateRequest{Tenant: "contoso", Service: "exchange", ServiceRequest: "SR-1", Reason: "r", Duration: wire.Duration(3600e9)}
	for _, tc := range []struct {
		scheme  string
		notSent bool
	}{
		{"http", false},
		{"https", true},
	} {
		t.Run(tc.scheme, func(t *testing.T) {
			c, err := New(tc.scheme+"://"+ln.Addr().String(), "tok")
			if err != nil {
				t.Fatal(err)
			}
			_, err = c.CreateRequestOnce(context.Background(), in, "k1")
			if err == nil {
				t.Fatal("the call succeeded")
			}
			_, notSent := errors.AsType[*NotSentError](err)
			if notSent != tc.notSent {
				t.Errorf("error %v (%T): NotSentError %v, want %v", err, err, notSent, tc.notSent)
			}
		})
	}
}
