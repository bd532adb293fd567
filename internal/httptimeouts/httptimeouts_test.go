package httptimeouts_test

import (
	"net/http"
	"testing"
	"time"

	"github.com/lockbox-oss/lockbox/internal/httptimeouts"
)

func TestServerSetsAllFour(t *testing.T) {
	h := http.NotFoundHandler()
	s := httptimeouts.Timeouts{ReadHeader: 1, Read: 2, Write: 3, Idle: 4}.Server(h)
	if got := [4]time.Duration{s.ReadHeaderTimeout, s.ReadTimeout, s.WriteTimeout, s.IdleTimeout}; got != [4]time.Duration{1, 2, 3, 4} {
		t.Errorf("server timeouts (read header, read, write, idle) %v", got)
	}
	if s.Handler == nil {
		t.Error("no handler")
	}
}

func TestOrFillsZeroFields(t *testing.T) {
	got := httptimeouts.Timeouts{Read: 7}.Or(httptimeouts.Timeouts{ReadHeader: 1, Read: 2, Write: 3, Idle: 4})
	if want := (httptimeouts.Timeouts{ReadHeader: 1, Read: 7, Write: 3, Idle: 4}); got != want {
		t.Errorf("Or = %+v, want %+v", got, want)
	}
}
