package identity

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"

	jose "github.com/go-jose/go-jose/v4"
)

const (
	providerIssuer = "https://login.provider.example"
	contosoIssuer  = "https://login.contoso.example/v2"
	fabrikamIssuer = "https://idp.fabrikam.example"
)

// scopedIssuers is a provider issuer and two tenants' issuers, each with its
// own key under kid "k" (the same kid everywhere: which key checks a token
// must come from its issuer, not its kid), and contoso with its own claim
// names and audience.
func scopedIssuers(t *testing.T) (*Verifier, map[string]testKeys) {
	t.Helper()
	keys := map[string]testKeys{providerIssuer: newTestKeys(t), contosoIssuer: newTestKeys(t), fabrikamIssuer: newTestKeys(t)}
	file := func(iss string) string {
		return writeJWKS(t, filepath.Join(t.TempDir(), "jwks.json"), jose.JSONWebKey{Key: keys[iss].ed.Public(), KeyID: "k"})
	}
	v, err := NewVerifier(Config{Now: fixedNow, Issuers: []IssuerConfig{
		{Issuer: providerIssuer, Audience: testAudience, Scope: ProviderScope(), JWKSFile: file(providerIssuer)},
		{Issuer: contosoIssuer, Audience: "api://lockbox", Scope: TenantScope("contoso"), JWKSFile: file(contosoIssuer),
			Claims: ClaimMapping{Subject: "preferred_username", Roles: "groups", Email: "upn"}},
		{Issuer: fabrikamIssuer, Audience: testAudience, Scope: TenantScope("fabrikam"), JWKSFile: file(fabrikamIssuer)},
	}})
	if err != nil {
		t.Fatal(err)
	}
	return v, keys
}

