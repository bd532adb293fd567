package notify_test

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lockbox-oss/lockbox/notify"
)

// hookDelivery is one POST a receiver got.
type hookDelivery struct {
	body []byte
	hdr  http.Header
}

func (d hookDelivery) id() string  { return d.hdr.Get(notify.DeliveryHeader) }
func (d hookDelivery) ts() string  { return d.hdr.Get(notify.TimestampHeader) }
func (d hookDelivery) sig() string { return d.hdr.Get(notify.SignatureHeader) }

// signed is the text both schemes sign: "<timestamp>.<delivery>.<body>".
func (d hookDelivery) signed() string { return d.ts() + "." + d.id() + "." + string(d.body) }

// deliverTo files a request and has a worker deliver its creation to a
// real HTTP receiver under each of paths, signed with schemes and secret.
// It returns each path's delivery, by the receiver's URL as configured,
// and the worker's clock when it sent them.
func deliverTo(t *testing.T, secret []byte, schemes []string, paths ...string) (map[string]hookDelivery, time.Time) {
	t.Helper()
	e := newEnv(t)
	e.create(t, operator(0))
	var mu sync.Mutex
	byPath := map[string][]hookDelivery{}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		mu.Lock()
		defer mu.Unlock()
		byPath[r.URL.Path] = append(byPath[r.URL.Path], hookDelivery{b, r.Header.Clone()})
	}))
	t.Cleanup(srv.Close)
	var hooks []notify.WebhookConfig
	for _, p := range paths {
		hooks = append(hooks, notify.WebhookConfig{URL: srv.URL + p, Secret: secret, Signatures: schemes})
	}
	sentAt := e.clock.Now()
	drain(t, newWorker(t, notify.Config{Redis: e.rdb, Now: e.clock.Now, Consumer: "a", Webhooks: hooks}))
	mu.Lock()
	defer mu.Unlock()
	out := map[string]hookDelivery{}
	for _, p := range paths {
		if len(byPath[p]) != 1 {
			t.Fatalf("%s got %d deliveries, want 1", p, len(byPath[p]))
		}
		out[srv.URL+p] = byPath[p][0]
	}
	return out, sentAt
}

// hmacHex is the documented computation, written out apart from the
// package's: hex HMAC-SHA256 of msg keyed with key.
func hmacHex(key []byte, msg string) string {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(msg))
	return hex.EncodeToString(h.Sum(nil))
}

// The derivation README gives a receiver's operator: key(url) =
// HMAC-SHA256(secret, "lockbox webhook key v2\n" + url), 32 bytes, of the
// URL exactly as configured.
func TestWebhookKeyDerivation(t *testing.T) {
	secret := []byte("shared")
	const u = "https://hooks.example.com/services/T0KEN?x=1"
	want, _ := hex.DecodeString(hmacHex(secret, "lockbox webhook key v2\n"+u))
	if got := notify.WebhookKey(secret, u); !hmac.Equal(got, want) || len(got) != 32 {
		t.Errorf("WebhookKey = %x, want %x", got, want)
	}
	if hmac.Equal(notify.WebhookKey(secret, u), notify.WebhookKey(secret, u+"/")) {
		t.Error("two URLs have one key")
	}
	if hmac.Equal(notify.WebhookKey(secret, u), notify.WebhookKey([]byte("other"), u)) {
		t.Error("two secrets give a URL one key")
	}
}

