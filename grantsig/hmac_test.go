package grantsig_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/lockbox-oss/lockbox/grantsig"
)

func newSecret(t testing.TB) []byte {
	t.Helper()
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	// Printable, as a secret file written by "openssl rand -base64" is.
	return []byte(base64.StdEncoding.EncodeToString(b))
}

func secretSigner(t testing.TB, secret []byte) *grantsig.Signer {
	t.Helper()
	s, err := grantsig.NewSecretSigner(secret)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func secretSet(t testing.TB, secrets ...[]byte) *grantsig.KeySet {
	t.Helper()
	ks, err := grantsig.NewSecretKeySet(secrets...)
	if err != nil {
		t.Fatal(err)
	}
	return ks
}

// TestSecretSignVerify: an HS256 assertion verifies with the secret it was
// made with, carries the header an upstream expects, and is the standard
// HMAC-SHA256 JWS (golang-jwt checks it).
func TestSecretSignVerify(t *testing.T) {
	secret := newSecret(t)
	s := secretSigner(t, secret)
	if s.Algorithm() != grantsig.AlgHS256 || s.KeyID() != grantsig.SecretKeyID(secret) || s.Public() != nil {
		t.Fatalf("signer: alg %s kid %s public %v", s.Algorithm(), s.KeyID(), s.Public())
	}
	tok, err := s.Sign(callClaims())
	if err != nil {
		t.Fatal(err)
	}
	got, err := grantsig.Verify(secretSet(t, secret), tok, expect(), now)
	if err != nil {
		t.Fatal(err)
	}
	if got != callClaims() {
		t.Fatalf("claims\n got %+v\nwant %+v", got, callClaims())
	}
	seg, _, _ := strings.Cut(tok, ".")
	b, _ := base64.RawURLEncoding.DecodeString(seg)
	var h map[string]string
	if err := json.Unmarshal(b, &h); err != nil || len(h) != 3 || h["alg"] != "HS256" || h["kid"] != s.KeyID() || h["typ"] != grantsig.Type {
		t.Fatalf("header %s: %v", b, err)
	}

	// golang-jwt, pinned to HS256 with the same secret, takes it.
	claims := &upstreamClaims{wantMethod: "GET", wantPath: "/tenants/contoso/mailboxes"}
	opts := []jwt.ParserOption{jwt.WithTimeFunc(func() time.Time { return now.Add(time.Second) }), jwt.WithStrictDecoding()}
	for _, o := range upstreamOptions("HS256", "exchange") {
		opts = append(opts, o)
	}
	if _, err := jwt.ParseWithClaims(tok, claims, func(*jwt.Token) (any, error) { return secret, nil }, opts...); err != nil {
		t.Fatalf("golang-jwt refused the HS256 assertion: %v", err)
	}
	if claims.ID != callClaims().AuditID {
		t.Fatalf("jti as golang-jwt reads it: %q", claims.ID)
	}
}

// TestSecretVerifyRefuses: an HS256 assertion is taken only under the
// upstream's own secret, and a public key never checks a MAC.
func TestSecretVerifyRefuses(t *testing.T) {
	secret, other := newSecret(t), newSecret(t)
	good, err := secretSigner(t, secret).Sign(callClaims())
	if err != nil {
		t.Fatal(err)
	}
	pub, priv, _ := ed25519.GenerateKey(rand.Reader)
	edKid, _ := grantsig.KeyID(pub)
	header := func(alg, kid string) map[string]string {
		return map[string]string{"alg": alg, "kid": kid, "typ": grantsig.Type}
	}
	for name, tc := range map[string]struct {
		keys  *grantsig.KeySet
		token string
	}{
		// Another upstream's secret: it has its own kid, so the set does
		// not know the key.
		"another upstream's secret": {secretSet(t, other), good},
		// The right kid, MAC'd with another secret.
		"wrong MAC": {secretSet(t, secret), forge(t, other, header("HS256", grantsig.SecretKeyID(secret)), callClaims())},
		// Algorithm confusion: the public key (which anyone can read from
		// the JWKS) used as an HMAC secret, under its own kid.
		"public key as a secret": {keySet(t, pub), forge(t, []byte(pub), header("HS256", edKid), callClaims())},
		// And the other way: a signature under the secret's kid.
		"EdDSA under a secret's kid": {secretSet(t, secret), forge(t, priv, header("EdDSA", grantsig.SecretKeyID(secret)), callClaims())},
		"tampered claims":            {secretSet(t, secret), retouch(t, good)},
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := grantsig.Verify(tc.keys, tc.token, expect(), now); !errors.Is(err, grantsig.ErrInvalid) {
				t.Fatalf("err = %v, want ErrInvalid", err)
			}
		})
	}
	// During a change of secret, a set of both takes either.
	both := secretSet(t, other, secret)
	if _, err := grantsig.Verify(both, good, expect(), now); err != nil {
		t.Fatalf("a set of the old and new secrets: %v", err)
	}
}

