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
	}
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
