package identity

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

const (
	testIssuer   = "https://idp.example.test"
	testAudience = "lockbox"
)

// testNow is whole seconds: NumericDate has one-second resolution, so a
// fractional clock would blur the leeway boundaries the tests probe.
var testNow = time.Unix(1_700_000_000, 0)

func fixedNow() time.Time { return testNow }

// RSA key generation is slow; every test shares one key.
var testRSAKey = sync.OnceValue(func() *rsa.PrivateKey {
	k, err := rsa.GenerateKey(rand.Reader, 2048)
	if err != nil {
		panic(err)
	}
	return k
})

type testKeys struct {
	ed  ed25519.PrivateKey
	rsa *rsa.PrivateKey
	ec  *ecdsa.PrivateKey
}

func newTestKeys(t testing.TB) testKeys {
	t.Helper()
	_, ed, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return testKeys{ed: ed, rsa: testRSAKey(), ec: ec}
}

// jwks lists the public halves under kids "ed", "rsa" and "ec". The RSA and
// EC keys carry no "alg", so the tests also cover deriving it from the key.
func (k testKeys) jwks() []jose.JSONWebKey {
	return []jose.JSONWebKey{
		{Key: k.ed.Public(), KeyID: "ed", Algorithm: string(jose.EdDSA), Use: "sig"},
		{Key: &k.rsa.PublicKey, KeyID: "rsa"},
		{Key: &k.ec.PublicKey, KeyID: "ec", Use: "sig"},
	}
}