// TestIssuerScope: a token is checked with the keys of the issuer it names
// and mapped by that issuer's scope. A tenant's issuer signs in users of
// that tenant only, whatever tid and roles its tokens claim; provider roles
// come only from the provider's issuer.
func TestIssuerScope(t *testing.T) {
	v, keys := scopedIssuers(t)
	signedBy := func(keyOf, iss string, edit func(map[string]any)) func(testing.TB) string {
		return tok{alg: jose.EdDSA, key: keys[keyOf].ed, kid: "k", claims: func(c map[string]any) {
			c["iss"] = iss
			if iss == contosoIssuer {
				c["aud"] = "api://lockbox"
			}
			edit(c)
		}}.sign
	}
	contosoUser := func(c map[string]any) {
		delete(c, "sub")
		c["preferred_username"] = "gina@contoso.example"
		c["groups"] = []string{"global-admin", "lockbox-approver"}
	}
	tests := []struct {
		name       string
		token      func(testing.TB) string
		want       Principal
		wantReason string
	}{
		{
			name:  "provider staff",
			token: signedBy(providerIssuer, providerIssuer, func(c map[string]any) { c["roles"] = []string{"operator", "support-manager"} }),
			want:  Principal{Subject: "alice@example.test", Roles: []Role{RoleOperator, RoleSupportManager}},
		},
		{
			// The provider's identity provider may well put a directory
			// tenant id in its tokens (Entra ID does): it names no Lockbox
			// tenant, and tenant roles mean nothing for staff.
			name: "provider token with tid and tenant roles",
			token: signedBy(providerIssuer, providerIssuer, func(c map[string]any) {
				c["tid"] = "contoso"
				c["roles"] = []string{"global-admin", "operator", "lockbox-approver", "audit-reader"}
			}),
			want: Principal{Subject: "alice@example.test", Roles: []Role{RoleOperator, RoleAuditReader}},
		},
		{
			name:  "contoso user, with contoso's claim names",
			token: signedBy(contosoIssuer, contosoIssuer, func(c map[string]any) { contosoUser(c); c["upn"] = "gina@contoso.example" }),
			want:  Principal{Subject: "gina@contoso.example", TenantID: "contoso", Roles: []Role{RoleGlobalAdmin, RoleApprover}, Email: "gina@contoso.example"},
		},
		{
			name: "contoso token claiming fabrikam",
			token: signedBy(contosoIssuer, contosoIssuer, func(c map[string]any) {
				contosoUser(c)
				c["tid"] = "fabrikam"
			}),
			want: Principal{Subject: "gina@contoso.example", TenantID: "contoso", Roles: []Role{RoleGlobalAdmin, RoleApprover}},
		},
		{
			name: "contoso token claiming provider roles and no tenant",
			token: signedBy(contosoIssuer, contosoIssuer, func(c map[string]any) {
				contosoUser(c)
				c["groups"] = []string{"operator", "support-manager", "lockbox-admin", "audit-reader"}
				c["tid"] = nil
			}),
			want: Principal{Subject: "gina@contoso.example", TenantID: "contoso", Roles: []Role{RoleAuditReader}},
		},
		{
			// Claim names are the issuer's: contoso's "roles" and "sub"
			// are someone else's claims.
			name: "contoso token with the default claim names only",
			token: signedBy(contosoIssuer, contosoIssuer, func(c map[string]any) {
				c["roles"] = []string{"global-admin"}
			}),
			wantReason: "missing sub",
		},
		{
			name: "contoso token without roles",
			token: signedBy(contosoIssuer, contosoIssuer, func(c map[string]any) {
				contosoUser(c)
				delete(c, "groups")
			}),
			want: Principal{Subject: "gina@contoso.example", TenantID: "contoso"},
		},
		{
			name:  "contoso e-mail not an address",
			token: signedBy(contosoIssuer, contosoIssuer, func(c map[string]any) { contosoUser(c); c["upn"] = "Gina <gina@contoso.example>" }),
			want:  Principal{Subject: "gina@contoso.example", TenantID: "contoso", Roles: []Role{RoleGlobalAdmin, RoleApprover}},
		},
		{
			// A format character shown to whoever reads the address
			// (RIGHT-TO-LEFT OVERRIDE here) can make it look like another.
			name:  "contoso e-mail with a bidi override",
			token: signedBy(contosoIssuer, contosoIssuer, func(c map[string]any) { contosoUser(c); c["upn"] = "gina@\u202eelpmaxe.osotnoc" }),
			want:  Principal{Subject: "gina@contoso.example", TenantID: "contoso", Roles: []Role{RoleGlobalAdmin, RoleApprover}},
		},
		{
			name:  "contoso e-mail with a control character",
			token: signedBy(contosoIssuer, contosoIssuer, func(c map[string]any) { contosoUser(c); c["upn"] = "gina\u0007@contoso.example" }),
			want:  Principal{Subject: "gina@contoso.example", TenantID: "contoso", Roles: []Role{RoleGlobalAdmin, RoleApprover}},
		},
		{
			name:  "contoso e-mail with a non-ASCII letter",
			token: signedBy(contosoIssuer, contosoIssuer, func(c map[string]any) { contosoUser(c); c["upn"] = "g\u00efna@contoso.example" }),
			want:  Principal{Subject: "gina@contoso.example", TenantID: "contoso", Roles: []Role{RoleGlobalAdmin, RoleApprover}, Email: "g\u00efna@contoso.example"},
		},
		{
			name:       "contoso e-mail not a string",
			token:      signedBy(contosoIssuer, contosoIssuer, func(c map[string]any) { contosoUser(c); c["upn"] = []string{"a@b.example"} }),
			wantReason: "malformed claims",
		},

		// Keys are the named issuer's.
		{
			name:       "contoso's key, naming the provider",
			token:      signedBy(contosoIssuer, providerIssuer, func(c map[string]any) { c["roles"] = []string{"operator"} }),
			wantReason: "bad signature",
		},
		{
			name:       "contoso's key, naming fabrikam",
			token:      signedBy(contosoIssuer, fabrikamIssuer, func(c map[string]any) { c["roles"] = []string{"global-admin"} }),
			wantReason: "bad signature",
		},
		{
			name:       "provider's key, naming contoso",
			token:      signedBy(providerIssuer, contosoIssuer, contosoUser),
			wantReason: "bad signature",
		},
		{
			name:       "an issuer nobody configured",
			token:      signedBy(providerIssuer, "https://evil.example", func(map[string]any) {}),
			wantReason: "wrong issuer",
		},
		{
			name:       "issuer differing in case",
			token:      signedBy(providerIssuer, strings.ToUpper(providerIssuer), func(map[string]any) {}),
			wantReason: "wrong issuer",
		},
		{
			name:       "issuer not a string",
			token:      signedBy(providerIssuer, providerIssuer, func(c map[string]any) { c["iss"] = []string{providerIssuer} }),
			wantReason: "malformed claims",
		},

		// Audiences are the issuer's.
		{
			name:       "contoso token for the provider's audience",
			token:      signedBy(contosoIssuer, contosoIssuer, func(c map[string]any) { contosoUser(c); c["aud"] = testAudience }),
			wantReason: "wrong audience",
		},
		{
			name:       "provider token for contoso's audience",
			token:      signedBy(providerIssuer, providerIssuer, func(c map[string]any) { c["aud"] = "api://lockbox" }),
			wantReason: "wrong audience",
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw := tt.token(t)
			// Twice: the second answer comes from the cache when the first
			// was an acceptance.
			for range 2 {
				p, err := v.Verify(context.Background(), raw)
				checkResult(t, p, err, tt.want, tt.wantReason)
			}
		})
	}
}

