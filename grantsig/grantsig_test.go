package grantsig_test

import (
	"bytes"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	mathrand "math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lockbox-oss/lockbox/grantsig"
)

var now = time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)

// callClaims are the claims of one call, as the proxy makes them.
func callClaims() grantsig.Claims {
	return grantsig.Claims{
		Issuer: "lockbox", Subject: "Microsoft Operator", Audience: "exchange",
		Tenant: "contoso", Service: "exchange", RequestID: "0195a000-0000-7000-8000-000000000001",
		AuditID: "0195a000-0000-7000-8000-0000000000a1", Activity: "Get-Mailbox",
		Method: "GET", Path: "/tenants/contoso/mailboxes",
		IssuedAt: now.Unix(), ExpiresAt: now.Add(30 * time.Second).Unix(),
	}
}

func expect() grantsig.Expect {
	return grantsig.Expect{Issuer: "lockbox", Audience: "exchange", Method: "GET", Path: "/tenants/contoso/mailboxes"}
}

// keys returns a fresh key of each kind the proxy can sign with.
func keys(t testing.TB) map[string]crypto.Signer {
	t.Helper()
	_, ed, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return map[string]crypto.Signer{grantsig.AlgEdDSA: ed, grantsig.AlgES256: ec}
}

func newSigner(t testing.TB, k crypto.Signer) *grantsig.Signer {
	t.Helper()
	s, err := grantsig.NewSigner(k)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func keySet(t testing.TB, pubs ...crypto.PublicKey) *grantsig.KeySet {
	t.Helper()
	ks, err := grantsig.NewKeySet(pubs...)
	if err != nil {
		t.Fatal(err)
	}
	return ks
}

// forge signs any header and claims with key (a private key, or bytes to
// MAC with HMAC-SHA256), the way a broken or hostile issuer could, or a
// client that knows or guesses a key: Verify must not take its word for
// anything.
func forge(t *testing.T, key any, header, claims any) string {
	t.Helper()
	enc := func(v any) string {
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatal(err)
		}
		return base64.RawURLEncoding.EncodeToString(b)
	}
	input := enc(header) + "." + enc(claims)
	var sig []byte
	switch k := key.(type) {
	case ed25519.PrivateKey:
		sig = ed25519.Sign(k, []byte(input))
	case *ecdsa.PrivateKey:
		d := sha256.Sum256([]byte(input))
		r, s, err := ecdsa.Sign(rand.Reader, k, d[:])
		if err != nil {
			t.Fatal(err)
		}
		sig = append(r.FillBytes(make([]byte, 32)), s.FillBytes(make([]byte, 32))...)
	case []byte:
		m := hmac.New(sha256.New, k)
		m.Write([]byte(input))
		sig = m.Sum(nil)
	default:
		t.Fatalf("forge: a %T is no key", key)
	}
	return input + "." + base64.RawURLEncoding.EncodeToString(sig)
}

func TestSignVerify(t *testing.T) {
	for alg, key := range keys(t) {
		t.Run(alg, func(t *testing.T) {
			s := newSigner(t, key)
			if s.Algorithm() != alg {
				t.Fatalf("algorithm %s, want %s", s.Algorithm(), alg)
			}
			ks := keySet(t, key.Public())
			tok, err := s.Sign(callClaims())
			if err != nil {
				t.Fatal(err)
			}
			got, err := grantsig.Verify(ks, tok, expect(), now)
			if err != nil {
				t.Fatal(err)
			}
			if got != callClaims() {
				t.Fatalf("claims\n got %+v\nwant %+v", got, callClaims())
			}
			// The header: alg, kid, typ, nothing else.
			var h map[string]string
			seg, _, _ := strings.Cut(tok, ".")
			b, _ := base64.RawURLEncoding.DecodeString(seg)
			if err := json.Unmarshal(b, &h); err != nil || len(h) != 3 || h["alg"] != alg || h["kid"] != s.KeyID() || h["typ"] != grantsig.Type {
				t.Fatalf("header %s: %v", b, err)
			}
		})
	}
}