func writeJWKS(t testing.TB, path string, keys ...jose.JSONWebKey) string {
	t.Helper()
	b, err := json.Marshal(jose.JSONWebKeySet{Keys: keys})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, b, 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

func newJWKSVerifier(t testing.TB, keys ...jose.JSONWebKey) (*Verifier, string) {
	t.Helper()
	path := writeJWKS(t, filepath.Join(t.TempDir(), "jwks.json"), keys...)
	v, err := NewVerifier(Config{Issuer: testIssuer, Audience: testAudience, JWKSFile: path, Now: fixedNow})
	if err != nil {
		t.Fatal(err)
	}
	return v, path
}

// validClaims is a token every verifier in these tests accepts; cases
// change one thing about it.
func validClaims() map[string]any {
	return map[string]any{
		"iss":   testIssuer,
		"aud":   testAudience,
		"sub":   "alice@example.test",
		"roles": []string{"operator"},
		"iat":   testNow.Unix(),
		"nbf":   testNow.Unix(),
		"exp":   testNow.Add(time.Hour).Unix(),
	}
}

// tok describes a token to sign. The zero value of each field means "as a
// well-behaved issuer would do it".
type tok struct {
	alg      jose.SignatureAlgorithm
	key      any // signing key
	kid      string
	noKID    bool
	noTyp    bool // no "typ" header; "JWT" otherwise, unless headers name one
	headers  map[jose.HeaderKey]any
	embedJWK bool
	claims   func(map[string]any) // edits validClaims()
}

func (s tok) sign(t testing.TB) string {
	t.Helper()
	opts := &jose.SignerOptions{EmbedJWK: s.embedJWK}
	if !s.noTyp {
		opts.WithType("JWT")
	}
	if !s.noKID && !s.embedJWK {
		opts.WithHeader("kid", s.kid)
	}
	for k, v := range s.headers {
		opts.WithHeader(k, v)
	}
	signer, err := jose.NewSigner(jose.SigningKey{Algorithm: s.alg, Key: s.key}, opts)
	if err != nil {
		t.Fatal(err)
	}
	claims := validClaims()
	if s.claims != nil {
		s.claims(claims)
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	jws, err := signer.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	out, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func b64(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return base64.RawURLEncoding.EncodeToString(b)
}

// checkResult asserts that err is nil and p is want, or that err wraps
// ErrUnauthenticated with the given reason.
func checkResult(t *testing.T, p Principal, err error, want Principal, wantReason string) {
	t.Helper()
	if wantReason == "" {
		if err != nil {
			t.Fatalf("Verify: unexpected error %v", err)
		}
		if !reflect.DeepEqual(p, want) {
			t.Fatalf("Verify = %+v, want %+v", p, want)
		}
		return
	}
	if err == nil {
		t.Fatalf("Verify accepted the token as %+v, want refusal %q", p, wantReason)
	}
	if !errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("error %v does not wrap ErrUnauthenticated", err)
	}
	if got := err.Error(); got != "unauthenticated: "+wantReason {
		t.Fatalf("error = %q, want reason %q", got, wantReason)
	}
	if !reflect.DeepEqual(p, Principal{}) {
		t.Fatalf("refusal returned a non-empty principal %+v", p)
	}
}

func TestVerifyJWKS(t *testing.T) {
	keys := newTestKeys(t)
	v, _ := newJWKSVerifier(t, keys.jwks()...)

	_, attacker, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	rsaPubPEM := pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: must(x509.MarshalPKIXPublicKey(&keys.rsa.PublicKey))})

	ed := tok{alg: jose.EdDSA, key: keys.ed, kid: "ed"}
	with := func(base tok, edit func(*tok)) tok { edit(&base); return base }
	claims := func(edit func(map[string]any)) tok { return with(ed, func(s *tok) { s.claims = edit }) }
	operator := Principal{Subject: "alice@example.test", Roles: []Role{RoleOperator}}

	tests := []struct {
		name       string
		token      func(testing.TB) string
		want       Principal
		wantReason string
	}{
		{
			name:  "valid EdDSA",
			token: ed.sign,
			want:  operator,
		},
		{
			name:  "valid RS256",
			token: tok{alg: jose.RS256, key: keys.rsa, kid: "rsa"}.sign,
			want:  operator,
		},
		{
			name:  "valid ES256",
			token: tok{alg: jose.ES256, key: keys.ec, kid: "ec"}.sign,
			want:  operator,
		},
		{
			name: "tenant user with several roles",
			token: claims(func(c map[string]any) {
				c["tid"] = "contoso"
				c["roles"] = []string{"global-admin", "lockbox-approver"}
			}).sign,
			want: Principal{Subject: "alice@example.test", TenantID: "contoso", Roles: []Role{RoleGlobalAdmin, RoleApprover}},
		},
		{
			name: "unknown and repeated roles dropped",
			token: claims(func(c map[string]any) {
				c["roles"] = []string{"superuser", "operator", "Operator", "operator"}
			}).sign,
			want: operator,
		},
		{
			name:  "no roles claim",
			token: claims(func(c map[string]any) { delete(c, "roles") }).sign,
			want:  Principal{Subject: "alice@example.test"},
		},
		{
			name:  "audience array containing ours",
			token: claims(func(c map[string]any) { c["aud"] = []string{"other-app", testAudience} }).sign,
			want:  operator,
		},
		{
			name:  "expired but within leeway",
			token: claims(func(c map[string]any) { c["exp"] = testNow.Add(-DefaultLeeway + time.Second).Unix() }).sign,
			want:  operator,
		},
		{
			name:  "nbf in the future but within leeway",
			token: claims(func(c map[string]any) { c["nbf"] = testNow.Add(DefaultLeeway - time.Second).Unix() }).sign,
			want:  operator,
		},
		{
			// Claim names are matched exactly; a differently-cased
			// duplicate is someone else's claim and changes nothing.
			name: "claim names are case-sensitive",
			token: claims(func(c map[string]any) {
				c["Tid"] = "contoso"
				c["ROLES"] = []string{"global-admin"}
			}).sign,
			want: operator,
		},

		// Algorithm and key selection.
		{
			name: "alg none",
			token: func(testing.TB) string {
				return b64(map[string]any{"alg": "none", "kid": "ed"}) + "." + b64(validClaims()) + "."
			},
			wantReason: "algorithm not allowed",
		},
		{
			name: "alg none without kid or signature",
			token: func(testing.TB) string {
				return b64(map[string]any{"alg": "none"}) + "." + b64(validClaims()) + "."
			},
			wantReason: "algorithm not allowed",
		},
		{
			// The classic confusion attack: MAC the token with the public
			// key's bytes, hoping the verifier feeds the same bytes to HMAC.
			name:       "HS256 signed with the RSA public key as secret",
			token:      tok{alg: jose.HS256, key: rsaPubPEM, kid: "rsa"}.sign,
			wantReason: "algorithm not allowed",
		},
		{
			name:       "HS256 with the RSA public key as secret and no kid",
			token:      tok{alg: jose.HS256, key: rsaPubPEM, noKID: true}.sign,
			wantReason: "algorithm not allowed",
		},
		{
			name:       "allowed alg paired with another type's key",
			token:      tok{alg: jose.ES256, key: keys.ec, kid: "rsa"}.sign,
			wantReason: "algorithm not allowed",
		},
		{
			name:       "unsupported alg",
			token:      tok{alg: jose.PS256, key: keys.rsa, kid: "rsa"}.sign,
			wantReason: "algorithm not allowed",
		},
		{
			name:       "embedded jwk header with the attacker's key",
			token:      tok{alg: jose.EdDSA, key: attacker, embedJWK: true}.sign,
			wantReason: "token names its own key",
		},
		{
			name:       "embedded jwk header next to a valid signature",
			token:      with(ed, func(s *tok) { s.embedJWK = true }).sign,
			wantReason: "token names its own key",
		},
		{
			name:       "jku header",
			token:      with(ed, func(s *tok) { s.headers = map[jose.HeaderKey]any{"jku": "https://attacker.example/jwks.json"} }).sign,
			wantReason: "token names its own key",
		},
		{
			name:       "x5u header",
			token:      with(ed, func(s *tok) { s.headers = map[jose.HeaderKey]any{"x5u": "https://attacker.example/cert.pem"} }).sign,
			wantReason: "token names its own key",
		},
		{
			name:       "x5c header",
			token:      with(ed, func(s *tok) { s.headers = map[jose.HeaderKey]any{"x5c": []string{"MIIB"}} }).sign,
			wantReason: "token names its own key",
		},
		{
			name:       "crit header",
			token:      with(ed, func(s *tok) { s.headers = map[jose.HeaderKey]any{"crit": []string{"exp"}, "exp": 1} }).sign,
			wantReason: "unsupported critical header",
		},
		{
			name:       "unknown kid",
			token:      with(ed, func(s *tok) { s.kid = "rotated-away" }).sign,
			wantReason: "unknown signing key",
		},
		{
			name:       "no kid with several keys configured",
			token:      with(ed, func(s *tok) { s.noKID = true }).sign,
			wantReason: "missing key id",
		},
		{
			name:       "right kid, signed by another key",
			token:      tok{alg: jose.EdDSA, key: attacker, kid: "ed"}.sign,
			wantReason: "bad signature",
		},
		{
			name: "tampered payload",
			token: func(t testing.TB) string {
				parts := strings.Split(ed.sign(t), ".")
				c := validClaims()
				c["sub"] = "mallory"
				parts[1] = b64(c)
				return strings.Join(parts, ".")
			},
			wantReason: "bad signature",
		},
		{
			name: "kid of the wrong JSON type",
			token: func(t testing.TB) string {
				parts := strings.Split(ed.sign(t), ".")
				parts[0] = b64(map[string]any{"alg": "EdDSA", "kid": 7})
				return strings.Join(parts, ".")
			},
			wantReason: "malformed token",
		},

		// Claims.
		{
			name:       "wrong issuer",
			token:      claims(func(c map[string]any) { c["iss"] = "https://evil.example" }).sign,
			wantReason: "wrong issuer",
		},
		{
			name:       "missing issuer",
			token:      claims(func(c map[string]any) { delete(c, "iss") }).sign,
			wantReason: "wrong issuer",
		},
		{
			name:       "wrong audience",
			token:      claims(func(c map[string]any) { c["aud"] = "other-app" }).sign,
			wantReason: "wrong audience",
		},
		{
			name:       "audience array without ours",
			token:      claims(func(c map[string]any) { c["aud"] = []string{"a", "b"} }).sign,
			wantReason: "wrong audience",
		},
		{
			name:       "missing audience",
			token:      claims(func(c map[string]any) { delete(c, "aud") }).sign,
			wantReason: "wrong audience",
		},
		{
			name:       "expired just past leeway",
			token:      claims(func(c map[string]any) { c["exp"] = testNow.Add(-DefaultLeeway - time.Second).Unix() }).sign,
			wantReason: "token expired",
		},
		{
			name:       "missing exp",
			token:      claims(func(c map[string]any) { delete(c, "exp") }).sign,
			wantReason: "missing exp",
		},
		{
			name:       "null exp",
			token:      claims(func(c map[string]any) { c["exp"] = nil }).sign,
			wantReason: "missing exp",
		},
		{
			name:       "exp as a string",
			token:      claims(func(c map[string]any) { c["exp"] = "4102444800" }).sign,
			wantReason: "malformed claims",
		},
		{
			name:       "nbf in the future",
			token:      claims(func(c map[string]any) { c["nbf"] = testNow.Add(DefaultLeeway + time.Second).Unix() }).sign,
			wantReason: "token not yet valid",
		},
		{
			name:       "iat in the future",
			token:      claims(func(c map[string]any) { c["iat"] = testNow.Add(DefaultLeeway + time.Second).Unix() }).sign,
			wantReason: "token issued in the future",
		},
		{
			name:       "missing sub",
			token:      claims(func(c map[string]any) { delete(c, "sub") }).sign,
			wantReason: "missing sub",
		},
		{
			name:       "sub with a Redis key separator",
			token:      claims(func(c map[string]any) { c["sub"] = "alice:grants" }).sign,
			wantReason: "invalid sub",
		},
		{
			name:       "sub with a newline",
			token:      claims(func(c map[string]any) { c["sub"] = "alice\nbob" }).sign,
			wantReason: "invalid sub",
		},
		{
			name:       "sub too long",
			token:      claims(func(c map[string]any) { c["sub"] = strings.Repeat("a", 129) }).sign,
			wantReason: "invalid sub",
		},
		{
			name:       "numeric sub",
			token:      claims(func(c map[string]any) { c["sub"] = 42 }).sign,
			wantReason: "malformed claims",
		},
		{
			name:       "tid uppercase",
			token:      claims(func(c map[string]any) { c["tid"] = "Contoso" }).sign,
			wantReason: "invalid tid",
		},
		{
			name:       "tid with a trailing hyphen",
			token:      claims(func(c map[string]any) { c["tid"] = "contoso-" }).sign,
			wantReason: "invalid tid",
		},
		{
			name:       "tid empty",
			token:      claims(func(c map[string]any) { c["tid"] = "" }).sign,
			wantReason: "invalid tid",
		},
		{
			// Must not turn a tenant user into provider staff.
			name:       "tid null",
			token:      claims(func(c map[string]any) { c["tid"] = nil }).sign,
			wantReason: "invalid tid",
		},
		{
			name:       "tid not a string",
			token:      claims(func(c map[string]any) { c["tid"] = []string{"contoso"} }).sign,
			wantReason: "invalid tid",
		},
		{
			name:       "roles not an array",
			token:      claims(func(c map[string]any) { c["roles"] = "operator" }).sign,
			wantReason: "malformed claims",
		},
		{
			name:       "roles with a non-string",
			token:      claims(func(c map[string]any) { c["roles"] = []any{"operator", 1} }).sign,
			wantReason: "malformed claims",
		},

		// Shape.
		{
			name:       "empty",
			token:      func(testing.TB) string { return "" },
			wantReason: "missing token",
		},
		{
			name:       "oversized token",
			token:      claims(func(c map[string]any) { c["pad"] = strings.Repeat("x", MaxTokenSize) }).sign,
			wantReason: errTooLarge.(*authError).reason,
		},
		{
			name:       "not a JWT",
			token:      func(testing.TB) string { return "Bearer abc" },
			wantReason: "malformed token",
		},
		{
			name:       "encrypted token shape",
			token:      func(testing.TB) string { return b64(map[string]any{"alg": "dir", "enc": "A256GCM"}) + "...." },
			wantReason: "malformed token",
		},
		{
			name:       "header not base64url",
			token:      func(testing.TB) string { return "e30=.e30.AA" },
			wantReason: "malformed token",
		},
		{
			name:       "header not an object",
			token:      func(testing.TB) string { return b64([]string{"EdDSA"}) + "." + b64(validClaims()) + ".AA" },
			wantReason: "malformed token",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := v.Verify(context.Background(), tt.token(t))
			checkResult(t, p, err, tt.want, tt.wantReason)
		})
	}
}