// TestIssuersSharingKeys: a cloud identity provider signs every directory's
// tokens with the same keys, and each directory is its own issuer. The
// signed "iss" decides the scope, so contoso's users stay contoso's even
// though their tokens verify with the provider's keys.
func TestIssuersSharingKeys(t *testing.T) {
	keys := newTestKeys(t)
	path := writeJWKS(t, filepath.Join(t.TempDir(), "jwks.json"), keys.jwks()...)
	v, err := NewVerifier(Config{Now: fixedNow, Issuers: []IssuerConfig{
		{Issuer: providerIssuer, Audience: testAudience, Scope: ProviderScope(), JWKSFile: path},
		{Issuer: contosoIssuer, Audience: testAudience, Scope: TenantScope("contoso"), JWKSFile: path},
	}})
	if err != nil {
		t.Fatal(err)
	}
	raw := tok{alg: jose.EdDSA, key: keys.ed, kid: "ed", claims: func(c map[string]any) {
		c["iss"] = contosoIssuer
		c["roles"] = []string{"operator", "global-admin"}
	}}.sign(t)
	p, err := v.Verify(context.Background(), raw)
	checkResult(t, p, err, Principal{Subject: "alice@example.test", TenantID: "contoso", Roles: []Role{RoleGlobalAdmin}}, "")
}

// TestSharedScopeIsTheShorthand: the single-issuer configuration keeps
// reading the tenant from tid and every known role, as Lockbox always did.
func TestSharedScopeIsTheShorthand(t *testing.T) {
	keys := newTestKeys(t)
	v, _ := newJWKSVerifier(t, keys.jwks()...)
	if got := v.issuers[testIssuer].cfg.Scope; !got.IsShared() {
		t.Fatalf("the single issuer's scope is %s, want shared", got)
	}
	raw := tok{alg: jose.EdDSA, key: keys.ed, kid: "ed", claims: func(c map[string]any) {
		c["tid"] = "fabrikam"
		c["roles"] = []string{"operator", "global-admin"}
		c["email"] = "alice@fabrikam.example"
	}}.sign(t)
	p, err := v.Verify(context.Background(), raw)
	checkResult(t, p, err, Principal{Subject: "alice@example.test", TenantID: "fabrikam", Roles: []Role{RoleOperator, RoleGlobalAdmin}, Email: "alice@fabrikam.example"}, "")
}

