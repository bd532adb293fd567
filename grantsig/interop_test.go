package grantsig_test

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/lockbox-oss/lockbox/grantsig"
)

// upstreamClaims is how an upstream written with golang-jwt reads an
// assertion: the registered claims, and the call it was issued for, checked
// against the request it arrived with.
type upstreamClaims struct {
	jwt.RegisteredClaims
	Tenant    string `json:"tenant"`
	RequestID string `json:"request_id"`
	Activity  string `json:"activity"`
	Method    string `json:"method"`
	Path      string `json:"path"`

	wantMethod, wantPath string
}

// Validate binds the assertion to the received call.
func (c *upstreamClaims) Validate() error {
	if c.Method != c.wantMethod || c.Path != c.wantPath {
		return fmt.Errorf("issued for %s %s, not %s %s", c.Method, c.Path, c.wantMethod, c.wantPath)
	}
	return nil
}

// jwksKeyfunc reads a JWKS document with nothing but the standard library
// and picks the key the token's kid names, as an upstream would.
func jwksKeyfunc(t *testing.T, doc []byte) jwt.Keyfunc {
	t.Helper()
	var set struct {
		Keys []struct{ Kty, Crv, X, Y, Kid, Alg string }
	}
	if err := json.Unmarshal(doc, &set); err != nil {
		t.Fatal(err)
	}
	keys := map[string]crypto.PublicKey{}
	for _, k := range set.Keys {
		x, _ := base64.RawURLEncoding.DecodeString(k.X)
		switch k.Kty {
		case "OKP":
			keys[k.Kid] = ed25519.PublicKey(x)
		case "EC":
			y, _ := base64.RawURLEncoding.DecodeString(k.Y)
			p, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), append(append([]byte{4}, x...), y...))
			if err != nil {
				t.Fatal(err)
			}
			keys[k.Kid] = p
		}
	}
	return func(tok *jwt.Token) (any, error) {
		kid, _ := tok.Header["kid"].(string)
		if k, ok := keys[kid]; ok {
			return k, nil
		}
		return nil, fmt.Errorf("unknown kid %q", kid)
	}
}

// upstreamOptions are the golang-jwt options an upstream verifies an
// assertion with, by name, for one algorithm and audience: what README's
// golang-jwt example must pass, each one (TestREADMEGolangJWT). Without
// WithIssuedAt, golang-jwt does not look at "iat", and takes an assertion
// issued in the future.
func upstreamOptions(alg, aud string) map[string]jwt.ParserOption {
	return map[string]jwt.ParserOption{
		"WithValidMethods":       jwt.WithValidMethods([]string{alg}), // pinned by the upstream, never taken from the token
		"WithIssuer":             jwt.WithIssuer("lockbox"),
		"WithAudience":           jwt.WithAudience(aud),
		"WithExpirationRequired": jwt.WithExpirationRequired(),
		"WithIssuedAt":           jwt.WithIssuedAt(),
	}
}

// TestInteropGolangJWT: an assertion as the proxy makes it (a grant's
// template, one call appended) verifies with golang-jwt and the key the
// JWKS publishes, and golang-jwt refuses it for another call, after it
// expired, before it was issued, and for another audience.
func TestInteropGolangJWT(t *testing.T) {
	ks := keys(t)
	pubs := []crypto.PublicKey{ks[grantsig.AlgEdDSA].Public(), ks[grantsig.AlgES256].Public()}
	set, err := grantsig.NewJWKS(pubs...)
	if err != nil {
		t.Fatal(err)
	}
	doc, err := json.Marshal(set)
	if err != nil {
		t.Fatal(err)
	}
	keyfunc := jwksKeyfunc(t, doc)
	c := callClaims()
	for alg, key := range ks {
		t.Run(alg, func(t *testing.T) {
			tpl, err := newSigner(t, key).Template(grantsig.GrantClaims{
				Issuer: c.Issuer, Subject: c.Subject, Audience: c.Audience,
				Tenant: c.Tenant, Service: c.Service, RequestID: c.RequestID, NotAfter: now.Add(time.Hour),
			})
			if err != nil {
				t.Fatal(err)
			}
			b, err := tpl.Append(nil, grantsig.CallClaims{
				AuditID: c.AuditID, Activity: c.Activity, Method: c.Method, Path: c.Path,
				IssuedAt: now, ExpiresAt: now.Add(30 * time.Second),
			})
			if err != nil {
				t.Fatal(err)
			}
			tok := string(b)
			verify := func(method, path, aud string, at time.Time) (*upstreamClaims, error) {
				claims := &upstreamClaims{wantMethod: method, wantPath: path}
				opts := []jwt.ParserOption{jwt.WithTimeFunc(func() time.Time { return at }), jwt.WithStrictDecoding()}
				for _, o := range upstreamOptions(alg, aud) {
					opts = append(opts, o)
				}
				_, err := jwt.ParseWithClaims(tok, claims, keyfunc, opts...)
				return claims, err
			}

			got, err := verify("GET", "/tenants/contoso/mailboxes", "exchange", now.Add(time.Second))
			if err != nil {
				t.Fatalf("golang-jwt refused the assertion: %v", err)
			}
			if got.ID != c.AuditID || got.Subject != "Microsoft Operator" || got.Tenant != "contoso" ||
				got.RequestID != c.RequestID || got.Activity != "Get-Mailbox" || !got.ExpiresAt.Equal(now.Add(30*time.Second)) {
				t.Errorf("claims as golang-jwt reads them: %+v", got)
			}
			for name, tc := range map[string]struct {
				method, path, aud string
				at                time.Time
				want              error
			}{
				"another path":     {"GET", "/tenants/contoso/mailboxes/alice", "exchange", now, nil},
				"another method":   {"DELETE", "/tenants/contoso/mailboxes", "exchange", now, nil},
				"after exp":        {"GET", "/tenants/contoso/mailboxes", "exchange", now.Add(31 * time.Second), jwt.ErrTokenExpired},
				"before iat":       {"GET", "/tenants/contoso/mailboxes", "exchange", now.Add(-time.Minute), jwt.ErrTokenUsedBeforeIssued},
				"another audience": {"GET", "/tenants/contoso/mailboxes", "sharepoint", now, jwt.ErrTokenInvalidAudience},
			} {
				_, err := verify(tc.method, tc.path, tc.aud, tc.at)
				if err == nil || tc.want != nil && !errors.Is(err, tc.want) {
					t.Errorf("%s: err = %v, want %v", name, err, tc.want)
				}
			}
		})
	}
}