// TestVerifyRefuses: every way an assertion can be wrong for the call, or
// not ours at all, is refused.
func TestVerifyRefuses(t *testing.T) {
	ks := keys(t)
	ed, ec := ks[grantsig.AlgEdDSA], ks[grantsig.AlgES256]
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	_, ed2, _ := ed25519.GenerateKey(rand.Reader)
	s := newSigner(t, ed)
	set := keySet(t, ed.Public(), ec.Public(), ed2.Public())
	good, err := s.Sign(callClaims())
	if err != nil {
		t.Fatal(err)
	}
	if _, err := grantsig.Verify(set, good, expect(), now); err != nil {
		t.Fatalf("the good assertion: %v", err)
	}
	h64, rest, _ := strings.Cut(good, ".")
	c64, sig64, _ := strings.Cut(rest, ".")
	edKid, ecKid, ed2Kid := s.KeyID(), newSigner(t, ec).KeyID(), newSigner(t, ed2).KeyID()
	header := func(alg, kid, typ string) map[string]string {
		return map[string]string{"alg": alg, "kid": kid, "typ": typ}
	}
	with := func(f func(*grantsig.Claims)) grantsig.Claims { c := callClaims(); f(&c); return c }
	want := func(f func(*grantsig.Expect)) grantsig.Expect { e := expect(); f(&e); return e }

	tests := []struct {
		name  string
		token string
		want  grantsig.Expect
		now   time.Time
	}{
		{"another path", good, want(func(e *grantsig.Expect) { e.Path = "/tenants/contoso/mailboxes/alice" }), now},
		{"another method", good, want(func(e *grantsig.Expect) { e.Method = "DELETE" }), now},
		{"another audience", good, want(func(e *grantsig.Expect) { e.Audience = "sharepoint" }), now},
		{"another issuer", good, want(func(e *grantsig.Expect) { e.Issuer = "other-lockbox" }), now},
		{"expired", good, expect(), now.Add(30*time.Second + grantsig.DefaultLeeway)},
		{"issued in the future", good, expect(), now.Add(-grantsig.DefaultLeeway - time.Second)},
		{"unknown key", forge(t, other, header(grantsig.AlgES256, edKid, grantsig.Type), callClaims()), expect(), now},
		{"kid of another key", forge(t, ed, header(grantsig.AlgEdDSA, ed2Kid, grantsig.Type), callClaims()), expect(), now},
		{"algorithm not the key's", forge(t, ec, header(grantsig.AlgES256, edKid, grantsig.Type), callClaims()), expect(), now},
		{"alg none", h64none(t, edKid) + "." + c64 + ".", expect(), now},
		{"HS256 with the public key as secret", forge(t, ed, header("HS256", edKid, grantsig.Type), callClaims()), expect(), now},
		{"another type", forge(t, ed, header(grantsig.AlgEdDSA, edKid, "JWT"), callClaims()), expect(), now},
		{"embedded key", forge(t, ed, map[string]any{"alg": grantsig.AlgEdDSA, "kid": edKid, "typ": grantsig.Type, "jwk": map[string]string{"kty": "OKP"}}, callClaims()), expect(), now},
		{"lifetime over MaxTTL", forge(t, ed, header(grantsig.AlgEdDSA, edKid, grantsig.Type), with(func(c *grantsig.Claims) { c.ExpiresAt = c.IssuedAt + 61 })), expect(), now},
		{"no lifetime", forge(t, ed, header(grantsig.AlgEdDSA, edKid, grantsig.Type), with(func(c *grantsig.Claims) { c.ExpiresAt = c.IssuedAt })), expect(), now},
		{"no audit id", forge(t, ed, header(grantsig.AlgEdDSA, edKid, grantsig.Type), with(func(c *grantsig.Claims) { c.AuditID = "" })), expect(), now},
		{"no tenant", forge(t, ed, header(grantsig.AlgEdDSA, edKid, grantsig.Type), with(func(c *grantsig.Claims) { c.Tenant = "" })), expect(), now},
		{"claims swapped", h64 + "." + base64.RawURLEncoding.EncodeToString(mustJSON(t, with(func(c *grantsig.Claims) { c.Path = "/tenants/contoso/mailboxes/alice" }))) + "." + sig64,
			want(func(e *grantsig.Expect) { e.Path = "/tenants/contoso/mailboxes/alice" }), now},
		{"signature of another key", h64 + "." + c64 + "." + sigOf(t, forge(t, other, header(grantsig.AlgEdDSA, edKid, grantsig.Type), callClaims())), expect(), now},
		{"ES256 signature in ASN.1", esASN1(t, ec.(*ecdsa.PrivateKey), ecKid), expect(), now},
		{"no signature", h64 + "." + c64, expect(), now},
		{"empty signature", h64 + "." + c64 + ".", expect(), now},
		{"padded signature", good + "=", expect(), now},
		{"four segments", good + ".x", expect(), now},
		{"garbage", "x.y.z", expect(), now},
		{"empty", "", expect(), now},
		{"too long", strings.Repeat("a", 9000) + ".b.c", expect(), now},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := grantsig.Verify(set, tc.token, tc.want, tc.now); !errors.Is(err, grantsig.ErrInvalid) {
				t.Fatalf("err = %v, want ErrInvalid", err)
			}
		})
	}
	t.Run("incomplete expectation", func(t *testing.T) {
		if _, err := grantsig.Verify(set, good, grantsig.Expect{Issuer: "lockbox", Audience: "exchange"}, now); err == nil {
			t.Fatal("an expectation without method and path verified")
		}
	})
	t.Run("leeway", func(t *testing.T) {
		// Within the leeway either side, the same assertion verifies.
		for _, at := range []time.Time{now.Add(-grantsig.DefaultLeeway), now.Add(30*time.Second + grantsig.DefaultLeeway - time.Second)} {
			if _, err := grantsig.Verify(set, good, expect(), at); err != nil {
				t.Errorf("at %s: %v", at, err)
			}
		}
	})
}