func TestVerifySingleKeyWithoutKID(t *testing.T) {
	keys := newTestKeys(t)
	// An issuer that publishes one key without a kid: tokens without a
	// kid are checked against that key, and only that key.
	v, _ := newJWKSVerifier(t, jose.JSONWebKey{Key: keys.ec.Public()})

	tests := []struct {
		name       string
		token      tok
		wantReason string
	}{
		{name: "no kid", token: tok{alg: jose.ES256, key: keys.ec, noKID: true}},
		{name: "kid naming nothing", token: tok{alg: jose.ES256, key: keys.ec, kid: "x"}, wantReason: "unknown signing key"},
		{name: "other key", token: tok{alg: jose.ES256, key: must(ecdsa.GenerateKey(elliptic.P256(), rand.Reader)), noKID: true}, wantReason: "bad signature"},
		{name: "other algorithm", token: tok{alg: jose.EdDSA, key: keys.ed, noKID: true}, wantReason: "algorithm not allowed"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := v.Verify(context.Background(), tt.token.sign(t))
			checkResult(t, p, err, Principal{Subject: "alice@example.test", Roles: []Role{RoleOperator}}, tt.wantReason)
		})
	}
}

func TestVerifyHMAC(t *testing.T) {
	secret := []byte(strings.Repeat("s3cret-", 7)) // 49 bytes, enough for HS384 too
	path := filepath.Join(t.TempDir(), "secret")
	// A trailing line ending is how secrets usually land in files; it is
	// not part of the key.
	if err := os.WriteFile(path, append(secret, "\r\n"...), 0o600); err != nil {
		t.Fatal(err)
	}
	v, err := NewVerifier(Config{Issuer: testIssuer, Audience: testAudience, HMACSecretFile: path, Now: fixedNow})
	if err != nil {
		t.Fatal(err)
	}
	keys := newTestKeys(t)

	tests := []struct {
		name       string
		token      tok
		wantReason string
	}{
		{name: "valid HS256", token: tok{alg: jose.HS256, key: secret, noKID: true}},
		{name: "secret with the newline", token: tok{alg: jose.HS256, key: append(secret, '\n'), noKID: true}, wantReason: "bad signature"},
		{name: "wrong secret", token: tok{alg: jose.HS256, key: []byte(strings.Repeat("x", 32)), noKID: true}, wantReason: "bad signature"},
		{name: "HS384", token: tok{alg: jose.HS384, key: secret, noKID: true}, wantReason: "algorithm not allowed"},
		{name: "EdDSA token", token: tok{alg: jose.EdDSA, key: keys.ed, noKID: true}, wantReason: "algorithm not allowed"},
		{name: "RS256 token", token: tok{alg: jose.RS256, key: keys.rsa, noKID: true}, wantReason: "algorithm not allowed"},
		{name: "kid that names nothing", token: tok{alg: jose.HS256, key: secret, kid: "k1"}, wantReason: "unknown signing key"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := v.Verify(context.Background(), tt.token.sign(t))
			checkResult(t, p, err, Principal{Subject: "alice@example.test", Roles: []Role{RoleOperator}}, tt.wantReason)
		})
	}
}

