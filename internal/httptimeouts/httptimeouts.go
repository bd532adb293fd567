// Package httptimeouts names the four timeouts that bound an http.Server's
// connections, so that every server Lockbox starts sets all four from one
// value, and tests shorten them as one. net/http waits on a client for as
// long as it likes wherever one of them is zero.
//
// It imports only the standard library: lockboxctl links it.
package httptimeouts

import (
	"cmp"
	"net/http"
	"time"
)

// Timeouts are an http.Server's ReadHeaderTimeout, ReadTimeout,
// WriteTimeout and IdleTimeout.
type Timeouts struct {
	ReadHeader, Read, Write, Idle time.Duration
}

// Server returns a server of h bounded by t; the caller sets the rest.
//
// Read also bounds a request that declares a body it never sends when its
// handler does not read it: net/http reads (to discard) what the handler
// left before it answers.
func (t Timeouts) Server(h http.Handler) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: t.ReadHeader,
		ReadTimeout:       t.Read,
		WriteTimeout:      t.Write,
		IdleTimeout:       t.Idle,
		HTTP2:             HTTP2(t.Write),
	}
}

// HTTP2 is the HTTP/2 setting of a server whose WriteTimeout is write: a
// write to the connection that moves no byte for write fails, and the
// connection is closed. net/http clears an HTTP/2 connection's own write
// deadline once TLS is done, and a stream's deadlines act only while the
// connection's frame writer is free: a client that opened wide
// flow-control windows, asked for answers and then stopped reading its
// socket held the writer in a write for good, and behind it every stream's
// handler (up to 250), their resets and the idle timeout's GOAWAY. The
// timeout moves on with each byte written, so a long answer that keeps
// moving is not cut.
func HTTP2(write time.Duration) *http.HTTP2Config {
	return &http.HTTP2Config{WriteByteTimeout: write}
}

// Or returns t with each zero field taken from d.
func (t Timeouts) Or(d Timeouts) Timeouts {
	return Timeouts{
		ReadHeader: cmp.Or(t.ReadHeader, d.ReadHeader),
		Read:       cmp.Or(t.Read, d.Read),
		Write:      cmp.Or(t.Write, d.Write),
		Idle:       cmp.Or(t.Idle, d.Idle),
	}
}
