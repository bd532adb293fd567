package writedeadline

import (
	"context"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/lockbox-oss/lockbox/internal/clock"
)

// deadlines records every write deadline a Writer sets.
type deadlines struct {
	*httptest.ResponseRecorder
	set chan time.Time
}

func (d deadlines) SetWriteDeadline(t time.Time) error {
	d.set <- t
	return nil
}

// TestTickCountsFromNowNotFromTheTick: a tick runs late when the
// goroutine waiting on it is not scheduled for a while (a loaded machine,
// a long GC pause), and a Ticker's channel hands over the time the tick
// was due, not when it is received. A deadline counted from that time
// gave the next write the timeout less the pause (here half of it), and a
// pause of the whole timeout cut the answer on the spot: the deadline is
// counted from the clock when it is moved.
func TestTickCountsFromNowNotFromTheTick(t *testing.T) {
	const timeout = 8 * time.Second
	start := time.Date(2026, 12, 6, 12, 0, 0, 0, time.UTC)
	clk := clock.NewFake(start)
	ticks := make(chan time.Time)
	rw := deadlines{httptest.NewRecorder(), make(chan time.Time, 8)}
	r := httptest.NewRequest("GET", "/", nil)
	r = r.WithContext(context.WithValue(r.Context(), http.ServerContextKey, &http.Server{WriteTimeout: timeout}))
	w := newWriter(rw, r, clk.Now, func(d time.Duration) (<-chan time.Time, func()) {
		if d != timeout/4 {
			t.Errorf("ticker every %s, want a quarter of the timeout, %s", d, timeout/4)
		}
		return ticks, func() {}
	})
	defer w.Close()
	if got := <-rw.set; !got.Equal(start.Add(timeout)) {
		t.Fatalf("New set the deadline to %s, want %s", got, start.Add(timeout))
	}

	// The first tick was due a quarter of the timeout after the start,
	// and reaches the goroutine half the timeout late.
	due := start.Add(timeout / 4)
	clk.Set(start.Add(timeout / 4 * 3))
	ticks <- due
	if got, want := <-rw.set, clk.Now().Add(timeout); !got.Equal(want) {
		t.Errorf("a late tick set the deadline to %s, %s from now; want %s, the whole timeout from now",
			got.Format(time.TimeOnly), got.Sub(clk.Now()), want.Format(time.TimeOnly))
	}
}
