package server_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lockbox-oss/lockbox/identity"
)

// TestWarnsOfAudienceThatIsTheAdminCenterClientID: when the API's audience
// is the admin center's client id at the same issuer, that client's ID
// tokens carry the audience the API checks, and one with no nonce or
// at_hash (Entra ID's, refreshed) can't be told from an access token.
// Start-up warns, naming both settings and README's "Access tokens only";
// an audience of its own, another issuer, or at+jwt required gets no
// warning.
func TestWarnsOfAudienceThatIsTheAdminCenterClientID(t *testing.T) {
	const iss = "https://login.example.test/"
	shorthand := func(t *testing.T, env map[string]string) map[string]string {
		secret := filepath.Join(t.TempDir(), "client-secret")
		if err := os.WriteFile(secret, []byte("s3cret"), 0o600); err != nil {
			t.Fatal(err)
		}
		full := map[string]string{
			"LOCKBOX_JWT_ISSUER":              iss,
			"LOCKBOX_JWT_AUDIENCE":            "lockbox",
			"LOCKBOX_OIDC_ISSUER":             iss,
			"LOCKBOX_OIDC_CLIENT_ID":          "lockbox",
			"LOCKBOX_OIDC_CLIENT_SECRET_FILE": secret,
			"LOCKBOX_CONSOLE_URL":             "https://lockbox.example.test",
		}
		for k, v := range env {
			full[k] = v
		}
		return full
	}
	issuersFile := func(t *testing.T, audience string) map[string]string {
		dir := t.TempDir()
		key, err := identity.GenerateDevKey()
		if err != nil {
			t.Fatal(err)
		}
		_, jwks, err := identity.WriteDevKeys(dir, key)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "client-secret"), []byte("s3cret"), 0o600); err != nil {
			t.Fatal(err)
		}
		issuers := filepath.Join(dir, "issuers.yaml")
		if err := os.WriteFile(issuers, []byte(`issuers:
  - name: provider-idp
    issuer: `+iss+`
    audience: `+audience+`
    scope: provider
    jwks_file: `+jwks+`
    console: {client_id: lockbox-console, client_secret_file: client-secret}
`), 0o600); err != nil {
			t.Fatal(err)
		}
		return map[string]string{
			"LOCKBOX_JWT_JWKS_FILE": "",
			"LOCKBOX_ISSUERS_FILE":  issuers,
			"LOCKBOX_CONSOLE_URL":   "https://lockbox.example.test",
		}
	}
	tests := []struct {
		name string
		env  func(t *testing.T) map[string]string
		// want are what the one warning says; none: no warning.
		want []string
	}{
		{"client id is the audience", func(t *testing.T) map[string]string { return shorthand(t, nil) },
			[]string{"LOCKBOX_JWT_AUDIENCE", "LOCKBOX_OIDC_CLIENT_ID", "Access tokens only"}},
		{"an audience of its own", func(t *testing.T) map[string]string {
			return shorthand(t, map[string]string{"LOCKBOX_OIDC_CLIENT_ID": "lockbox-console"})
		}, nil},
		{"another issuer", func(t *testing.T) map[string]string {
			return shorthand(t, map[string]string{"LOCKBOX_JWT_ISSUER": "https://tokens.example.test/"})
		}, nil},
		{"at+jwt required", func(t *testing.T) map[string]string {
			return shorthand(t, map[string]string{"LOCKBOX_JWT_TOKEN_TYPES": "at+jwt"})
		}, nil},
		{"issuers file, client id is the audience", func(t *testing.T) map[string]string { return issuersFile(t, "lockbox-console") },
			[]string{"LOCKBOX_ISSUERS_FILE", "issuer=provider-idp", "audience", "client_id", "Access tokens only"}},
		{"issuers file, an audience of its own", func(t *testing.T) map[string]string { return issuersFile(t, "api://lockbox") }, nil},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			env := tc.env(t)
			env["LOCKBOX_UPSTREAMS"] = "exchange=http://127.0.0.1:1"
			lb := start(t, env)
			var warned []string
			for line := range strings.Lines(lb.logs.String()) {
				if strings.Contains(line, "level=WARN") && strings.Contains(line, "client id") {
					warned = append(warned, line)
				}
			}
			if tc.want == nil {
				if len(warned) != 0 {
					t.Errorf("want no warning; got %q", warned)
				}
				return
			}
			if len(warned) != 1 {
				t.Fatalf("want one warning; got %q\nlogs:\n%s", warned, lb.logs)
			}
			for _, w := range tc.want {
				if !strings.Contains(warned[0], w) {
					t.Errorf("the warning does not say %q: %s", w, warned[0])
				}
			}
		})
	}
}