// TestVerifyNoLeeway: an upstream could not ask for no leeway at all, as
// a zero Expect.Leeway means DefaultLeeway. With NoLeeway, "exp" and "iat"
// are held to the second; a zero Leeway without it is still the default.
func TestVerifyNoLeeway(t *testing.T) {
	key := keys(t)[grantsig.AlgEdDSA]
	set := keySet(t, key.Public())
	tok, err := newSigner(t, key).Sign(callClaims()) // iat now, exp now+30s
	if err != nil {
		t.Fatal(err)
	}
	exp := now.Add(30 * time.Second)
	strict := expect()
	strict.NoLeeway = true
	for _, tc := range []struct {
		name string
		want grantsig.Expect
		at   time.Time
		ok   bool
	}{
		{"no leeway, at iat", strict, now, true},
		{"no leeway, the second before exp", strict, exp.Add(-time.Second), true},
		{"no leeway, at exp", strict, exp, false},
		{"no leeway, the second before iat", strict, now.Add(-time.Second), false},
		{"zero leeway is the default's, at exp", expect(), exp, true},
		{"zero leeway is the default's, before iat", expect(), now.Add(-grantsig.DefaultLeeway), true},
	} {
		_, err := grantsig.Verify(set, tok, tc.want, tc.at)
		switch {
		case tc.ok && err != nil:
			t.Errorf("%s: %v", tc.name, err)
		case !tc.ok && !errors.Is(err, grantsig.ErrInvalid):
			t.Errorf("%s: err = %v, want ErrInvalid", tc.name, err)
		}
	}
	// Both is a contradiction, refused as an incomplete expectation is,
	// rather than settled one way in silence.
	both := strict
	both.Leeway = time.Second
	if _, err := grantsig.Verify(set, tok, both, now); err == nil || errors.Is(err, grantsig.ErrInvalid) {
		t.Errorf("Leeway with NoLeeway: err = %v, want a refusal of the expectation", err)
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func h64none(t *testing.T, kid string) string {
	return base64.RawURLEncoding.EncodeToString(mustJSON(t, map[string]string{"alg": "none", "kid": kid, "typ": grantsig.Type}))
}

func sigOf(t *testing.T, tok string) string {
	t.Helper()
	i := strings.LastIndexByte(tok, '.')
	return tok[i+1:]
}

// esASN1 is an ES256 assertion whose signature is DER, as crypto/ecdsa
// makes it, rather than JWS's r||s.
func esASN1(t *testing.T, k *ecdsa.PrivateKey, kid string) string {
	t.Helper()
	input := base64.RawURLEncoding.EncodeToString(mustJSON(t, map[string]string{"alg": grantsig.AlgES256, "kid": kid, "typ": grantsig.Type})) +
		"." + base64.RawURLEncoding.EncodeToString(mustJSON(t, callClaims()))
	d := sha256.Sum256([]byte(input))
	der, err := ecdsa.SignASN1(rand.Reader, k, d[:])
	if err != nil {
		t.Fatal(err)
	}
	return input + "." + base64.RawURLEncoding.EncodeToString(der)
}

// TestTemplate: the assertions of a grant's template carry the grant's and
// the call's claims, end no later than the grant, and live no longer than
// MaxTTL.
func TestTemplate(t *testing.T) {
	for alg, key := range keys(t) {
		t.Run(alg, func(t *testing.T) {
			s := newSigner(t, key)
			ks := keySet(t, key.Public())
			c := callClaims()
			end := now.Add(10 * time.Second)
			// Identifiers of every length, so the grant's claims need each
			// amount of padding.
			for _, rid := range []string{"r", "r1", "r12"} {
				tpl, err := s.Template(grantsig.GrantClaims{
					Issuer: c.Issuer, Subject: c.Subject, Audience: c.Audience,
					Tenant: c.Tenant, Service: c.Service, RequestID: rid, NotAfter: end,
				})
				if err != nil {
					t.Fatal(err)
				}
				buf := []byte("unrelated bytes before")
				buf, err = tpl.Append(buf, grantsig.CallClaims{
					AuditID: c.AuditID, Activity: c.Activity, Method: c.Method, Path: c.Path,
					IssuedAt: now.Add(900 * time.Millisecond), ExpiresAt: now.Add(30 * time.Second),
				})
				if err != nil {
					t.Fatal(err)
				}
				tok, ok := strings.CutPrefix(string(buf), "unrelated bytes before")
				if !ok {
					t.Fatalf("Append changed what dst held: %q", buf)
				}
				got, err := grantsig.Verify(ks, tok, expect(), now)
				if err != nil {
					t.Fatal(err)
				}
				want := c
				want.RequestID, want.ExpiresAt = rid, end.Unix()
				if got != want {
					t.Errorf("claims\n got %+v\nwant %+v (exp capped at the grant's end)", got, want)
				}
			}
		})
	}
	t.Run("special characters", func(t *testing.T) {
		// Every value is escaped as encoding/json escapes it: what an
		// upstream decodes is what encoding/json would have encoded.
		s := newSigner(t, keys(t)[grantsig.AlgEdDSA])
		odd := "a\"b\\c\x01d\x1f/é\u2028<&>"
		bad := odd + "\xff\xc3"
		var want string
		if err := json.Unmarshal(mustJSON(t, bad), &want); err != nil {
			t.Fatal(err)
		}
		tok, err := s.Sign(grantsig.Claims{Issuer: odd, Subject: bad, Audience: "exchange", Tenant: bad, Service: bad, RequestID: bad,
			AuditID: bad, Activity: bad, Method: "GET", Path: odd, IssuedAt: now.Unix(), ExpiresAt: now.Unix() + 1})
		if err != nil {
			t.Fatal(err)
		}
		got, err := grantsig.Verify(keySet(t, s.Public()), tok, grantsig.Expect{Issuer: odd, Audience: "exchange", Method: "GET", Path: odd}, now)
		if err != nil || got.Activity != want || got.AuditID != want || got.Tenant != want || got.Subject != want {
			t.Fatalf("%+v, %v; want %q", got, err, want)
		}
	})
	t.Run("lifetime", func(t *testing.T) {
		s := newSigner(t, keys(t)[grantsig.AlgEdDSA])
		tpl, err := s.Template(grantsig.GrantClaims{Issuer: "lockbox", Audience: "exchange", NotAfter: now.Add(time.Hour)})
		if err != nil {
			t.Fatal(err)
		}
		for name, exp := range map[string]time.Time{
			"over MaxTTL":           now.Add(grantsig.MaxTTL + time.Second),
			"expired when issued":   now,
			"grant ended":           now.Add(2 * time.Hour), // capped to the grant's end, then over MaxTTL
			"before it was issued ": now.Add(-time.Second),
		} {
			if _, err := tpl.Append(nil, grantsig.CallClaims{Method: "GET", Path: "/", IssuedAt: now, ExpiresAt: exp}); !errors.Is(err, grantsig.ErrLifetime) {
				t.Errorf("%s: err = %v", name, err)
			}
		}
		ended, _ := s.Template(grantsig.GrantClaims{Issuer: "lockbox", Audience: "exchange", NotAfter: now})
		if _, err := ended.Append(nil, grantsig.CallClaims{Method: "GET", Path: "/", IssuedAt: now, ExpiresAt: now.Add(time.Second)}); !errors.Is(err, grantsig.ErrLifetime) {
			t.Errorf("a grant that ended: err = %v", err)
		}
	})
}

// TestKeyID checks the thumbprint against RFC 8037 Appendix A.3.
func TestKeyID(t *testing.T) {
	x, _ := base64.RawURLEncoding.DecodeString("11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo")
	kid, err := grantsig.KeyID(ed25519.PublicKey(x))
	if err != nil || kid != "kPrK_qmxVWaYVA9wwBF6Iuo3vVzz7TxHCTwXBygrS4k" {
		t.Fatalf("kid %q, %v", kid, err)
	}
}

func TestJWKS(t *testing.T) {
	ks := keys(t)
	ed, ec := ks[grantsig.AlgEdDSA], ks[grantsig.AlgES256]
	set, err := grantsig.NewJWKS(ed.Public(), ec.Public(), ed.Public())
	if err != nil {
		t.Fatal(err)
	}
	if len(set.Keys) != 2 {
		t.Fatalf("%d keys, want the two distinct ones", len(set.Keys))
	}
	b, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	parsed, err := grantsig.ParseJWKS(b)
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range ks {
		s := newSigner(t, k)
		tok, err := s.Sign(callClaims())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := grantsig.Verify(parsed, tok, expect(), now); err != nil {
			t.Errorf("%s: %v", s.Algorithm(), err)
		}
	}
	var raw struct{ Keys []map[string]string }
	if err := json.Unmarshal(b, &raw); err != nil {
		t.Fatal(err)
	}
	if k := raw.Keys[0]; k["kty"] != "OKP" || k["crv"] != "Ed25519" || k["alg"] != "EdDSA" || k["use"] != "sig" || k["kid"] == "" || k["d"] != "" {
		t.Errorf("Ed25519 JWK %v", k)
	}
	if k := raw.Keys[1]; k["kty"] != "EC" || k["crv"] != "P-256" || k["alg"] != "ES256" || len(k["x"]) != 43 || len(k["y"]) != 43 {
		t.Errorf("P-256 JWK %v", k)
	}

	for name, doc := range map[string]string{
		"no keys":          `{"keys":[]}`,
		"RSA":              `{"keys":[{"kty":"RSA","n":"AQAB","e":"AQAB"}]}`,
		"alg of another":   `{"keys":[{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","alg":"ES256"}]}`,
		"for encryption":   `{"keys":[{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","use":"enc"}]}`,
		"short key":        `{"keys":[{"kty":"OKP","crv":"Ed25519","x":"AAAA"}]}`,
		"point off curve":  `{"keys":[{"kty":"EC","crv":"P-256","x":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA","y":"AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAE"}]}`,
		"kid twice":        `{"keys":[{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","kid":"a"},{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","kid":"a"}]}`,
		"not JSON":         `keys`,
		"private key only": `{"keys":[{"kty":"oct","k":"c2VjcmV0"}]}`,
		// A key whose private part is published is no secret: anyone who
		// read the set can sign, so an upstream must not trust it.
		"Ed25519 private key": `{"keys":[{"kty":"OKP","crv":"Ed25519","x":"11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo","d":"nWGxne_9WmC6hEr0kuwsxERJxWl7MmkZcDusAxyuf2A"}]}`,
		"P-256 private key":   ecPrivateJWKS(t),
	} {
		if _, err := grantsig.ParseJWKS([]byte(doc)); err == nil {
			t.Errorf("%s: parsed", name)
		}
	}
}

// ecPrivateJWKS is a JWKS holding a P-256 key with its private part, as
// JWK tools write a key pair.
func ecPrivateJWKS(t *testing.T) string {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pub, err := grantsig.PublicJWK(&k.PublicKey)
	if err != nil {
		t.Fatal(err)
	}
	d, err := k.Bytes()
	if err != nil {
		t.Fatal(err)
	}
	return fmt.Sprintf(`{"keys":[{"kty":"EC","crv":"P-256","x":%q,"y":%q,"d":%q}]}`, pub.X, pub.Y, base64.RawURLEncoding.EncodeToString(d))
}

// TestRotation: an upstream holding the JWKS with the previous and the
// current key verifies assertions of both; once the previous key leaves
// the set, its assertions are refused.
func TestRotation(t *testing.T) {
	_, prev, _ := ed25519.GenerateKey(rand.Reader)
	_, cur, _ := ed25519.GenerateKey(rand.Reader)
	old, err := newSigner(t, prev).Sign(callClaims())
	if err != nil {
		t.Fatal(err)
	}
	fresh, err := newSigner(t, cur).Sign(callClaims())
	if err != nil {
		t.Fatal(err)
	}
	both := keySet(t, cur.Public(), prev.Public())
	for _, tok := range []string{old, fresh} {
		if _, err := grantsig.Verify(both, tok, expect(), now); err != nil {
			t.Errorf("during rotation: %v", err)
		}
	}
	after := keySet(t, cur.Public())
	if _, err := grantsig.Verify(after, old, expect(), now); !errors.Is(err, grantsig.ErrInvalid) {
		t.Errorf("an assertion of the retired key: err = %v", err)
	}
	if _, err := grantsig.Verify(after, fresh, expect(), now); err != nil {
		t.Errorf("after rotation: %v", err)
	}
}

func TestKeyFiles(t *testing.T) {
	dir := t.TempDir()
	priv, pub := filepath.Join(dir, "k.pem"), filepath.Join(dir, "k.pub.pem")
	key, err := grantsig.EnsureKeyFiles(priv, pub)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := key.(ed25519.PrivateKey); !ok {
		t.Fatalf("generated a %T, want Ed25519", key)
	}
	again, err := grantsig.EnsureKeyFiles(priv, pub)
	if err != nil || !again.(ed25519.PrivateKey).Equal(key) {
		t.Fatalf("second call made a new key: %v", err)
	}
	for _, path := range []string{pub, priv} {
		p, err := grantsig.LoadPublicKey(path)
		if err != nil || !key.Public().(ed25519.PublicKey).Equal(p) {
			t.Fatalf("public key from %s: %v", path, err)
		}
	}
	if _, err := grantsig.LoadPrivateKey(pub); err == nil {
		t.Fatal("a public key loaded as a private key")
	}

	// P-256 keys, as openssl writes them: SEC 1 and PKCS#8.
	ec, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	sec1, _ := x509.MarshalECPrivateKey(ec)
	pkcs8, _ := x509.MarshalPKCS8PrivateKey(ec)
	for typ, der := range map[string][]byte{"EC PRIVATE KEY": sec1, "PRIVATE KEY": pkcs8} {
		path := filepath.Join(dir, "ec.pem")
		if err := os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		k, err := grantsig.LoadPrivateKey(path)
		if err != nil || !ec.Equal(k) {
			t.Errorf("%s: %v", typ, err)
		}
	}
	// "openssl ecparam -name prime256v1 -genkey" writes the curve's
	// parameters before the key.
	params := pem.EncodeToMemory(&pem.Block{Type: "EC PARAMETERS", Bytes: []byte{0x06, 0x08, 0x2a, 0x86, 0x48, 0xce, 0x3d, 0x03, 0x01, 0x07}})
	ecparam := append(params, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: sec1})...)
	if k, err := grantsig.ParsePrivateKey(ecparam); err != nil || !ec.Equal(k) {
		t.Errorf("openssl ecparam -genkey: %v", err)
	}
	if p, err := grantsig.ParsePublicKey(ecparam); err != nil || !ec.PublicKey.Equal(p) {
		t.Errorf("public half of openssl ecparam -genkey: %v", err)
	}

	// One key a file: of a file with two, the second would be silently
	// left out, published or used by no one.
	pubPEM, _ := os.ReadFile(pub)
	ecPub, _ := grantsig.PublicKeyPEM(&ec.PublicKey)
	ecPriv := pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: pkcs8})
	edPriv, _ := os.ReadFile(priv)
	for name, b := range map[string][]byte{
		"two public keys":            append(slices.Clone(pubPEM), ecPub...),
		"a public and a private key": append(slices.Clone(pubPEM), ecPriv...),
		"two private keys":           append(slices.Clone(edPriv), ecPriv...),
		"parameters between keys":    append(append(slices.Clone(edPriv), params...), ecPriv...),
	} {
		if k, err := grantsig.ParsePublicKey(b); err == nil {
			t.Errorf("%s: ParsePublicKey took one of them (%T)", name, k)
		}
		if k, err := grantsig.ParsePrivateKey(b); err == nil {
			t.Errorf("%s: ParsePrivateKey took one of them (%T)", name, k)
		}
	}

	// Keys assertions can't be signed with.
	p384, _ := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	der, _ := x509.MarshalPKCS8PrivateKey(p384)
	if _, err := grantsig.ParsePrivateKey(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der})); err == nil {
		t.Error("a P-384 key loaded")
	}
	if _, err := grantsig.NewSigner(p384); err == nil {
		t.Error("a P-384 key signs")
	}
}