// Each receiver's v2 verifies with its own key and not with another's: a
// receiver, which knows its key to check its deliveries, can neither pass
// its delivery off to another receiver nor sign one that another receiver
// takes, once that receiver checks v2 alone. While both are sent, a
// verifier of v1 alone still takes the header.
func TestWebhookReceiverKeysStopForgeryBetweenReceivers(t *testing.T) {
	secret := []byte("shared")
	got, sentAt := deliverTo(t, secret, []string{"v1", "v2"}, "/a", "/b")
	var urlA, urlB string
	for u := range got {
		if strings.HasSuffix(u, "/a") {
			urlA = u
		} else {
			urlB = u
		}
	}
	a, b := got[urlA], got[urlB]
	keyA, keyB := notify.WebhookKey(secret, urlA), notify.WebhookKey(secret, urlB)
	for u, d := range got {
		parts := strings.Split(d.sig(), ",")
		if len(parts) != 2 {
			t.Fatalf("%s: %s = %q, want v1=<hex>,v2=<hex>", u, notify.SignatureHeader, d.sig())
		}
		if want := "v1=" + hmacHex(secret, d.signed()); parts[0] != want {
			t.Errorf("%s: first signature %q, want v1 keyed with the shared secret %q", u, parts[0], want)
		}
		if want := "v2=" + hmacHex(notify.WebhookKey(secret, u), d.signed()); parts[1] != want {
			t.Errorf("%s: second signature %q, want v2 keyed with the receiver's key %q", u, parts[1], want)
		}
		// Every receiver so far checks v1 alone.
		if err := notify.Verify(secret, d.body, d.id(), d.ts(), d.sig(), sentAt, 0); err != nil {
			t.Errorf("%s: a v1 verifier refuses the header of both schemes: %v", u, err)
		}
	}
	verify := func(key []byte, body []byte, id, ts, sig string) error {
		return notify.VerifyKeys(notify.Keys{V2: key}, body, id, ts, sig, sentAt, 0)
	}
	if err := verify(keyA, a.body, a.id(), a.ts(), a.sig()); err != nil {
		t.Errorf("a's delivery, a's key: %v", err)
	}
	if err := verify(keyB, b.body, b.id(), b.ts(), b.sig()); err != nil {
		t.Errorf("b's delivery, b's key: %v", err)
	}
	if err := verify(keyB, a.body, a.id(), a.ts(), a.sig()); !errors.Is(err, notify.ErrBadSignature) {
		t.Errorf("a's delivery replayed to b: %v, want %v", err, notify.ErrBadSignature)
	}
	// a signs a body of its choosing for b with the one key it has.
	forged := []byte(`{"event":"request.approved","tenant":"contoso"}`)
	sig := "v2=" + hmacHex(keyA, a.ts()+"."+b.id()+"."+string(forged))
	if err := verify(keyA, forged, b.id(), a.ts(), sig); err != nil {
		t.Fatalf("the forgery is not well made (a itself refuses it): %v", err)
	}
	if err := verify(keyB, forged, b.id(), a.ts(), sig); !errors.Is(err, notify.ErrBadSignature) {
		t.Errorf("a's forgery to b: %v, want %v", err, notify.ErrBadSignature)
	}
}

// With v2 alone nothing a receiver can check is keyed with the shared
// secret: no v1 is sent, and a v1 verifier refuses. With v1 alone the
// header is what it always was. Either order of the two sends both, v1
// first.
func TestWebhookSignatureSchemes(t *testing.T) {
	secret := []byte("shared")
	for _, tc := range []struct {
		schemes  []string
		want     []string // the header's schemes, in order
		v1, v2OK bool
	}{
		// None named: v1 alone, the header of earlier versions.
		{nil, []string{"v1"}, true, false},
		{[]string{"v2"}, []string{"v2"}, false, true},
		{[]string{"v1"}, []string{"v1"}, true, false},
		{[]string{"v2", "v1"}, []string{"v1", "v2"}, true, true},
		{[]string{"v1", "v2"}, []string{"v1", "v2"}, true, true},
	} {
		t.Run(strings.Join(tc.schemes, ","), func(t *testing.T) {
			got, sentAt := deliverTo(t, secret, tc.schemes, "/hook")
			for u, d := range got {
				var schemes []string
				for p := range strings.SplitSeq(d.sig(), ",") {
					name, _, _ := strings.Cut(p, "=")
					schemes = append(schemes, name)
				}
				if strings.Join(schemes, ",") != strings.Join(tc.want, ",") {
					t.Errorf("%s = %q, want the schemes %v", notify.SignatureHeader, d.sig(), tc.want)
				}
				err := notify.Verify(secret, d.body, d.id(), d.ts(), d.sig(), sentAt, 0)
				if (err == nil) != tc.v1 {
					t.Errorf("v1 verifier with the shared secret: %v, want success %v", err, tc.v1)
				}
				err = notify.VerifyKeys(notify.Keys{V2: notify.WebhookKey(secret, u)}, d.body, d.id(), d.ts(), d.sig(), sentAt, 0)
				if (err == nil) != tc.v2OK {
					t.Errorf("v2 verifier with the receiver's key: %v, want success %v", err, tc.v2OK)
				}
			}
		})
	}
}

// A worker refuses a webhook signed with no scheme it knows, or with one
// twice, rather than send deliveries no receiver can check.
func TestWebhookSignaturesChecked(t *testing.T) {
	e := newEnv(t)
	for _, schemes := range [][]string{{"v3"}, {"v1", "v1"}, {"V2"}, {""}} {
		_, err := notify.NewWorker(notify.Config{Redis: e.rdb, Consumer: "a",
			Webhooks: []notify.WebhookConfig{{URL: "https://hooks.example.com/x", Secret: []byte("k"), Signatures: schemes}}})
		if err == nil {
			t.Errorf("signatures %q: accepted", schemes)
		}
	}
}

