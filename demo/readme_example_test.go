package demo_test

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/lockbox-oss/lockbox/grantsig"
)

// grantClaims and the body of verifyLikeREADME are README.md's golang-jwt
// example ("Verifying X-Lockbox-Grant in an upstream") as it is printed
// there, so that the example an upstream's developers copy compiles against
// the golang-jwt this module uses and refuses what it says it refuses.
type grantClaims struct {
	jwt.RegisteredClaims
	Tenant, Method, Path string
}

func verifyLikeREADME(r *http.Request, keyOf jwt.Keyfunc) bool {
	claims := &grantClaims{}
	_, err := jwt.ParseWithClaims(r.Header.Get("X-Lockbox-Grant"), claims, keyOf,
		jwt.WithValidMethods([]string{"EdDSA"}), jwt.WithIssuer("lockbox"),
		jwt.WithAudience("exchange"), jwt.WithExpirationRequired(), jwt.WithIssuedAt())
	if err != nil || claims.Method != r.Method || claims.Path != r.URL.EscapedPath() ||
		claims.Tenant != r.PathValue("tenant") {
		// 403: not a call Lockbox forwarded, or not this one
		return false
	}
	return true
}

// jwksKeyOf is the README's keyOf: it reads the JWKS the proxy publishes,
// with the standard library alone, and returns the key the token's kid
// names.
func jwksKeyOf(jwks []byte) jwt.Keyfunc {
	var set struct {
		Keys []struct{ Kty, Crv, X, Kid string }
	}
	if err := json.Unmarshal(jwks, &set); err != nil {
		panic(err)
	}
	keys := map[string]ed25519.PublicKey{}
	for _, k := range set.Keys {
		if x, err := base64.RawURLEncoding.DecodeString(k.X); err == nil && k.Kty == "OKP" && k.Crv == "Ed25519" {
			keys[k.Kid] = ed25519.PublicKey(x)
		}
	}
	return func(t *jwt.Token) (any, error) {
		kid, _ := t.Header["kid"].(string)
		if k, ok := keys[kid]; ok {
			return k, nil
		}
		return nil, fmt.Errorf("unknown kid %q", kid)
	}
}

// Example_golangJWT runs README.md's golang-jwt example in an upstream
// served over HTTP, against assertions made as the proxy makes them. It
// checks them against the wall clock, as the example does: each assertion
// is either in force for a full minute after the test starts, or expired a
// minute before it, or issued two minutes after it.
func Example_golangJWT() {
	seed := make([]byte, ed25519.SeedSize)
	key := ed25519.NewKeyFromSeed(seed)
	seed[0] = 1
	otherKey := ed25519.NewKeyFromSeed(seed)
	set, err := grantsig.NewJWKS(key.Public())
	if err != nil {
		panic(err)
	}
	jwks, err := json.Marshal(set)
	if err != nil {
		panic(err)
	}
	keyOf := jwksKeyOf(jwks)

	mux := http.NewServeMux()
	mux.HandleFunc("GET /tenants/{tenant}/mailboxes", func(w http.ResponseWriter, r *http.Request) {
		if !verifyLikeREADME(r, keyOf) {
			w.WriteHeader(http.StatusForbidden)
		}
	})
	srv := httptest.NewServer(mux)
	defer srv.Close()

	now := time.Now()
	assertion := func(k ed25519.PrivateKey, edit func(c *grantsig.Claims)) string {
		signer, err := grantsig.NewSigner(k)
		if err != nil {
			panic(err)
		}
		c := grantsig.Claims{
			Issuer: "lockbox", Subject: "Microsoft Operator", Audience: "exchange",
			Tenant: "contoso", Service: "exchange", RequestID: "0195a000-0000-7000-8000-000000000001",
			AuditID: "0195a000-0000-7000-8000-0000000000a1", Activity: "Get-Mailbox",
			Method: "GET", Path: "/tenants/contoso/mailboxes",
			IssuedAt: now.Unix(), ExpiresAt: now.Add(grantsig.MaxTTL).Unix(),
		}
		if edit != nil {
			edit(&c)
		}
		a, err := signer.Sign(c)
		if err != nil {
			panic(err)
		}
		return a
	}
	call := func(what, target, grant string) {
		req, err := http.NewRequest("GET", srv.URL+target, nil)
		if err != nil {
			panic(err)
		}
		req.Header.Set("X-Lockbox-Grant", grant)
		resp, err := srv.Client().Do(req)
		if err != nil {
			panic(err)
		}
		_ = resp.Body.Close()
		fmt.Printf("%s: %d\n", what, resp.StatusCode)
	}

	call("the call it was issued for", "/tenants/contoso/mailboxes", assertion(key, nil))
	call("another tenant's path", "/tenants/fabrikam/mailboxes", assertion(key, nil))
	call("an escaped spelling of the path", "/tenants/%63ontoso/mailboxes", assertion(key, nil))
	call("issued for another method", "/tenants/contoso/mailboxes", assertion(key, func(c *grantsig.Claims) { c.Method = "DELETE" }))
	call("issued for another tenant", "/tenants/fabrikam/mailboxes", assertion(key, func(c *grantsig.Claims) { c.Path = "/tenants/fabrikam/mailboxes" }))
	call("issued for another service", "/tenants/contoso/mailboxes", assertion(key, func(c *grantsig.Claims) { c.Audience, c.Service = "sharepoint", "sharepoint" }))
	call("issued by another issuer", "/tenants/contoso/mailboxes", assertion(key, func(c *grantsig.Claims) { c.Issuer = "lockbox-staging" }))
	call("expired", "/tenants/contoso/mailboxes", assertion(key, func(c *grantsig.Claims) {
		c.IssuedAt, c.ExpiresAt = now.Add(-2*time.Minute).Unix(), now.Add(-time.Minute-30*time.Second).Unix()
	}))
	call("issued in the future", "/tenants/contoso/mailboxes", assertion(key, func(c *grantsig.Claims) {
		c.IssuedAt, c.ExpiresAt = now.Add(2*time.Minute).Unix(), now.Add(2*time.Minute+30*time.Second).Unix()
	}))
	call("signed by a key not in the JWKS", "/tenants/contoso/mailboxes", assertion(otherKey, nil))
	call("no assertion", "/tenants/contoso/mailboxes", "")
	// Output:
	// the call it was issued for: 200
	// another tenant's path: 403
	// an escaped spelling of the path: 403
	// issued for another method: 403
	// issued for another tenant: 403
	// issued for another service: 403
	// issued by another issuer: 403
	// expired: 403
	// issued in the future: 403
	// signed by a key not in the JWKS: 403
	// no assertion: 403
}