func TestVerifyCustomLeeway(t *testing.T) {
	keys := newTestKeys(t)
	path := writeJWKS(t, filepath.Join(t.TempDir(), "jwks.json"), keys.jwks()...)
	now := testNow
	v, err := NewVerifier(Config{
		Issuer: testIssuer, Audience: testAudience, JWKSFile: path,
		Leeway: 5 * time.Second,
		Now:    func() time.Time { return now },
	})
	if err != nil {
		t.Fatal(err)
	}
	token := tok{alg: jose.EdDSA, key: keys.ed, kid: "ed"}.sign(t) // exp = testNow + 1h

	tests := []struct {
		name       string
		at         time.Time
		wantReason string
	}{
		{name: "at expiry", at: testNow.Add(time.Hour)},
		{name: "at expiry plus leeway", at: testNow.Add(time.Hour + 5*time.Second)},
		{name: "a second past leeway", at: testNow.Add(time.Hour + 6*time.Second), wantReason: "token expired"},
		{name: "before nbf, within leeway", at: testNow.Add(-5 * time.Second)},
		{name: "before nbf, past leeway", at: testNow.Add(-6 * time.Second), wantReason: "token not yet valid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			now = tt.at
			p, err := v.Verify(context.Background(), token)
			checkResult(t, p, err, Principal{Subject: "alice@example.test", Roles: []Role{RoleOperator}}, tt.wantReason)
		})
	}
}

