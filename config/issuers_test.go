package config

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
)

func TestLoadIssuers(t *testing.T) {
	dir := t.TempDir()
	for name, content := range map[string]string{"contoso-jwks.json": `{"keys":[]}`, "secret": "s3cret", "fab-jwks.json": `{"keys":[]}`} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(dir, "issuers.yaml")
	doc := `
issuers:
  - name: provider
    issuer: https://login.provider.example
    audience: lockbox
    scope: provider
    jwks_url: https://login.provider.example/keys
    console:
      client_id: lockbox-console
      client_secret_file: secret
      scopes: [profile, email]
  - issuer: https://login.contoso.example/v2
    audience: api://lockbox
    scope: {tenant: contoso}
    jwks_file: contoso-jwks.json
    claims: {subject: preferred_username, roles: groups, email: upn, name: display_name}
    token_types: [at+jwt]
  - issuer: https://idp.fabrikam.example
    audience: lockbox
    scope:
      tenant: fabrikam
    jwks_file: ` + filepath.Join(dir, "fab-jwks.json") + `
    console: {client_id: lockbox, client_secret_file: secret}
`
	if err := os.WriteFile(path, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	got, err := LoadIssuers(path)
	if err != nil {
		t.Fatal(err)
	}
	secret := filepath.Join(dir, "secret")
	want := []Issuer{
		{Name: "provider", Issuer: "https://login.provider.example", Audience: "lockbox", Scope: IssuerScope{Provider: true},
			JWKSURL: "https://login.provider.example/keys",
			Console: &IssuerConsole{ClientID: "lockbox-console", ClientSecretFile: secret, Scopes: []string{"profile", "email"}}},
		{Name: "https://login.contoso.example/v2", Issuer: "https://login.contoso.example/v2", Audience: "api://lockbox", Scope: IssuerScope{Tenant: "contoso"},
			JWKSFile: filepath.Join(dir, "contoso-jwks.json"),
			Claims:   IssuerClaims{Subject: "preferred_username", Roles: "groups", Email: "upn", Name: "display_name"}, TokenTypes: []string{"at+jwt"}},
		{Name: "https://idp.fabrikam.example", Issuer: "https://idp.fabrikam.example", Audience: "lockbox", Scope: IssuerScope{Tenant: "fabrikam"},
			JWKSFile: filepath.Join(dir, "fab-jwks.json"), Console: &IssuerConsole{ClientID: "lockbox", ClientSecretFile: secret}},
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("LoadIssuers:\n got %+v\nwant %+v", got, want)
	}
}

func TestLoadIssuersRefuses(t *testing.T) {
	dir := t.TempDir()
	jwks := filepath.Join(dir, "jwks.json")
	if err := os.WriteFile(jwks, []byte(`{"keys":[]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	entry := func(extra string) string {
		return "  - issuer: https://idp.example\n    audience: lockbox\n    jwks_file: " + jwks + "\n" + extra
	}
	tests := []struct{ name, doc, want string }{
		{"empty", "", "is empty"},
		{"comments only", "# issuers: to come\n", "is empty"},
		// The second document was dropped unread, its misspelling too.
		{"two documents", "issuers:\n" + entry("    scope: provider\n") + "---\nissuers:\n" +
			strings.Replace(entry("    scope: {tenant: contoso}\n    audiance: x\n"), "idp.example", "idp2.example", 1), "holds more than one YAML document"},
		{"an empty second document", "issuers:\n" + entry("    scope: provider\n") + "---\n# more to come\n---\n", "holds more than one YAML document"},
		{"no issuers", "issuers: []\n", "lists no issuers"},
		{"misspelt field", "issuers:\n" + entry("    scope: provider\n    audiance: x\n"), "field audiance not found"},
		{"no scope", "issuers:\n" + entry(""), "scope is required"},
		{"shared scope", "issuers:\n" + entry("    scope: shared\n"), "scope must be provider or {tenant: <id>}"},
		{"scope list", "issuers:\n" + entry("    scope: [provider]\n"), "scope must be"},
		{"tenant scope with more", "issuers:\n" + entry("    scope: {tenant: contoso, provider: true}\n"), "scope must be"},
		{"bad tenant", "issuers:\n" + entry("    scope: {tenant: Contoso}\n"), `"Contoso" is not a tenant id`},
		{"no key source", "issuers:\n  - issuer: https://idp.example\n    audience: lockbox\n    scope: provider\n", "exactly one of jwks_url"},
		{"two key sources", "issuers:\n" + entry("    scope: provider\n    jwks_url: https://idp.example/keys\n"), "exactly one of jwks_url"},
		{"missing key file", "issuers:\n  - issuer: https://idp.example\n    audience: lockbox\n    scope: provider\n    jwks_file: nope.json\n", "no such file"},
		{"jwks url in the clear", "issuers:\n  - issuer: https://idp.example\n    audience: lockbox\n    scope: provider\n    jwks_url: http://idp.example/keys\n", "must be https"},
		{"console issuer in the clear", "issuers:\n" + strings.Replace(entry("    scope: {tenant: contoso}\n    console: {client_id: x, client_secret_file: "+jwks+"}\n"),
			"https://idp.example", "http://idp.example", 1), `console: the issuer "http://idp.example" must be https`},
		{"empty token type", "issuers:\n" + entry("    scope: provider\n    token_types: [at+jwt, '']\n"), `token_types: "" is not a token type`},
		{"token types as one string", "issuers:\n" + entry("    scope: provider\n    token_types: at+jwt\n"), "cannot unmarshal"},
		{"no audience", "issuers:\n  - issuer: https://idp.example\n    scope: provider\n    jwks_file: " + jwks + "\n", "audience is required"},
		{"listed twice", "issuers:\n" + entry("    scope: provider\n") + entry("    scope: {tenant: contoso}\n"), "listed twice"},
		{"console without secret", "issuers:\n" + entry("    scope: provider\n    console: {client_id: x}\n"), "client_id and client_secret_file are required"},
		{"two staff consoles", "issuers:\n" + entry("    scope: provider\n    console: {client_id: x, client_secret_file: "+jwks+"}\n") +
			strings.Replace(entry("    scope: provider\n    console: {client_id: x, client_secret_file: "+jwks+"}\n"), "idp.example", "idp2.example", 1),
			"a second console sign-in for the provider's staff"},
		{"two consoles for contoso", "issuers:\n" + entry("    scope: {tenant: contoso}\n    console: {client_id: x, client_secret_file: "+jwks+"}\n") +
			strings.Replace(entry("    scope: {tenant: contoso}\n    console: {client_id: x, client_secret_file: "+jwks+"}\n"), "idp.example", "idp2.example", 1),
			"a second console sign-in for tenant contoso"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "issuers.yaml")
			if err := os.WriteFile(path, []byte(tt.doc), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := LoadIssuers(path)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("LoadIssuers = %v, want an error containing %q", err, tt.want)
			}
		})
	}
}

// TestIssuersFileErrorsHideURLCredentials: an entry's errors name it by
// its issuer URL when it has no name of its own, shown as logs show URLs:
// without user name or password, its query's values redacted. Start-up
// errors go to logs too, and an issuer's URL may carry a credential in
// either (as the JWKS URLs' and the console issuers' errors already hide).
func TestIssuersFileErrorsHideURLCredentials(t *testing.T) {
	dir := t.TempDir()
	jwks := filepath.Join(dir, "jwks.json")
	if err := os.WriteFile(jwks, []byte(`{"keys":[]}`), 0o600); err != nil {
		t.Fatal(err)
	}
	const withPassword, withQuery = "https://lockbox:pw-s3cr3t@idp.example/", "https://idp.example/?key=s3cr3t"
	entry := func(issuer, extra string) string {
		return "  - issuer: " + issuer + "\n    jwks_file: " + jwks + "\n" + extra
	}
	for _, tc := range []struct{ name, doc, shown string }{
		{"password, no audience", "issuers:\n" + entry(withPassword, "    scope: provider\n"), "(https://idp.example/)"},
		{"query, no audience", "issuers:\n" + entry(withQuery, "    scope: provider\n"), "(https://idp.example/?key=REDACTED)"},
		{"query, listed twice", "issuers:\n" + entry(withQuery, "    audience: lockbox\n    scope: provider\n") +
			entry(withQuery, "    audience: lockbox\n    scope: {tenant: contoso}\n"), "issuer 2 (https://idp.example/?key=REDACTED): listed twice"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "issuers.yaml")
			if err := os.WriteFile(path, []byte(tc.doc), 0o600); err != nil {
				t.Fatal(err)
			}
			_, err := LoadIssuers(path)
			if err == nil {
				t.Fatal("LoadIssuers accepted the file")
			}
			if msg := err.Error(); strings.Contains(msg, "s3cr3t") || !strings.Contains(msg, tc.shown) {
				t.Errorf("the error does not name the issuer as %q, or shows its credential: %s", tc.shown, msg)
			}
		})
	}
	// A name given is shown as given, credentials or not: it is the
	// operator's label.
	path := filepath.Join(dir, "named.yaml")
	if err := os.WriteFile(path, []byte("issuers:\n  - name: corp\n    issuer: "+withQuery+"\n    jwks_file: "+jwks+"\n    scope: provider\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := LoadIssuers(path); err == nil || !strings.Contains(err.Error(), "issuer 1 (corp): audience is required") {
		t.Errorf("a named issuer's error: %v", err)
	}
}

// TestOIDCIssuerWithQueryRefused: an OpenID Connect issuer is a URL with
// no query (OpenID Connect Discovery 1.0 section 2, RFC 8414 section 2):
// its discovery document is read from the issuer plus
// /.well-known/openid-configuration, which after a query is no path, and
// the document's issuer must equal it. The admin center started with one
// and failed every sign-in. LOCKBOX_OIDC_ISSUER and an issuers file's
// console issuers are refused at start-up, naming the setting; an
// issuer without a console section is only the API's "iss", which may be
// anything.
func TestOIDCIssuerWithQueryRefused(t *testing.T) {
	secret := writeFile(t, "secret", "s3cret\n")
	for _, iss := range []string{"https://idp.example.com/?tenant=contoso", "https://idp.example.com/?"} {
		_, err := Load(map[string]string{"LOCKBOX_OIDC_ISSUER": iss, "LOCKBOX_OIDC_CLIENT_ID": "lockbox",
			"LOCKBOX_OIDC_CLIENT_SECRET_FILE": secret, "LOCKBOX_CONSOLE_URL": "https://lockbox.example.com"})
		var ve *VarError
		if err == nil || !errors.As(err, &ve) || ve.Var != "LOCKBOX_OIDC_ISSUER" || !strings.Contains(err.Error(), "query") {
			t.Errorf("LOCKBOX_OIDC_ISSUER=%s: got %v, want a LOCKBOX_OIDC_ISSUER error about its query", iss, err)
		}
		if err != nil && strings.Contains(err.Error(), "contoso") {
			t.Errorf("the error shows the query's value: %v", err)
		}
	}
	jwks := writeFile(t, "jwks.json", `{"keys":[]}`)
	entry := "issuers:\n  - issuer: https://idp.example.com/?tenant=contoso\n    audience: lockbox\n    scope: provider\n    jwks_file: " + jwks + "\n"
	path := writeFile(t, "issuers.yaml", entry+"    console: {client_id: x, client_secret_file: "+secret+"}\n")
	if _, err := LoadIssuers(path); err == nil || !strings.Contains(err.Error(), "query") {
		t.Errorf("a console issuer with a query: %v", err)
	}
	if _, err := LoadIssuers(writeFile(t, "api.yaml", entry)); err != nil {
		t.Errorf("an API issuer with a query: %v", err)
	}
}
