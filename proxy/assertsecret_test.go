package proxy

import (
	"crypto/rand"
	"encoding/base64"
	"errors"
	"net/http"
	"slices"
	"testing"
	"time"

	"github.com/lockbox-oss/lockbox/grantsig"
)

func assertionSecret(t *testing.T) []byte {
	t.Helper()
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return []byte(base64.StdEncoding.EncodeToString(b))
}

const sites = "/sharepoint/tenants/contoso/sites"

// lastAssertion makes one call to target and returns the assertion its
// upstream received.
func (e *testEnv) lastAssertion(service, target string) string {
	e.t.Helper()
	if res := e.send(as(alice, "GET", target)(e)); res.status != http.StatusOK {
		e.t.Fatalf("GET %s: %d %s", target, res.status, res.body)
	}
	seen := e.up[service].requests()
	return seen[len(seen)-1].Header.Get(grantsig.Header)
}

// TestAssertionSecretPerService: a service with a secret gets HS256
// assertions its upstream checks with that secret, and no other key; the
// other services keep the signing key's; a new secret (or none) takes over
// from the next call, and a set of secrets that can't be used leaves the
// ones in use.
func TestAssertionSecretPerService(t *testing.T) {
	exSecret := assertionSecret(t)
	e := newTestEnv(t, func(_ *testEnv, c *Config) {
		c.AssertionSecrets = map[string][]byte{"exchange": exSecret}
	})
	e.grantFor(alice, "contoso", "exchange", time.Hour)
	e.grantFor(alice, "contoso", "sharepoint", time.Hour)
	exchange := grantsig.Expect{Issuer: "lockbox", Audience: "exchange", Method: "GET", Path: "/api" + mailboxes}
	sharepoint := grantsig.Expect{Issuer: "lockbox", Audience: "sharepoint", Method: "GET", Path: "/api" + sites}
	secretKeys := func(s []byte) *grantsig.KeySet {
		ks, err := grantsig.NewSecretKeySet(s)
		if err != nil {
			t.Fatal(err)
		}
		return ks
	}
	// checks says which key set takes the call's assertion: exactly one.
	checks := func(name string, a string, want grantsig.Expect, good *grantsig.KeySet, bad ...*grantsig.KeySet) {
		t.Helper()
		if _, err := grantsig.Verify(good, a, want, e.clk.Now()); err != nil {
			t.Errorf("%s: %v", name, err)
		}
		for _, ks := range bad {
			if _, err := grantsig.Verify(ks, a, want, e.clk.Now()); !errors.Is(err, grantsig.ErrInvalid) {
				t.Errorf("%s: verified by the wrong keys (%v)", name, err)
			}
		}
	}

	checks("exchange, with its secret", e.lastAssertion("exchange", mailboxes), exchange, secretKeys(exSecret), e.grantKeys)
	checks("sharepoint, with no secret", e.lastAssertion("sharepoint", sites), sharepoint, e.grantKeys, secretKeys(exSecret))
	kids := e.h.AssertionKeyIDs()
	if kids["exchange"] != grantsig.SecretKeyID(exSecret) || kids["sharepoint"] != e.h.SigningKeyID() {
		t.Errorf("key ids %v", kids)
	}

	// A new secret, from the next call on, under the same grant.
	next := assertionSecret(t)
	if err := e.h.SetAssertionSecrets(map[string][]byte{"exchange": next}); err != nil {
		t.Fatal(err)
	}
	checks("exchange, after its secret changed", e.lastAssertion("exchange", mailboxes), exchange, secretKeys(next), secretKeys(exSecret), e.grantKeys)

	// Secrets that can't be used are refused whole; the ones in use stay.
	spSecret := assertionSecret(t)
	for name, tc := range map[string]struct {
		secrets map[string][]byte
		want    error
	}{
		"a service not configured": {map[string][]byte{"exchange": next, "teams": spSecret}, nil},
		"a short secret":           {map[string][]byte{"exchange": next, "sharepoint": []byte("short")}, grantsig.ErrWeakSecret},
		"one secret for two":       {map[string][]byte{"exchange": spSecret, "sharepoint": spSecret}, ErrSharedSecret},
		"one but for white space":  {map[string][]byte{"exchange": spSecret, "sharepoint": append(slices.Clone(spSecret), ' ')}, ErrSharedSecret},
	} {
		err := e.h.SetAssertionSecrets(tc.secrets)
		if err == nil || tc.want != nil && !errors.Is(err, tc.want) {
			t.Errorf("%s: err = %v, want %v", name, err, tc.want)
		}
	}
	// The secret in use is known as exchange's, white space or not; the
	// server refuses it as a token secret.
	if svc, ok := e.h.AssertionSecretOf(append([]byte(" "), next...)); !ok || svc != "exchange" {
		t.Errorf("AssertionSecretOf(exchange's secret) = %q, %t", svc, ok)
	}
	if svc, ok := e.h.AssertionSecretOf(spSecret); ok {
		t.Errorf("AssertionSecretOf(a refused secret) = %q", svc)
	}
	checks("exchange, after refused secrets", e.lastAssertion("exchange", mailboxes), exchange, secretKeys(next))
	checks("sharepoint, after refused secrets", e.lastAssertion("sharepoint", sites), sharepoint, e.grantKeys, secretKeys(spSecret))

	// No secret: back to the signing key.
	if err := e.h.SetAssertionSecrets(nil); err != nil {
		t.Fatal(err)
	}
	checks("exchange, its secret taken away", e.lastAssertion("exchange", mailboxes), exchange, e.grantKeys, secretKeys(next))
}