// TestVerifyNoLeeway: with NoLeeway, exp and nbf are checked to the
// second (LOCKBOX_JWT_LEEWAY=0), although a zero Leeway means the default.
func TestVerifyNoLeeway(t *testing.T) {
	keys := newTestKeys(t)
	path := writeJWKS(t, filepath.Join(t.TempDir(), "jwks.json"), keys.jwks()...)
	now := testNow
	v, err := NewVerifier(Config{
		Issuer: testIssuer, Audience: testAudience, JWKSFile: path,
		NoLeeway: true,
		Now:      func() time.Time { return now },
	})
	if err != nil {
		t.Fatal(err)
	}
	token := tok{alg: jose.EdDSA, key: keys.ed, kid: "ed"}.sign(t) // nbf = testNow, exp = testNow + 1h

	tests := []struct {
		name       string
		at         time.Time
		wantReason string
	}{
		{name: "at nbf", at: testNow},
		{name: "at expiry", at: testNow.Add(time.Hour)},
		{name: "a second past expiry", at: testNow.Add(time.Hour + time.Second), wantReason: "token expired"},
		{name: "a second before nbf", at: testNow.Add(-time.Second), wantReason: "token not yet valid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			now = tt.at
			p, err := v.Verify(context.Background(), token)
			checkResult(t, p, err, Principal{Subject: "alice@example.test", Roles: []Role{RoleOperator}}, tt.wantReason)
		})
	}
}

func TestConfigCheckAndSetDefaults(t *testing.T) {
	tests := []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{name: "jwks", cfg: Config{Issuer: "i", Audience: "a", JWKSFile: "f"}},
		{name: "hmac", cfg: Config{Issuer: "i", Audience: "a", HMACSecretFile: "f"}},
		{name: "no issuer", cfg: Config{Audience: "a", JWKSFile: "f"}, wantErr: "Issuer is required"},
		{name: "no audience", cfg: Config{Issuer: "i", JWKSFile: "f"}, wantErr: "Audience is required"},
		{name: "no key file", cfg: Config{Issuer: "i", Audience: "a"}, wantErr: "one of JWKSURL, JWKSFile or HMACSecretFile"},
		{name: "both key files", cfg: Config{Issuer: "i", Audience: "a", JWKSFile: "f", HMACSecretFile: "g"}, wantErr: "exclusive"},
		{name: "negative leeway", cfg: Config{Issuer: "i", Audience: "a", JWKSFile: "f", Leeway: -time.Second}, wantErr: "negative"},
		{name: "huge leeway", cfg: Config{Issuer: "i", Audience: "a", JWKSFile: "f", Leeway: time.Hour}, wantErr: "limit"},
		{name: "leeway and no leeway", cfg: Config{Issuer: "i", Audience: "a", JWKSFile: "f", Leeway: time.Second, NoLeeway: true}, wantErr: "NoLeeway"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.CheckAndSetDefaults()
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if tt.cfg.Leeway != DefaultLeeway || tt.cfg.Now == nil {
				t.Fatalf("defaults not set: leeway %s, now set %v", tt.cfg.Leeway, tt.cfg.Now != nil)
			}
		})
	}
}

func TestNewVerifierRejectsBadKeyFiles(t *testing.T) {
	keys := newTestKeys(t)
	weak, err := rsa.GenerateKey(rand.Reader, 1024)
	if err != nil {
		t.Fatal(err)
	}
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	edJWK := jose.JSONWebKey{Key: keys.ed.Public(), KeyID: "ed"}

	tests := []struct {
		name    string
		jwks    []jose.JSONWebKey // written as the JWKS file unless raw is set
		raw     string
		hmac    bool
		wantErr string
	}{
		{name: "not JSON", raw: "not json", wantErr: "jwks"},
		{name: "empty file", raw: "", wantErr: "jwks"},
		{name: "no keys", raw: `{"keys":[]}`, wantErr: "no usable signing keys"},
		{name: "private key", jwks: []jose.JSONWebKey{{Key: keys.ed, KeyID: "ed"}}, wantErr: "private key material"},
		{name: "symmetric key", jwks: []jose.JSONWebKey{{Key: []byte(strings.Repeat("k", 32)), KeyID: "k", Algorithm: "HS256"}}, wantErr: "symmetric key"},
		{name: "weak RSA key", jwks: []jose.JSONWebKey{{Key: &weak.PublicKey, KeyID: "weak"}}, wantErr: "1024 bits"},
		{name: "alg contradicts key type", jwks: []jose.JSONWebKey{{Key: &keys.rsa.PublicKey, KeyID: "rsa", Algorithm: "ES256"}}, wantErr: "does not match"},
		{name: "duplicate kid", jwks: []jose.JSONWebKey{edJWK, {Key: keys.ec.Public(), KeyID: "ed"}}, wantErr: "duplicate kid"},
		{name: "two keys without kid", jwks: []jose.JSONWebKey{{Key: keys.ed.Public()}, {Key: keys.ec.Public()}}, wantErr: "more than one key without a kid"},
		{name: "only an encryption key", jwks: []jose.JSONWebKey{{Key: &keys.rsa.PublicKey, KeyID: "enc", Use: "enc"}}, wantErr: "no usable signing keys"},
		{name: "only unsupported algorithms", jwks: []jose.JSONWebKey{{Key: &keys.rsa.PublicKey, KeyID: "ps", Algorithm: "PS256"}, {Key: p384.Public(), KeyID: "p384"}}, wantErr: "no usable signing keys"},
		{name: "hmac secret too short", hmac: true, raw: strings.Repeat("k", 31) + "\n", wantErr: "need at least 32"},
		{name: "hmac secret of white space", hmac: true, raw: strings.Repeat(" ", 40) + "\n", wantErr: "0 bytes besides white space, need at least 32"},
		{name: "hmac secret padded with white space", hmac: true, raw: "\t" + strings.Repeat("k", 8) + strings.Repeat(" ", 30) + "\n", wantErr: "8 bytes besides white space, need at least 32"},
		// Public keys named as the HMAC secret (a swapped setting): anyone
		// who can read them could MAC tokens with them, which is
		// algorithm confusion set up by the configuration.
		{name: "hmac secret file holding a JWKS", hmac: true, raw: string(must(json.Marshal(jose.JSONWebKeySet{Keys: keys.jwks()}))), wantErr: "public keys"},
		{name: "hmac secret file holding a PEM public key", hmac: true, raw: string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: must(x509.MarshalPKIXPublicKey(&keys.rsa.PublicKey))})), wantErr: "public keys"},
		{name: "hmac secret file holding a JWK", hmac: true, raw: "  " + string(must(json.Marshal(edJWK))) + "\n", wantErr: "public keys"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "keys")
			if tt.jwks != nil {
				writeJWKS(t, path, tt.jwks...)
			} else if err := os.WriteFile(path, []byte(tt.raw), 0o600); err != nil {
				t.Fatal(err)
			}
			cfg := Config{Issuer: testIssuer, Audience: testAudience, JWKSFile: path}
			if tt.hmac {
				cfg.JWKSFile, cfg.HMACSecretFile = "", path
			}
			v, err := NewVerifier(cfg)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("NewVerifier = %v, %v; want error containing %q", v, err, tt.wantErr)
			}
		})
	}

	t.Run("missing file", func(t *testing.T) {
		_, err := NewVerifier(Config{Issuer: testIssuer, Audience: testAudience, JWKSFile: filepath.Join(t.TempDir(), "absent")})
		if !errors.Is(err, os.ErrNotExist) {
			t.Fatalf("err = %v, want one wrapping os.ErrNotExist", err)
		}
	})
}