func TestIssuersConfigChecked(t *testing.T) {
	ok := IssuerConfig{Issuer: providerIssuer, Audience: "a", Scope: ProviderScope(), JWKSFile: "f"}
	with := func(edit func(*IssuerConfig)) IssuerConfig { c := ok; edit(&c); return c }
	tests := []struct {
		name    string
		cfg     Config
		wantErr string
	}{
		{"no scope", Config{Issuers: []IssuerConfig{with(func(c *IssuerConfig) { c.Scope = Scope{} })}}, "no scope"},
		{"bad tenant", Config{Issuers: []IssuerConfig{with(func(c *IssuerConfig) { c.Scope = TenantScope("Contoso Ltd") })}}, "not a valid tenant id"},
		{"listed twice", Config{Issuers: []IssuerConfig{ok, with(func(c *IssuerConfig) { c.Scope = TenantScope("contoso") })}}, "listed twice"},
		{"two key sources", Config{Issuers: []IssuerConfig{with(func(c *IssuerConfig) { c.HMACSecretFile = "g" })}}, "exclusive"},
		{"both forms", Config{Issuer: "i", Issuers: []IssuerConfig{ok}}, "not both"},
		{"URL without fetcher", Config{Issuers: []IssuerConfig{with(func(c *IssuerConfig) { c.JWKSFile, c.JWKSURL = "", "https://idp.example/keys" })}}, "no Fetcher"},
		{"plain http URL", Config{Issuers: []IssuerConfig{with(func(c *IssuerConfig) { c.JWKSFile, c.JWKSURL = "", "http://idp.example/keys" })}}, "must be https"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.cfg.CheckAndSetDefaults()
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want one containing %q", err, tt.wantErr)
			}
		})
	}
}

// TestIssuersSharingAnHMACSecret: an HMAC secret is the signing key too,
// held by whoever issues the tokens. Issuers of different scopes that
// verify with one secret (the same file, or two files with the same
// secret) would let each sign as the other, contoso's token service as the
// provider's staff: NewVerifier refuses them, naming both. Issuers of one
// scope may share one, and public keys (TestIssuersSharingKeys) may be
// shared by any: only the identity provider holds their private halves.
func TestIssuersSharingAnHMACSecret(t *testing.T) {
	secret := strings.Repeat("s3cret-", 7)
	write := func(content string) string {
		path := filepath.Join(t.TempDir(), "secret")
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return path
	}
	shared, copied := write(secret+"\n"), write(secret)
	for _, tc := range []struct {
		name    string
		issuers []IssuerConfig
		refused bool
	}{
		{"provider and tenant, one file", []IssuerConfig{
			{Issuer: providerIssuer, Audience: testAudience, Scope: ProviderScope(), HMACSecretFile: shared},
			{Issuer: contosoIssuer, Audience: testAudience, Scope: TenantScope("contoso"), HMACSecretFile: shared},
		}, true},
		{"two tenants, the same secret in two files", []IssuerConfig{
			{Issuer: contosoIssuer, Audience: testAudience, Scope: TenantScope("contoso"), HMACSecretFile: shared},
			{Issuer: fabrikamIssuer, Audience: testAudience, Scope: TenantScope("fabrikam"), HMACSecretFile: copied},
		}, true},
		{"one tenant's two issuers", []IssuerConfig{
			{Issuer: contosoIssuer, Audience: testAudience, Scope: TenantScope("contoso"), HMACSecretFile: shared},
			{Issuer: contosoIssuer + "/other", Audience: testAudience, Scope: TenantScope("contoso"), HMACSecretFile: copied},
		}, false},
		{"secrets of their own", []IssuerConfig{
			{Issuer: providerIssuer, Audience: testAudience, Scope: ProviderScope(), HMACSecretFile: shared},
			{Issuer: contosoIssuer, Audience: testAudience, Scope: TenantScope("contoso"), HMACSecretFile: write(strings.Repeat("other-", 7))},
		}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, err := NewVerifier(Config{Now: fixedNow, Issuers: tc.issuers})
			if !tc.refused {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("issuers of different scopes sharing an HMAC secret were accepted")
			}
			for _, want := range []string{tc.issuers[0].Issuer, tc.issuers[1].Issuer, "HMAC secret"} {
				if !strings.Contains(err.Error(), want) {
					t.Errorf("the error does not name %q: %v", want, err)
				}
			}
			if strings.Contains(err.Error(), "s3cret") {
				t.Errorf("the error shows the secret: %v", err)
			}
		})
	}
}

