package client

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"
)

// TestVerifyAuditOutlastsTheCallTimeout: the server verifies a tenant's
// whole log before it answers, which for millions of records takes longer
// than the client's per-call timeout (DefaultTimeout, 30 s). That timeout
// cut the call, so lockboxctl audit verify of a large log always failed;
// like an export, a verification is bounded by the caller's context only.
func TestVerifyAuditOutlastsTheCallTimeout(t *testing.T) {
	const timeout = 200 * time.Millisecond
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		// A verification that takes longer than the client's timeout.
		select {
		case <-time.After(3 * timeout):
		case <-r.Context().Done():
			return
		}
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write([]byte(`{"tenant":"contoso","records":3,"ok":true}`))
	}))
	t.Cleanup(srv.Close)
	hc := &http.Client{Timeout: timeout}
	c, err := New(srv.URL, token, WithHTTPClient(hc))
	if err != nil {
		t.Fatal(err)
	}
	v, err := c.VerifyAudit(context.Background(), "contoso")
	if err != nil || !v.OK || v.Records != 3 || v.Tenant != "contoso" {
		t.Fatalf("verification = %+v, %v", v, err)
	}
	if hc.Timeout != timeout {
		t.Errorf("the caller's HTTP client was changed: timeout %s", hc.Timeout)
	}
}

// TestVerifyAuditEndsWithItsContext: without the per-call timeout, the
// caller's context still ends a verification, and the server sees its
// client go away (which ends the verification there).
func TestVerifyAuditEndsWithItsContext(t *testing.T) {
	started, left := make(chan struct{}), make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		close(started)
		select {
		case <-r.Context().Done():
			close(left)
		case <-time.After(10 * time.Second):
		}
	}))
	t.Cleanup(srv.Close)
	c, err := New(srv.URL, token, WithHTTPClient(&http.Client{Timeout: time.Hour}))
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	done := make(chan error, 1)
	go func() {
		_, err := c.VerifyAudit(ctx, "contoso")
		done <- err
	}()
	select {
	case <-started:
	case <-time.After(10 * time.Second):
		t.Fatal("the verification was not asked for")
	}
	cancel()
	select {
	case err := <-done:
		if !errors.Is(err, context.Canceled) {
			t.Errorf("err = %v, want context.Canceled", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("VerifyAudit went on after its context ended")
	}
	select {
	case <-left:
	case <-time.After(10 * time.Second):
		t.Fatal("the server did not see its client go away")
	}
}