// Providers publish encryption keys and other algorithms next to the signing
// keys; those are skipped, and the usable keys still work.
func TestJWKSSkipsKeysItCannotUse(t *testing.T) {
	keys := newTestKeys(t)
	v, _ := newJWKSVerifier(t,
		jose.JSONWebKey{Key: &keys.rsa.PublicKey, KeyID: "enc", Use: "enc"},
		jose.JSONWebKey{Key: &keys.rsa.PublicKey, KeyID: "ps", Algorithm: "PS256"},
		jose.JSONWebKey{Key: keys.ed.Public(), KeyID: "ed"},
	)
	tests := []struct {
		name       string
		token      tok
		wantReason string
	}{
		{name: "usable key", token: tok{alg: jose.EdDSA, key: keys.ed, kid: "ed"}},
		{name: "skipped PS256 key", token: tok{alg: jose.PS256, key: keys.rsa, kid: "ps"}, wantReason: "algorithm not allowed"},
		{name: "skipped encryption key", token: tok{alg: jose.EdDSA, key: keys.ed, kid: "enc"}, wantReason: "unknown signing key"},
		// Only one key is usable, so a token without kid may use it.
		{name: "no kid", token: tok{alg: jose.EdDSA, key: keys.ed, noKID: true}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := v.Verify(context.Background(), tt.token.sign(t))
			checkResult(t, p, err, Principal{Subject: "alice@example.test", Roles: []Role{RoleOperator}}, tt.wantReason)
		})
	}
}

// TestJWKSSkipsKeysNotForVerifying: a key whose "key_ops" (RFC 7517
// section 4.3) does not include "verify" is not a signature verification key,
// however its type and "alg" read: it is skipped as a "use": "enc" key is.
// go-jose does not read key_ops, so without this the key verified tokens.
func TestJWKSSkipsKeysNotForVerifying(t *testing.T) {
	keys, other := newTestKeys(t), newTestKeys(t)
	jwk := func(key any, kid string, ops any) map[string]any {
		b := must(json.Marshal(jose.JSONWebKey{Key: key, KeyID: kid}))
		var m map[string]any
		must0(t, json.Unmarshal(b, &m))
		if ops != nil {
			m["key_ops"] = ops
		}
		return m
	}
	write := func(t *testing.T, ks ...map[string]any) string {
		path := filepath.Join(t.TempDir(), "jwks.json")
		must0(t, os.WriteFile(path, must(json.Marshal(map[string]any{"keys": ks})), 0o644))
		return path
	}
	path := write(t,
		jwk(keys.ed.Public(), "encrypt", []string{"encrypt", "wrapKey"}),
		jwk(&keys.ec.PublicKey, "sign-only", []string{"sign"}),
		jwk(other.ed.Public(), "verify", []string{"verify"}),
		jwk(&other.ec.PublicKey, "sign-verify", []string{"sign", "verify"}),
	)
	v, err := NewVerifier(Config{Issuer: testIssuer, Audience: testAudience, JWKSFile: path, Now: fixedNow})
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name       string
		token      tok
		wantReason string
	}{
		{name: "key_ops encrypt", token: tok{alg: jose.EdDSA, key: keys.ed, kid: "encrypt"}, wantReason: "unknown signing key"},
		{name: "key_ops sign only", token: tok{alg: jose.ES256, key: keys.ec, kid: "sign-only"}, wantReason: "unknown signing key"},
		{name: "key_ops verify", token: tok{alg: jose.EdDSA, key: other.ed, kid: "verify"}},
		{name: "key_ops sign and verify", token: tok{alg: jose.ES256, key: other.ec, kid: "sign-verify"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := v.Verify(context.Background(), tt.token.sign(t))
			checkResult(t, p, err, Principal{Subject: "alice@example.test", Roles: []Role{RoleOperator}}, tt.wantReason)
		})
	}

	// key_ops that is not an array of strings is a malformed document.
	for name, ops := range map[string]any{"string": "verify", "number array": []int{1}, "null": nil} {
		t.Run("key_ops "+name, func(t *testing.T) {
			k := jwk(other.ed.Public(), "ed", nil)
			k["key_ops"] = ops
			_, err := NewVerifier(Config{Issuer: testIssuer, Audience: testAudience, JWKSFile: write(t, k), Now: fixedNow})
			if err == nil || !strings.Contains(err.Error(), "key_ops") {
				t.Fatalf("NewVerifier = %v, want an error naming key_ops", err)
			}
		})
	}
}