// retouch changes the claims of a token and keeps its MAC.
func retouch(t *testing.T, tok string) string {
	t.Helper()
	parts := strings.Split(tok, ".")
	b, _ := base64.RawURLEncoding.DecodeString(parts[1])
	b = bytes.Replace(b, []byte("/tenants/contoso/mailboxes"), []byte("/tenants/fabrikam/mailbox"), 1)
	parts[1] = base64.RawURLEncoding.EncodeToString(b)
	return strings.Join(parts, ".")
}

// TestWeakSecretRefused: a short secret, one padded with white space, and
// a key file named where a secret belongs are refused by the signer, the
// key set and the file loader alike.
func TestWeakSecretRefused(t *testing.T) {
	pem := "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEA" + strings.Repeat("A", 40) + "\n-----END PUBLIC KEY-----"
	jwk := `{"kty":"OKP","crv":"Ed25519","x":"` + strings.Repeat("A", 43) + `"}`
	for name, s := range map[string]string{
		"short":           "0123456789abcdef0123456789abcde",
		"padded":          "0123456789abcdef       \t      \n\n  ",
		"all white space": strings.Repeat(" ", 64),
		"a PEM key":       pem,
		"a JWK":           jwk,
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := grantsig.NewSecretSigner([]byte(s)); !errors.Is(err, grantsig.ErrWeakSecret) {
				t.Errorf("NewSecretSigner: %v", err)
			}
			if _, err := grantsig.NewSecretKeySet([]byte(s)); !errors.Is(err, grantsig.ErrWeakSecret) {
				t.Errorf("NewSecretKeySet: %v", err)
			}
			path := filepath.Join(t.TempDir(), "secret")
			if err := os.WriteFile(path, []byte(s), 0o600); err != nil {
				t.Fatal(err)
			}
			if _, err := grantsig.LoadSecret(path); !errors.Is(err, grantsig.ErrWeakSecret) {
				t.Errorf("LoadSecret: %v", err)
			}
		})
	}
}

// TestLoadSecret: the file's bytes are the secret, but for the line ending
// echo and editors add; the proxy and an upstream reading the same file
// with it key alike.
func TestLoadSecret(t *testing.T) {
	secret := newSecret(t)
	for name, content := range map[string][]byte{
		"as is":       secret,
		"echo":        append(bytes.Clone(secret), '\n'),
		"CRLF, twice": append(bytes.Clone(secret), "\r\n\r\n"...),
	} {
		t.Run(name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "secret")
			if err := os.WriteFile(path, content, 0o600); err != nil {
				t.Fatal(err)
			}
			got, err := grantsig.LoadSecret(path)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(got, secret) {
				t.Fatalf("secret %q, want %q", got, secret)
			}
		})
	}
	// A leading space is part of the secret: only the line ending goes.
	path := filepath.Join(t.TempDir(), "secret")
	if err := os.WriteFile(path, append([]byte(" "), secret...), 0o600); err != nil {
		t.Fatal(err)
	}
	if got, err := grantsig.LoadSecret(path); err != nil || len(got) != len(secret)+1 {
		t.Fatalf("secret %q, %v: want the leading space kept", got, err)
	}
	big := filepath.Join(t.TempDir(), "big")
	if err := os.WriteFile(big, bytes.Repeat([]byte("a"), 64<<10+1), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := grantsig.LoadSecret(big); err == nil {
		t.Fatal("a 64 KiB file was read as a secret")
	}
}