// VerifyKeys takes a header of several comma-separated schemes and
// succeeds when any scheme it has a key for verifies; schemes it doesn't
// know are ignored; a tampered signature, one under another scheme's name,
// or a header with nothing it can check is refused.
func TestVerifyKeysSchemes(t *testing.T) {
	secret := []byte("shared")
	const u = "https://hooks.example.com/a"
	key := notify.WebhookKey(secret, u)
	body := []byte(`{"event":"request.created"}`)
	const id = "1700000000000-0.0123456789abcdef"
	now := time.Unix(1_800_000_000, 0)
	ts := "1800000000"
	text := ts + "." + id + "." + string(body)
	v1 := "v1=" + hmacHex(secret, text)
	v2 := "v2=" + hmacHex(key, text)
	other := "v2=" + hmacHex(notify.WebhookKey(secret, u+"b"), text)
	flip := func(s string) string {
		last := s[len(s)-1]
		if last == '0' {
			return s[:len(s)-1] + "1"
		}
		return s[:len(s)-1] + "0"
	}
	both := notify.Keys{V1: secret, V2: key}
	for _, tc := range []struct {
		name string
		keys notify.Keys
		sig  string
		ok   bool
	}{
		{"v2 alone", notify.Keys{V2: key}, v2, true},
		{"v1 then v2", notify.Keys{V2: key}, v1 + "," + v2, true},
		{"v2 then v1, spaces", notify.Keys{V2: key}, v2 + " , " + v1, true},
		{"unknown schemes around v2", notify.Keys{V2: key}, "v3=abc," + v2 + ",sha256=" + hmacHex(key, string(body)), true},
		{"v1 key, both schemes", notify.Keys{V1: secret}, v1 + "," + v2, true},
		{"both keys, v1 tampered", both, flip(v1) + "," + v2, true},
		{"both keys, v2 tampered", both, v1 + "," + flip(v2), true},
		{"both keys, both tampered", both, flip(v1) + "," + flip(v2), false},
		{"tampered v2", notify.Keys{V2: key}, v1 + "," + flip(v2), false},
		{"another receiver's v2", notify.Keys{V2: key}, v1 + "," + other, false},
		{"v2 under v1's name", notify.Keys{V2: key}, "v1=" + strings.TrimPrefix(v2, "v2="), false},
		{"v1 under v2's name", notify.Keys{V2: key, V1: secret}, "v2=" + strings.TrimPrefix(v1, "v1="), false},
		{"v1 only, v2 key only", notify.Keys{V2: key}, v1, false},
		{"v2 only, v1 key only", notify.Keys{V1: secret}, v2, false},
		{"unknown schemes only", notify.Keys{V2: key}, "v3=" + strings.TrimPrefix(v2, "v2="), false},
		{"unversioned", notify.Keys{V2: key}, strings.TrimPrefix(v2, "v2="), false},
		{"empty header", notify.Keys{V2: key}, "", false},
		{"no key", notify.Keys{}, v1 + "," + v2, false},
		{"upper-case scheme", notify.Keys{V2: key}, "V2=" + strings.TrimPrefix(v2, "v2="), false},
	} {
		err := notify.VerifyKeys(tc.keys, body, id, ts, tc.sig, now, 0)
		if tc.ok && err != nil {
			t.Errorf("%s: %v", tc.name, err)
		}
		if !tc.ok && !errors.Is(err, notify.ErrBadSignature) {
			t.Errorf("%s: %v, want %v", tc.name, err, notify.ErrBadSignature)
		}
	}
	// The timestamp and the id's shape are checked whichever scheme.
	if err := notify.VerifyKeys(notify.Keys{V2: key}, body, id, ts, v2, now.Add(6*time.Minute), 0); !errors.Is(err, notify.ErrStaleDelivery) {
		t.Errorf("v2 after the tolerance: %v, want %v", err, notify.ErrStaleDelivery)
	}
	if err := notify.VerifyKeys(notify.Keys{V2: key}, body, id+".x", ts, v2, now, 0); !errors.Is(err, notify.ErrBadSignature) {
		t.Errorf("v2 with a malformed id: %v, want %v", err, notify.ErrBadSignature)
	}
	// Verify is VerifyKeys with the shared secret for v1.
	if err := notify.Verify(secret, body, id, ts, v2+","+v1, now, 0); err != nil {
		t.Errorf("Verify, v1 among v2: %v", err)
	}
	if err := notify.Verify(secret, body, id, ts, v2, now, 0); !errors.Is(err, notify.ErrBadSignature) {
		t.Errorf("Verify, v2 alone: %v, want %v", err, notify.ErrBadSignature)
	}
}