// TestJWKSSkipsKeysItCannotRead: keys of a type go-jose can't read (an
// X25519 encryption key, a post-quantum signing key) are skipped when they
// are plainly not for Lockbox, instead of making the whole document
// unreadable: then an identity provider that adds one would freeze the
// issuer's keys, or leave it without any. A key that says it is for
// Lockbox but can't be read is still an error.
func TestJWKSSkipsKeysItCannotRead(t *testing.T) {
	keys := newTestKeys(t)
	ed := string(must(json.Marshal(jose.JSONWebKey{Key: keys.ed.Public(), KeyID: "ed", Use: "sig"})))
	write := func(t *testing.T, others ...string) string {
		path := filepath.Join(t.TempDir(), "jwks.json")
		must0(t, os.WriteFile(path, []byte(`{"keys":[`+strings.Join(append([]string{ed}, others...), ",")+`]}`), 0o644))
		return path
	}
	x25519 := `{"kty":"OKP","crv":"X25519","kid":"enc","use":"enc","x":"hSDwCYkwp1R0i33ctD73Wg2_Og0mOBr066SpjqqbTmo"}`
	mldsa := `{"kty":"AKP","alg":"ML-DSA-44","kid":"pq","use":"sig","pub":"AAAA"}`
	unknown := `{"kty":"XYZ","kid":"future"}`
	v, err := NewVerifier(Config{Issuer: testIssuer, Audience: testAudience, JWKSFile: write(t, x25519, mldsa, unknown), Now: fixedNow})
	if err != nil {
		t.Fatal(err)
	}
	operator := Principal{Subject: "alice@example.test", Roles: []Role{RoleOperator}}
	p, err := v.Verify(context.Background(), tok{alg: jose.EdDSA, key: keys.ed, kid: "ed"}.sign(t))
	checkResult(t, p, err, operator, "")
	p, err = v.Verify(context.Background(), tok{alg: jose.EdDSA, key: keys.ed, kid: "enc"}.sign(t))
	checkResult(t, p, err, operator, "unknown signing key")

	for name, key := range map[string]string{
		// The x of an Ed25519 key is 32 bytes.
		"Ed25519 key of the wrong size": `{"kty":"OKP","crv":"Ed25519","kid":"short","x":"AAAA"}`,
		"P-256 key off its curve":       `{"kty":"EC","crv":"P-256","kid":"off","use":"sig","x":"AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE","y":"AQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQEBAQE"}`,
		"RSA key without a modulus":     `{"kty":"RSA","kid":"rsa","alg":"RS256","e":"AQAB"}`,
	} {
		t.Run(name, func(t *testing.T) {
			_, err := NewVerifier(Config{Issuer: testIssuer, Audience: testAudience, JWKSFile: write(t, key), Now: fixedNow})
			if err == nil || !strings.Contains(err.Error(), "key 1 (kid") {
				t.Fatalf("NewVerifier = %v, want an error naming the key it can't read", err)
			}
		})
	}
}

func TestReload(t *testing.T) {
	oldKeys, newKeys := newTestKeys(t), newTestKeys(t)
	v, path := newJWKSVerifier(t, jose.JSONWebKey{Key: oldKeys.ed.Public(), KeyID: "old"})
	oldTok := tok{alg: jose.EdDSA, key: oldKeys.ed, kid: "old"}.sign(t)
	newTok := tok{alg: jose.EdDSA, key: newKeys.ed, kid: "new"}.sign(t)
	operator := Principal{Subject: "alice@example.test", Roles: []Role{RoleOperator}}

	// Each step changes the file (or not), reloads, and checks which
	// tokens are accepted afterwards. Steps run in order.
	steps := []struct {
		name          string
		file          func()
		wantReloadErr bool
		oldReason     string
		newReason     string
	}{
		{
			name:      "initial keys",
			file:      func() {},
			newReason: "unknown signing key",
		},
		{
			name:      "rotated to the new key",
			file:      func() { writeJWKS(t, path, jose.JSONWebKey{Key: newKeys.ed.Public(), KeyID: "new"}) },
			oldReason: "unknown signing key",
		},
		{
			name:          "garbage keeps the new key",
			file:          func() { must0(t, os.WriteFile(path, []byte(`{"keys": [`), 0o644)) },
			wantReloadErr: true,
			oldReason:     "unknown signing key",
		},
		{
			name:          "private key material keeps the new key",
			file:          func() { writeJWKS(t, path, jose.JSONWebKey{Key: oldKeys.ed, KeyID: "old"}) },
			wantReloadErr: true,
			oldReason:     "unknown signing key",
		},
		{
			name:          "deleted file keeps the new key",
			file:          func() { must0(t, os.Remove(path)) },
			wantReloadErr: true,
			oldReason:     "unknown signing key",
		},
		{
			name: "both keys during an overlap",
			file: func() {
				writeJWKS(t, path,
					jose.JSONWebKey{Key: oldKeys.ed.Public(), KeyID: "old"},
					jose.JSONWebKey{Key: newKeys.ed.Public(), KeyID: "new"})
			},
		},
	}
	for _, s := range steps {
		s.file()
		err := v.Reload()
		if (err != nil) != s.wantReloadErr {
			t.Fatalf("%s: Reload error = %v, want error %v", s.name, err, s.wantReloadErr)
		}
		p, err := v.Verify(context.Background(), oldTok)
		t.Run(s.name+"/old token", func(t *testing.T) { checkResult(t, p, err, operator, s.oldReason) })
		p, err = v.Verify(context.Background(), newTok)
		t.Run(s.name+"/new token", func(t *testing.T) { checkResult(t, p, err, operator, s.newReason) })
	}
}