// TestSecretNeverSeals: a seal is checked by tenants, so it is never keyed
// with a secret: the signer refuses to make one, and VerifySeal refuses one
// made by hand, even under a secret the set holds.
func TestSecretNeverSeals(t *testing.T) {
	secret := newSecret(t)
	sc := grantsig.SealClaims{Issuer: "lockbox", Tenant: "contoso", Through: "1-0", Hash: "ab", IssuedAt: now.Unix()}
	if _, err := secretSigner(t, secret).SignSeal(sc); err == nil {
		t.Fatal("an HS256 signer made a seal")
	}
	tok := forge(t, secret, map[string]string{"alg": "HS256", "kid": grantsig.SecretKeyID(secret), "typ": grantsig.SealType}, sc)
	if _, _, err := grantsig.VerifySeal(secretSet(t, secret), tok, "lockbox", "contoso"); !errors.Is(err, grantsig.ErrInvalid) {
		t.Fatalf("VerifySeal took an HS256 seal: %v", err)
	}
}

// TestSecretSignerConcurrent: the signer's pooled HMAC states are never
// shared by two calls at once (run with -race), and each assertion checks.
func TestSecretSignerConcurrent(t *testing.T) {
	secret := newSecret(t)
	s, ks := secretSigner(t, secret), secretSet(t, secret)
	tpl, err := s.Template(grantsig.GrantClaims{Issuer: "lockbox", Subject: "Microsoft Operator", Audience: "exchange",
		Tenant: "contoso", Service: "exchange", RequestID: "r1", NotAfter: now.Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for i := range 8 {
		wg.Go(func() {
			for j := range 200 {
				path := "/tenants/contoso/mailboxes/" + strings.Repeat("x", i+j%7)
				b, err := tpl.Append(nil, grantsig.CallClaims{AuditID: "a", Activity: "Get-Mailbox", Method: "GET", Path: path,
					IssuedAt: now, ExpiresAt: now.Add(30 * time.Second)})
				if err == nil {
					_, err = grantsig.Verify(ks, string(b), grantsig.Expect{Issuer: "lockbox", Audience: "exchange", Method: "GET", Path: path}, now)
				}
				if err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

// TestJoinKeySets: an upstream moving from the published keys to a secret
// takes both kinds of assertion with one joined set, each under its own
// key and algorithm; a seal still verifies only with a public key.
func TestJoinKeySets(t *testing.T) {
	secret := newSecret(t)
	_, priv, _ := ed25519.GenerateKey(rand.Reader)
	public := keySet(t, priv.Public())
	joined, err := grantsig.JoinKeySets(public, secretSet(t, secret))
	if err != nil {
		t.Fatal(err)
	}
	for name, s := range map[string]*grantsig.Signer{"EdDSA": newSigner(t, priv), "HS256": secretSigner(t, secret)} {
		tok, err := s.Sign(callClaims())
		if err != nil {
			t.Fatal(err)
		}
		if _, err := grantsig.Verify(joined, tok, expect(), now); err != nil {
			t.Errorf("%s assertion under the joined set: %v", name, err)
		}
	}
	// Algorithm confusion is still refused: the public key as a MAC key.
	edKid, _ := grantsig.KeyID(priv.Public())
	confused := forge(t, []byte(priv.Public().(ed25519.PublicKey)), map[string]string{"alg": "HS256", "kid": edKid, "typ": grantsig.Type}, callClaims())
	if _, err := grantsig.Verify(joined, confused, expect(), now); !errors.Is(err, grantsig.ErrInvalid) {
		t.Errorf("an HS256 token under the public key's kid: %v", err)
	}
	sc := grantsig.SealClaims{Issuer: "lockbox", Tenant: "contoso", Through: "1-0", Hash: "ab", IssuedAt: now.Unix()}
	seal, err := newSigner(t, priv).SignSeal(sc)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := grantsig.VerifySeal(joined, seal, "lockbox", "contoso"); err != nil {
		t.Errorf("a seal under the joined set: %v", err)
	}
	macSeal := forge(t, secret, map[string]string{"alg": "HS256", "kid": grantsig.SecretKeyID(secret), "typ": grantsig.SealType}, sc)
	if _, _, err := grantsig.VerifySeal(joined, macSeal, "lockbox", "contoso"); !errors.Is(err, grantsig.ErrInvalid) {
		t.Errorf("an HS256 seal under the joined set: %v", err)
	}
	if _, err := grantsig.JoinKeySets(public, public); err == nil {
		t.Error("a kid in two sets was joined")
	}
	if _, err := grantsig.JoinKeySets(); err == nil {
		t.Error("no sets were joined")
	}
}