// TestIssuersSharingAnHMACSecretAfterRotation: the rule of
// TestIssuersSharingAnHMACSecret holds for a secret file rotated after
// start-up (Reload: SIGHUP, the watch, the load an unknown key asks for).
// Rotated to the provider's secret, contoso's file was taken, and contoso's
// token service then held a key that minted provider operators. The file
// is now refused as a broken one is: its previous secret stays in use.
func TestIssuersSharingAnHMACSecretAfterRotation(t *testing.T) {
	providerSecret, contosoSecret := strings.Repeat("provider-secret-", 3), strings.Repeat("contoso-secret-", 3)
	dir := t.TempDir()
	providerFile, contosoFile := filepath.Join(dir, "provider"), filepath.Join(dir, "contoso")
	write := func(path, content string) {
		t.Helper()
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	write(providerFile, providerSecret)
	write(contosoFile, contosoSecret)
	v, err := NewVerifier(Config{Now: fixedNow, Issuers: []IssuerConfig{
		{Issuer: providerIssuer, Audience: testAudience, Scope: ProviderScope(), HMACSecretFile: providerFile},
		{Issuer: contosoIssuer, Audience: testAudience, Scope: TenantScope("contoso"), HMACSecretFile: contosoFile},
	}})
	if err != nil {
		t.Fatal(err)
	}
	contosoToken := func(secret string) string {
		return tok{alg: jose.HS256, key: []byte(secret), noKID: true, claims: func(c map[string]any) {
			c["iss"] = contosoIssuer
			c["sub"] = "mallory@contoso.example"
			c["roles"] = []string{"global-admin"}
		}}.sign(t)
	}
	verifies := func(secret string) bool {
		_, err := v.Verify(context.Background(), contosoToken(secret))
		return err == nil
	}

	write(contosoFile, providerSecret+"\n")
	err = v.Reload()
	if err == nil {
		t.Error("Reload took contoso's secret file rotated to the provider's secret")
	} else {
		for _, want := range []string{providerIssuer, contosoIssuer, "same HMAC secret", contosoFile} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("the error does not name %q: %v", want, err)
			}
		}
		if strings.Contains(err.Error(), "secret-") {
			t.Errorf("the error shows the secret: %v", err)
		}
	}
	if verifies(providerSecret) {
		t.Error("after the rotation contoso's issuer verifies with the provider's secret")
	}
	if !verifies(contosoSecret) {
		t.Error("contoso's previous secret stopped verifying: a refused file keeps the keys loaded before")
	}
	// The provider rotating to contoso's secret is refused the same way.
	write(providerFile, contosoSecret)
	if err := v.Reload(); err == nil || !strings.Contains(err.Error(), "same HMAC secret") {
		t.Errorf("Reload took the provider's file rotated to contoso's secret: %v", err)
	}
	// A secret of its own is taken.
	write(providerFile, providerSecret)
	write(contosoFile, strings.Repeat("contoso-rotated-", 3))
	if err := v.Reload(); err != nil {
		t.Fatalf("Reload of secrets of their own: %v", err)
	}
	if !verifies(strings.Repeat("contoso-rotated-", 3)) || verifies(contosoSecret) {
		t.Error("contoso's rotated secret is not the one it verifies with")
	}
}