// Verify and Reload run concurrently in production (requests vs. a file
// watcher); under -race this checks the key swap is safe.
func TestVerifyDuringReload(t *testing.T) {
	keys := newTestKeys(t)
	v, _ := newJWKSVerifier(t, keys.jwks()...)
	token := tok{alg: jose.EdDSA, key: keys.ed, kid: "ed"}.sign(t)

	var wg sync.WaitGroup
	errs := make(chan error, 8*50)
	for range 8 {
		wg.Go(func() {
			for range 50 {
				if _, err := v.Verify(context.Background(), token); err != nil {
					errs <- err
				}
			}
		})
	}
	wg.Go(func() {
		for range 20 {
			if err := v.Reload(); err != nil {
				errs <- err
			}
		}
	})
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// FuzzVerify checks that no input panics and that every refusal is an
// ErrUnauthenticated, so callers can rely on a single errors.Is check.
func FuzzVerify(f *testing.F) {
	keys := newTestKeys(f)
	v, _ := newJWKSVerifier(f, keys.jwks()...)
	f.Add(tok{alg: jose.EdDSA, key: keys.ed, kid: "ed"}.sign(f))
	f.Add(tok{alg: jose.ES256, key: keys.ec, kid: "ec"}.sign(f))
	f.Add(b64(map[string]any{"alg": "none"}) + "." + b64(validClaims()) + ".")
	f.Add("a.b.c")
	f.Add("")
	f.Fuzz(func(t *testing.T, raw string) {
		_, err := v.Verify(context.Background(), raw)
		if err != nil && !errors.Is(err, ErrUnauthenticated) {
			t.Fatalf("error %v does not wrap ErrUnauthenticated", err)
		}
	})
}

// BenchmarkVerify is the full check of a token seen for the first time:
// the cache is off. BenchmarkVerifyCached is the same token seen again.
func BenchmarkVerify(b *testing.B) {
	keys := newTestKeys(b)
	path := writeJWKS(b, filepath.Join(b.TempDir(), "jwks.json"), keys.jwks()...)
	v, err := NewVerifier(Config{Issuer: testIssuer, Audience: testAudience, JWKSFile: path, Now: fixedNow, CacheSize: -1})
	if err != nil {
		b.Fatal(err)
	}
	for _, bm := range []struct {
		name  string
		token string
	}{
		{"EdDSA", tok{alg: jose.EdDSA, key: keys.ed, kid: "ed"}.sign(b)},
		{"RS256", tok{alg: jose.RS256, key: keys.rsa, kid: "rsa"}.sign(b)},
		{"ES256", tok{alg: jose.ES256, key: keys.ec, kid: "ec"}.sign(b)},
	} {
		b.Run(bm.name, func(b *testing.B) {
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := v.Verify(context.Background(), bm.token); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}

func must0(t testing.TB, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

// An Entra ID access token names every group of its user in "groups", up
// to 200 object ids (36 characters each) before it switches to an overage
// claim: well past MaxTokenSize for a user of many groups. The refusal
// says what the limit is and what usually crosses it, so that the 401 an
// engineer reports leads to the app registration, not to Lockbox's code.
func TestVerifyTooLargeNamesLimitAndCause(t *testing.T) {
	keys := newTestKeys(t)
	v, _ := newJWKSVerifier(t, keys.jwks()...)
	groups := make([]string, 200)
	for i := range groups {
		groups[i] = fmt.Sprintf("%08x-0000-4000-8000-000000000000", i)
	}
	raw := tok{alg: jose.EdDSA, key: keys.ed, kid: "ed", claims: func(c map[string]any) { c["groups"] = groups }}.sign(t)
	if len(raw) <= MaxTokenSize {
		t.Fatalf("the token is %d bytes, not over MaxTokenSize", len(raw))
	}
	_, err := v.Verify(context.Background(), raw)
	if !errors.Is(err, ErrUnauthenticated) {
		t.Fatalf("Verify: %v, want ErrUnauthenticated", err)
	}
	msg := err.Error()
	for _, want := range []string{"unauthenticated: token too large", "8 KiB", "8192 bytes", "groups"} {
		if !strings.Contains(msg, want) {
			t.Errorf("refusal %q does not say %q", msg, want)
		}
	}
	if !strings.HasPrefix(msg, "unauthenticated: token too large") {
		t.Errorf("refusal %q does not start with the reason it always gave", msg)
	}
}