// TestEd25519SameAsStandardLibrary checks the Signer's Ed25519 signatures,
// made by curve25519-voi for speed, against crypto/ed25519's over the same
// key and signing input: Ed25519 is deterministic, so any difference is a
// fault in one of them. Keys and paths are generated, of every length up to
// past a SHA-512 block and with multi-byte and escaped characters.
func TestEd25519SameAsStandardLibrary(t *testing.T) {
	rng := mathrand.New(mathrand.NewPCG(7, 11))
	alphabet := []rune("abcXYZ019/-_.~%\"\\\x01é€😀")
	for i := range 300 {
		seed := make([]byte, ed25519.SeedSize)
		for j := range seed {
			seed[j] = byte(rng.Uint32())
		}
		key := ed25519.NewKeyFromSeed(seed)
		path := make([]rune, rng.IntN(300))
		for j := range path {
			path[j] = alphabet[rng.IntN(len(alphabet))]
		}
		c := callClaims()
		c.Path = "/" + string(path)
		c.AuditID = fmt.Sprintf("0195a000-0000-7000-8000-%012x", i)
		jws, err := newSigner(t, key).Sign(c)
		if err != nil {
			t.Fatal(err)
		}
		dot := strings.LastIndexByte(jws, '.')
		sig, err := base64.RawURLEncoding.DecodeString(jws[dot+1:])
		if err != nil {
			t.Fatal(err)
		}
		if want := ed25519.Sign(key, []byte(jws[:dot])); !bytes.Equal(sig, want) {
			t.Fatalf("key %x, input %q:\n signed %x\n crypto/ed25519 signs %x", seed, jws[:dot], sig, want)
		}
	}
}
