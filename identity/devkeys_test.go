package identity

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

func TestDevKeysRoundTrip(t *testing.T) {
	key, err := GenerateDevKey()
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Join(t.TempDir(), "dev")
	privPath, jwksPath, err := WriteDevKeys(dir, key)
	if err != nil {
		t.Fatal(err)
	}
	if privPath != filepath.Join(dir, DevSigningKeyFile) || jwksPath != filepath.Join(dir, DevJWKSFile) {
		t.Fatalf("paths = %s, %s", privPath, jwksPath)
	}
	st, err := os.Stat(privPath)
	if err != nil {
		t.Fatal(err)
	}
	if mode := st.Mode().Perm(); mode != 0o600 {
		t.Fatalf("private key mode = %o, want 600", mode)
	}

	loaded, err := LoadDevKey(privPath)
	if err != nil {
		t.Fatal(err)
	}
	if !loaded.Equal(key) {
		t.Fatal("LoadDevKey returned a different key")
	}

	var set jose.JSONWebKeySet
	if err := json.Unmarshal(must(os.ReadFile(jwksPath)), &set); err != nil {
		t.Fatal(err)
	}
	if len(set.Keys) != 1 {
		t.Fatalf("jwks has %d keys, want 1", len(set.Keys))
	}
	jwk := set.Keys[0]
	if !jwk.IsPublic() || jwk.Algorithm != "EdDSA" || jwk.Use != "sig" || !regexp.MustCompile(`^[0-9a-f]{16}$`).MatchString(jwk.KeyID) {
		t.Fatalf("jwk = public %v, alg %q, use %q, kid %q", jwk.IsPublic(), jwk.Algorithm, jwk.Use, jwk.KeyID)
	}

	// Writing again over existing files (as a `lockbox dev` restart with a
	// new key would) replaces them and keeps the private key private.
	if err := os.Chmod(privPath, 0o644); err != nil {
		t.Fatal(err)
	}
	key2 := must(GenerateDevKey())
	if _, _, err := WriteDevKeys(dir, key2); err != nil {
		t.Fatal(err)
	}
	if mode := must(os.Stat(privPath)).Mode().Perm(); mode != 0o600 {
		t.Fatalf("rewritten private key mode = %o, want 600", mode)
	}
	if !must(LoadDevKey(privPath)).Equal(key2) {
		t.Fatal("rewrite did not replace the key")
	}
	if entries := must(os.ReadDir(dir)); len(entries) != 2 {
		t.Fatalf("dir holds %d entries, want 2 (no temporary files left)", len(entries))
	}
}

func TestMintVerifies(t *testing.T) {
	key := must(GenerateDevKey())
	_, jwksPath, err := WriteDevKeys(t.TempDir(), key)
	if err != nil {
		t.Fatal(err)
	}
	v, err := NewVerifier(Config{Issuer: testIssuer, Audience: testAudience, JWKSFile: jwksPath, Now: fixedNow})
	if err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name       string
		claims     Claims
		mintedAt   time.Time
		want       Principal
		wantReason string
	}{
		{
			name:     "provider operator",
			claims:   Claims{Subject: "op1", Roles: []Role{RoleOperator}},
			mintedAt: testNow,
			want:     Principal{Subject: "op1", Roles: []Role{RoleOperator}},
		},
		{
			name:     "tenant admin",
			claims:   Claims{Subject: "admin@contoso.example", Roles: []Role{RoleGlobalAdmin}, TenantID: "contoso"},
			mintedAt: testNow,
			want:     Principal{Subject: "admin@contoso.example", Roles: []Role{RoleGlobalAdmin}, TenantID: "contoso"},
		},
		{
			name:     "no roles",
			claims:   Claims{Subject: "nobody"},
			mintedAt: testNow,
			want:     Principal{Subject: "nobody"},
		},
		{
			name:       "default TTL has run out",
			claims:     Claims{Subject: "op1"},
			mintedAt:   testNow.Add(-DefaultDevTokenTTL - DefaultLeeway - time.Second),
			wantReason: "token expired",
		},
		{
			name:       "explicit TTL has run out",
			claims:     Claims{Subject: "op1", TTL: time.Minute},
			mintedAt:   testNow.Add(-time.Minute - DefaultLeeway - time.Second),
			wantReason: "token expired",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw, err := Mint(key, testIssuer, testAudience, tt.claims, tt.mintedAt)
			if err != nil {
				t.Fatal(err)
			}
			p, err := v.Verify(context.Background(), raw)
			checkResult(t, p, err, tt.want, tt.wantReason)
		})
	}
}

