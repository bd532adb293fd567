package console_test

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/lockbox-oss/lockbox/audit"
	"github.com/lockbox-oss/lockbox/audit/record"
	"github.com/lockbox-oss/lockbox/console"
	"github.com/lockbox-oss/lockbox/identity"
	"github.com/lockbox-oss/lockbox/internal/keys"
	"github.com/lockbox-oss/lockbox/internal/redistest"
)

// TestAuditExportEndsWhenTheBrowserGoesAwayAfterTheDeadline: the admin
// center's export is not bound by its page's deadline (Config.Timeout), but
// a browser that goes away ends it, also once that deadline has passed.
// The export's context was derived from the page's, which ended at the
// deadline and so could no longer tell when the browser left: an export
// reading a long log for a selective filter, with nothing written yet,
// read on to the end for no one.
func TestAuditExportEndsWhenTheBrowserGoesAwayAfterTheDeadline(t *testing.T) {
	parallel(t)
	probe := &exportProbe{reading: make(chan struct{}), ended: make(chan error, 1)}
	late := &sessionReadPastDeadline{}
	e := newEnv(t, func(c *console.Config) {
		// Long enough for the sign-in's and the page's store calls on a
		// loaded machine; the page waits it out (sessionReadPastDeadline).
		c.Timeout = 2 * time.Second
		rdb := redistest.Clone(t, c.Redis)
		rdb.AddHook(late)
		c.Redis = rdb
		probe.Audit = c.Audit
		c.Audit = probe
	})
	b := e.signIn(auditor)
	late.armed.Store(true) // the export's page: its deadline passes before it exports

	ctx, leave := context.WithCancel(context.Background())
	defer leave()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, e.srv.URL+"/console/audit/export.csv?tenant=contoso", nil)
	if err != nil {
		t.Fatal(err)
	}
	answered := make(chan error, 1)
	go func() {
		res, err := b.c.Do(req)
		if err == nil {
			res.Body.Close()
		}
		answered <- err
	}()
	select {
	case <-probe.reading:
	case err := <-answered:
		t.Fatalf("answered before the export read a record: %v", err)
	case <-time.After(20 * time.Second):
		t.Fatal("the export did not start")
	}
	if !late.waited.Load() {
		t.Fatal("the export began before its page's deadline passed")
	}
	leave() // the browser goes away; nothing was written to it
	<-answered
	if err := <-probe.ended; !errors.Is(err, context.Canceled) {
		t.Fatalf("the export went on after its browser left: %v", err)
	}
}

// sessionReadPastDeadline, once armed, holds the next read of a console
// session until the deadline of the page that reads it has passed, so the
// page goes on after it (as one whose store calls took the whole deadline
// would).
type sessionReadPastDeadline struct {
	armed, waited atomic.Bool
}

func (h *sessionReadPastDeadline) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *sessionReadPastDeadline) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		args := cmd.Args()
		if cmd.Name() != "get" || len(args) < 2 {
			return err
		}
		if k, _ := args[1].(string); !strings.HasPrefix(k, keys.ConsoleSession("")) || !h.armed.CompareAndSwap(true, false) {
			return err
		}
		if _, ok := ctx.Deadline(); !ok {
			return err // no deadline to wait out: waited stays false
		}
		<-ctx.Done()
		h.waited.Store(true)
		return err
	}
}
func (h *sessionReadPastDeadline) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}

// exportProbe exports from the real log, and holds the export at its first
// record, as a long read between two matches would, until the export's
// context ends (or 10 s pass); ended gets the export's error.
type exportProbe struct {
	console.Audit
	reading chan struct{}
	ended   chan error
}

// errStillReading is what exportProbe reports when no one stopped it.
var errStillReading = errors.New("the export's context was not canceled")

func (p *exportProbe) Export(ctx context.Context, who identity.Principal, q audit.Query, w func(record.Record) error) error {
	first := true
	err := p.Audit.Export(ctx, who, q, func(r record.Record) error {
		if first {
			first = false
			close(p.reading)
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(10 * time.Second):
				return errStillReading
			}
		}
		return w(r)
	})
	p.ended <- err
	return err
}
