package server

import (
	"net/http"
	"sync/atomic"
)

// drainCount counts the calls that finish once the drain has begun: the
// calls a stop waited for, which the "lockbox stopped" line reports so an
// SRE sees what the stop cost. Counted as they finish rather than read
// off at the stop signal, so a call whose connection was accepted just
// before the listeners closed, and whose handler started after, counts
// too.
type drainCount struct {
	draining atomic.Bool
	drained  atomic.Int64
}

// wrap counts h's calls that end while draining.
func (d *drainCount) wrap(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		defer func() {
			if d.draining.Load() {
				d.drained.Add(1)
			}
		}()
		h.ServeHTTP(w, r)
	})
}
