package notify_test

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lockbox-oss/lockbox/grants"
	"github.com/lockbox-oss/lockbox/notify"
)

// A delivery's signature covers its timestamp and delivery id: a captured
// delivery replayed under a fresh id, with another timestamp, or after the
// tolerance, fails Verify; the delivery as sent passes.
func TestWebhookSignatureCoversDeliveryAndTimestamp(t *testing.T) {
	secret := []byte("k")
	e := newEnv(t)
	r := e.create(t, operator(0))
	e.act(t, r.ID, grants.ActionApprove, manager)
	type delivery struct {
		body []byte
		hdr  http.Header
	}
	var mu sync.Mutex
	var got []delivery
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		got = append(got, delivery{b, r.Header.Clone()})
	}))
	t.Cleanup(srv.Close)
	e.clock.Advance(90 * time.Second)
	sentAt := e.clock.Now()
	w := newWorker(t, notify.Config{Redis: e.rdb, Now: e.clock.Now, Consumer: "a",
		Webhooks: []notify.WebhookConfig{{URL: srv.URL, Secret: secret}}})
	drain(t, w)
	mu.Lock()
	defer mu.Unlock()
	if len(got) == 0 {
		t.Fatal("no webhook delivery")
	}
	d := got[0]
	id, ts, sig := d.hdr.Get(notify.DeliveryHeader), d.hdr.Get(notify.TimestampHeader), d.hdr.Get(notify.SignatureHeader)
	if ts != strconv.FormatInt(sentAt.Unix(), 10) {
		t.Errorf("%s = %q, want the worker's clock %d", notify.TimestampHeader, ts, sentAt.Unix())
	}
	if !strings.HasPrefix(sig, "v1=") {
		t.Errorf("%s = %q, want a versioned v1=<hex>", notify.SignatureHeader, sig)
	}
	if err := notify.Verify(secret, d.body, id, ts, sig, sentAt, 0); err != nil {
		t.Fatalf("the delivery as sent fails: %v", err)
	}
	idEntry, idHash, ok := strings.Cut(id, ".")
	dot := bytes.IndexByte(d.body, '.')
	if !ok || strings.Contains(idHash, ".") || dot < 0 {
		t.Fatalf("delivery id %q, body %q: want <entry>.<hash> and a dot in the body", id, d.body)
	}
	if err := notify.Verify(secret, d.body, id, ts, sig, sentAt.Add(4*time.Minute), 0); err != nil {
		t.Errorf("4 minutes later, within the default tolerance: %v", err)
	}
	for _, tc := range []struct {
		name           string
		body           []byte
		id, ts, sig    string
		at             time.Time
		tolerance      time.Duration
		want           error
		secretOverride []byte
	}{
		{name: "fresh delivery id", body: d.body, id: id + "x", ts: ts, sig: sig, at: sentAt, want: notify.ErrBadSignature},
		{name: "no delivery id", body: d.body, id: "", ts: ts, sig: sig, at: sentAt, want: notify.ErrBadSignature},
		{name: "other timestamp", body: d.body, id: id, ts: strconv.FormatInt(sentAt.Unix()+1, 10), sig: sig, at: sentAt, want: notify.ErrBadSignature},
		{name: "after the default tolerance", body: d.body, id: id, ts: ts, sig: sig, at: sentAt.Add(5*time.Minute + time.Second), want: notify.ErrStaleDelivery},
		{name: "before the timestamp by more than the tolerance", body: d.body, id: id, ts: ts, sig: sig, at: sentAt.Add(-6 * time.Minute), want: notify.ErrStaleDelivery},
		{name: "after a shorter tolerance", body: d.body, id: id, ts: ts, sig: sig, at: sentAt.Add(time.Minute + time.Second), tolerance: time.Minute, want: notify.ErrStaleDelivery},
		{name: "no timestamp", body: d.body, id: id, ts: "", sig: sig, at: sentAt, want: notify.ErrStaleDelivery},
		{name: "absurd timestamp", body: d.body, id: id, ts: "-9223372036854775808", sig: sig, at: sentAt, want: notify.ErrStaleDelivery},
		{name: "other body", body: append([]byte(" "), d.body...), id: id, ts: ts, sig: sig, at: sentAt, want: notify.ErrBadSignature},
		{name: "unversioned signature", body: d.body, id: id, ts: ts, sig: strings.TrimPrefix(sig, "v1="), at: sentAt, want: notify.ErrBadSignature},
		{name: "other secret", body: d.body, id: id, ts: ts, sig: sig, at: sentAt, secretOverride: []byte("j"), want: notify.ErrBadSignature},
		{name: "one of several signatures", body: d.body, id: id, ts: ts, sig: "v1=00, " + sig, at: sentAt},
		// The signed text is "timestamp.id.body": the same bytes would
		// sign an id cut short with the rest moved into the body, or an
		// id that took in the body's start.
		{name: "boundary moved into the body", body: []byte(idHash + "." + string(d.body)), id: idEntry, ts: ts, sig: sig, at: sentAt, want: notify.ErrBadSignature},
		{name: "boundary moved into the id", body: d.body[dot+1:], id: id + "." + string(d.body[:dot]), ts: ts, sig: sig, at: sentAt, want: notify.ErrBadSignature},
	} {
		key := secret
		if tc.secretOverride != nil {
			key = tc.secretOverride
		}
		if err := notify.Verify(key, tc.body, tc.id, tc.ts, tc.sig, tc.at, tc.tolerance); !errors.Is(err, tc.want) {
			t.Errorf("%s: Verify = %v, want %v", tc.name, err, tc.want)
		}
	}
}