func TestMintTokenShape(t *testing.T) {
	key := must(GenerateDevKey())
	decode := func(seg string) map[string]any {
		var m map[string]any
		if err := json.Unmarshal(must(base64.RawURLEncoding.DecodeString(seg)), &m); err != nil {
			t.Fatal(err)
		}
		return m
	}

	tests := []struct {
		name    string
		claims  Claims
		wantTID bool
	}{
		{name: "provider", claims: Claims{Subject: "op1", TTL: 10 * time.Minute}},
		{name: "tenant", claims: Claims{Subject: "u1", TenantID: "contoso", TTL: 10 * time.Minute}, wantTID: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw := must(Mint(key, testIssuer, testAudience, tt.claims, testNow))
			parts := strings.Split(raw, ".")
			if len(parts) != 3 {
				t.Fatalf("token has %d parts", len(parts))
			}
			hdr, c := decode(parts[0]), decode(parts[1])
			if hdr["alg"] != "EdDSA" || hdr["kid"] != devKeyID(key.Public().(ed25519.PublicKey)) {
				t.Fatalf("header = %v", hdr)
			}
			for _, name := range []string{"iss", "aud", "sub", "roles", "iat", "nbf", "exp", "jti"} {
				if _, ok := c[name]; !ok {
					t.Errorf("claim %q missing from %v", name, c)
				}
			}
			if _, ok := c["tid"]; ok != tt.wantTID {
				t.Errorf("tid present = %v, want %v", ok, tt.wantTID)
			}
			if got := c["exp"].(float64) - c["iat"].(float64); got != 600 {
				t.Errorf("exp - iat = %v, want 600", got)
			}
			if roles, ok := c["roles"].([]any); !ok || len(roles) != 0 {
				t.Errorf("roles = %#v, want an empty array", c["roles"])
			}
		})
	}

	// jti makes every token distinct, so two mints at the same instant
	// can still be told apart in audit records.
	first := must(Mint(key, "i", "a", Claims{Subject: "s"}, testNow))
	if second := must(Mint(key, "i", "a", Claims{Subject: "s"}, testNow)); first == second {
		t.Error("two mints produced the same token")
	}
}

func TestMintRejects(t *testing.T) {
	key := must(GenerateDevKey())
	tests := []struct {
		name     string
		key      []byte
		iss, aud string
		claims   Claims
		wantErr  string
	}{
		{name: "short key", key: key[:10], iss: "i", aud: "a", claims: Claims{Subject: "s"}, wantErr: "invalid Ed25519"},
		{name: "no issuer", key: key, aud: "a", claims: Claims{Subject: "s"}, wantErr: "issuer and audience"},
		{name: "no audience", key: key, iss: "i", claims: Claims{Subject: "s"}, wantErr: "issuer and audience"},
		{name: "no subject", key: key, iss: "i", aud: "a", wantErr: "invalid subject"},
		{name: "bad subject", key: key, iss: "i", aud: "a", claims: Claims{Subject: "a b"}, wantErr: "invalid subject"},
		{name: "bad tenant", key: key, iss: "i", aud: "a", claims: Claims{Subject: "s", TenantID: "Contoso"}, wantErr: "invalid tenant id"},
		{name: "unknown role", key: key, iss: "i", aud: "a", claims: Claims{Subject: "s", Roles: []Role{"root"}}, wantErr: "unknown role"},
		{name: "negative TTL", key: key, iss: "i", aud: "a", claims: Claims{Subject: "s", TTL: -time.Second}, wantErr: "negative TTL"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Mint(tt.key, tt.iss, tt.aud, tt.claims, testNow)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("Mint err = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

func TestLoadDevKeyRejects(t *testing.T) {
	ec := must(ecdsa.GenerateKey(elliptic.P256(), rand.Reader))
	tests := []struct {
		name    string
		content []byte
		wantErr string
	}{
		{name: "not PEM", content: []byte("hello"), wantErr: "no PKCS#8 PEM block"},
		{name: "wrong block type", content: pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: must(x509.MarshalECPrivateKey(ec))}), wantErr: "no PKCS#8 PEM block"},
		{name: "not Ed25519", content: pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: must(x509.MarshalPKCS8PrivateKey(ec))}), wantErr: "not an Ed25519 key"},
		{name: "corrupt DER", content: pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: []byte{1, 2, 3}}), wantErr: "identity:"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "key.pem")
			if err := os.WriteFile(path, tt.content, 0o600); err != nil {
				t.Fatal(err)
			}
			k, err := LoadDevKey(path)
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("LoadDevKey = %v, %v; want error containing %q", k, err, tt.wantErr)
			}
		})
	}
}

func TestRoleKnown(t *testing.T) {
	for _, r := range []Role{RoleOperator, RoleSupportManager, RoleGlobalAdmin, RoleApprover, RoleAuditReader} {
		if !r.Known() {
			t.Errorf("%q not known", r)
		}
	}
	for _, r := range []Role{"", "Operator", "admin", "operator "} {
		if r.Known() {
			t.Errorf("%q known", r)
		}
	}
}

func TestValidIdentifiers(t *testing.T) {
	tests := []struct {
		name     string
		in       string
		subject  bool
		tenantID bool
	}{
		{name: "simple", in: "contoso", subject: true, tenantID: true},
		{name: "email", in: "alice@contoso.example", subject: true},
		{name: "plus and underscore", in: "a+b_c", subject: true},
		{name: "uppercase", in: "Alice", subject: true},
		{name: "hyphen inside", in: "contoso-eu", subject: true, tenantID: true},
		{name: "max tenant length", in: strings.Repeat("a", 63), subject: true, tenantID: true},
		{name: "tenant too long", in: strings.Repeat("a", 64), subject: true},
		{name: "max subject length", in: strings.Repeat("a", 128), subject: true},
		{name: "subject too long", in: strings.Repeat("a", 129)},
		{name: "empty", in: ""},
		{name: "leading dot", in: ".alice"},
		{name: "leading hyphen", in: "-contoso"},
		{name: "colon", in: "a:b"},
		{name: "slash", in: "a/b"},
		{name: "space", in: "a b"},
		{name: "trailing newline", in: "alice\n"},
		{name: "non-ASCII", in: "al\u00efce"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ValidSubject(tt.in); got != tt.subject {
				t.Errorf("ValidSubject(%q) = %v, want %v", tt.in, got, tt.subject)
			}
			if got := ValidTenantID(tt.in); got != tt.tenantID {
				t.Errorf("ValidTenantID(%q) = %v, want %v", tt.in, got, tt.tenantID)
			}
		})
	}
}
