package server_test

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/lockbox-oss/lockbox/grants"
	"github.com/lockbox-oss/lockbox/identity"
	"github.com/lockbox-oss/lockbox/internal/server"
	"github.com/lockbox-oss/lockbox/notify"
)

// signalHandler sends on seen each time a record with message msg is
// logged.
type signalHandler struct {
	msg  string
	seen chan<- struct{}
}

func (h signalHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h signalHandler) Handle(_ context.Context, r slog.Record) error {
	if r.Message == h.msg {
		select {
		case h.seen <- struct{}{}:
		default:
		}
	}
	return nil
}
func (h signalHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h signalHandler) WithGroup(string) slog.Handler      { return h }

// TestSweepAppliesRequestRetention: with LOCKBOX_REQUEST_RETENTION set,
// the jobs' sweep deletes a request that ended longer ago than it.
func TestSweepAppliesRequestRetention(t *testing.T) {
	seen := make(chan struct{}, 1)
	lb := start(t, map[string]string{"LOCKBOX_REQUEST_RETENTION": "28h", "LOCKBOX_AUDIT_RETENTION": "28h",
		"LOCKBOX_UPSTREAMS": "exchange=http://127.0.0.1:1"},
		func(o *server.Options) {
			o.SweepInterval = 10 * time.Millisecond
			o.Logger = slog.New(signalHandler{msg: "request retention deleted requests", seen: seen})
		})
	ctx := context.Background()
	op := grants.Actor{Principal: identity.Principal{Subject: alice.Subject, Roles: alice.Roles}, ClientIP: "198.51.100.1"}
	r, err := lb.srv.Requests.Create(ctx, op, grants.CreateInput{Tenant: "contoso", Service: "exchange",
		ServiceRequest: "SR-1", Reason: "mailbox will not open", Duration: grants.Duration(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lb.srv.Requests.Act(ctx, r.ID, grants.ActionCancel, op, ""); err != nil {
		t.Fatal(err)
	}
	lb.clk.Advance(29 * time.Hour)
	// The deadline only bounds a failure: a sweep that never applies
	// request retention never logs it.
	select {
	case <-seen:
	case <-time.After(30 * time.Second):
		t.Fatal("no sweep applied request retention 30s after the request was an hour past the retention")
	}
	if _, err := lb.srv.Requests.Get(ctx, manager, r.ID); !errors.Is(err, grants.ErrNotFound) {
		t.Errorf("Get of a request past retention: %v, want not found", err)
	}
}

// TestSweepGoesOnWithARetentionBacklog: a run of request retention that
// stopped at its limit, with more due, is followed by another a minute
// on, not an hour: a backlog goes a run a minute until it is gone.
func TestSweepGoesOnWithARetentionBacklog(t *testing.T) {
	seen := make(chan struct{}, 1)
	lb := start(t, map[string]string{"LOCKBOX_REQUEST_RETENTION": "28h", "LOCKBOX_AUDIT_RETENTION": "28h",
		"LOCKBOX_UPSTREAMS": "exchange=http://127.0.0.1:1"},
		func(o *server.Options) {
			o.SweepInterval = 10 * time.Millisecond
			o.Logger = slog.New(signalHandler{msg: "request retention deleted requests", seen: seen})
			o.RequestRetentionLimit = 1
		})
	ctx := context.Background()
	op := grants.Actor{Principal: identity.Principal{Subject: alice.Subject, Roles: alice.Roles}, ClientIP: "198.51.100.1"}
	var ids []string
	for range 3 {
		r, err := lb.srv.Requests.Create(ctx, op, grants.CreateInput{Tenant: "contoso", Service: "exchange",
			ServiceRequest: "SR-1", Reason: "mailbox will not open", Duration: grants.Duration(time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := lb.srv.Requests.Act(ctx, r.ID, grants.ActionCancel, op, ""); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, r.ID)
	}
	lb.clk.Advance(29 * time.Hour)
	for run := 1; run <= len(ids); run++ {
		// The deadline only bounds a failure: a run an hour on never
		// comes, the clock being moved a minute only.
		select {
		case <-seen:
		case <-time.After(30 * time.Second):
			t.Fatalf("request retention run %d did not come a minute after a run that stopped at its limit", run)
		}
		lb.clk.Advance(time.Minute)
	}
	for _, id := range ids {
		if _, err := lb.srv.Requests.Get(ctx, manager, id); !errors.Is(err, grants.ErrNotFound) {
			t.Errorf("Get of request %s past retention after %d runs: %v, want not found", id, len(ids), err)
		}
	}
}

// signalsHandler sends on signals[msg] each time a record with message msg
// is logged.
type signalsHandler map[string]chan struct{}

func (h signalsHandler) Enabled(context.Context, slog.Level) bool { return true }
func (h signalsHandler) Handle(_ context.Context, r slog.Record) error {
	if seen, ok := h[r.Message]; ok {
		select {
		case seen <- struct{}{}:
		default:
		}
	}
	return nil
}
func (h signalsHandler) WithAttrs([]slog.Attr) slog.Handler { return h }
func (h signalsHandler) WithGroup(string) slog.Handler      { return h }

// TestSweepDeletesDeadLettersWithTheirRequest: the jobs' request
// retention also deletes the dead letters of the request it deletes (a
// webhook receiver that answered 410 Gone dead-lettered them), which
// carry a copy of it.
func TestSweepDeletesDeadLettersWithTheirRequest(t *testing.T) {
	gone := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusGone) }))
	t.Cleanup(gone.Close)
	secret := filepath.Join(t.TempDir(), "webhook-secret")
	if err := os.WriteFile(secret, []byte("s3cret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	dead, deleted := make(chan struct{}, 1), make(chan struct{}, 1)
	lb := start(t, map[string]string{"LOCKBOX_REQUEST_RETENTION": "28h", "LOCKBOX_AUDIT_RETENTION": "28h",
		"LOCKBOX_UPSTREAMS":    "exchange=http://127.0.0.1:1",
		"LOCKBOX_WEBHOOK_URLS": gone.URL, "LOCKBOX_WEBHOOK_SECRET_FILE": secret},
		func(o *server.Options) {
			o.SweepInterval = 10 * time.Millisecond
			o.Logger = slog.New(signalsHandler{"notification dead-lettered": dead, "request retention deleted requests": deleted})
		})
	ctx := context.Background()
	op := grants.Actor{Principal: identity.Principal{Subject: alice.Subject, Roles: alice.Roles}, ClientIP: "198.51.100.1"}
	r, err := lb.srv.Requests.Create(ctx, op, grants.CreateInput{Tenant: "contoso", Service: "exchange",
		ServiceRequest: "SR-1", Reason: "mailbox will not open", Duration: grants.Duration(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lb.srv.Requests.Act(ctx, r.ID, grants.ActionCancel, op, ""); err != nil {
		t.Fatal(err)
	}
	// The deadlines only bound a failure.
	select {
	case <-dead:
	case <-time.After(30 * time.Second):
		t.Fatal("no notification dead-lettered 30s after the webhook receiver answered 410")
	}
	letters := notify.NewDeadLetters(lb.srv.Redis, nil, nil, nil)
	// Both the filing's and the cancellation's letters, before retention.
	for {
		ls, err := letters.List(ctx, "contoso")
		if err != nil {
			t.Fatal(err)
		}
		if len(ls) >= 2 {
			break
		}
		select {
		case <-dead:
		case <-time.After(30 * time.Second):
			t.Fatalf("%d dead letters 30s on, want the filing's and the cancellation's", len(ls))
		}
	}
	lb.clk.Advance(29 * time.Hour)
	select {
	case <-deleted:
	case <-time.After(30 * time.Second):
		t.Fatal("no sweep applied request retention 30s after the request was an hour past the retention")
	}
	ls, err := letters.List(ctx, "contoso")
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range ls {
		if l.RequestID == r.ID {
			t.Errorf("dead letter %s (%s) of the deleted request left", l.ID, l.Kind)
		}
	}
}
