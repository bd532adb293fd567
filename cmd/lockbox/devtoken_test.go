package main

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// "lockbox dev token" minted tokens no server call could use, and said
// nothing: a global-admin without --tid is provider staff holding a tenant
// role ("you may not read the settings of tenant contoso"), an operator
// with --tid is a tenant user ("only the provider's operators can file
// lockbox requests", to alice the operator), and a token without --roles
// lists nothing. Its usage line marks --roles as required. Each is refused
// with exit 2 and one line saying what to change; the combinations a
// server accepts still mint.
func TestDevTokenRefusesRolesItsUserCannotHold(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "dev")
	if _, _, err := ensureDevKey(dir); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"LOCKBOX_DEV_DIR": dir}
	for _, tc := range []struct {
		args []string
		want string // on stderr; "" mints
	}{
		{[]string{"--sub", "gina@contoso.example", "--roles", "global-admin"}, "lockbox: dev token: global-admin is a role of a tenant's users: add --tid TENANT, e.g. --tid contoso\n"},
		{[]string{"--sub", "adam@contoso.example", "--roles", "lockbox-approver"}, "lockbox: dev token: lockbox-approver is a role of a tenant's users: add --tid TENANT, e.g. --tid contoso\n"},
		{[]string{"--sub", "alice@provider.example", "--roles", "operator", "--tid", "contoso"}, "lockbox: dev token: operator is a role of the provider's staff, and --tid contoso makes a user of tenant contoso: leave --tid out\n"},
		{[]string{"--sub", "gina@contoso.example", "--roles", "audit-reader,support-manager", "--tid", "contoso"}, "lockbox: dev token: support-manager is a role of the provider's staff, and --tid contoso makes a user of tenant contoso: leave --tid out\n"},
		{[]string{"--sub", "lara@provider.example", "--roles", "lockbox-admin", "--tid", "fabrikam"}, "lockbox: dev token: lockbox-admin is a role of the provider's staff, and --tid fabrikam makes a user of tenant fabrikam: leave --tid out\n"},
		{[]string{"--sub", "bob@provider.example"}, "lockbox: dev token: --roles is required: operator, support-manager, global-admin, lockbox-approver, audit-reader, lockbox-admin\n"},
		{[]string{"--sub", "bob@provider.example", "--roles", " , "}, "lockbox: dev token: --roles is required: operator, support-manager, global-admin, lockbox-approver, audit-reader, lockbox-admin\n"},
		{[]string{"--sub", "gina@contoso.example", "--roles", "global-admin", "--tid", "contoso"}, ""},
		{[]string{"--sub", "alice@provider.example", "--roles", "operator,support-manager"}, ""},
		{[]string{"--sub", "sue@provider.example", "--roles", "audit-reader"}, ""},
		{[]string{"--sub", "ann@contoso.example", "--roles", "audit-reader,lockbox-approver", "--tid", "contoso"}, ""},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			var out, errb bytes.Buffer
			code := run(context.Background(), append([]string{"dev", "token"}, tc.args...), env, &out, &errb)
			if tc.want != "" {
				if code != 2 || errb.String() != tc.want || out.Len() != 0 {
					t.Errorf("exit %d, stdout %q, stderr:\n%s\nwant exit 2, no token, stderr:\n%s", code, out.String(), errb.String(), tc.want)
				}
				return
			}
			if code != 0 || errb.Len() != 0 {
				t.Fatalf("exit %d, stderr:\n%s", code, errb.String())
			}
			parts := strings.Split(strings.TrimSpace(out.String()), ".")
			if len(parts) != 3 {
				t.Fatalf("stdout holds no JWT: %q", out.String())
			}
			payload, err := base64.RawURLEncoding.DecodeString(parts[1])
			if err != nil {
				t.Fatal(err)
			}
			var claims struct {
				Sub   string   `json:"sub"`
				Roles []string `json:"roles"`
				Tid   string   `json:"tid"`
			}
			if err := json.Unmarshal(payload, &claims); err != nil {
				t.Fatal(err)
			}
			flags := map[string]string{}
			for i := 0; i+1 < len(tc.args); i += 2 {
				flags[tc.args[i]] = tc.args[i+1]
			}
			if claims.Sub != flags["--sub"] || claims.Tid != flags["--tid"] || !slices.Equal(claims.Roles, strings.Split(flags["--roles"], ",")) {
				t.Errorf("token claims sub %q roles %q tid %q, want %q %q %q", claims.Sub, claims.Roles, claims.Tid, flags["--sub"], flags["--roles"], flags["--tid"])
			}
		})
	}
}

// TestDevTokenHelpNamesWhatItReads: "lockbox dev token --help" listed its
// flags only, not the variables that decide which key signs the token and
// which issuer and audience it names, so a token a server refused for its
// iss or aud gave no hint. Each variable set here is shown to be read (in
// the token's claims, or the key's directory) and is named by the help.
func TestDevTokenHelpNamesWhatItReads(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "dev")
	if _, _, err := ensureDevKey(dir); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{
		"LOCKBOX_DEV_DIR":      dir,
		"LOCKBOX_JWT_ISSUER":   "https://issuer.contoso.example",
		"LOCKBOX_JWT_AUDIENCE": "api://lockbox-test",
	}
	mint := []string{"dev", "token", "--sub", "alice@provider.example", "--roles", "operator"}
	var out, errb bytes.Buffer
	if code := run(context.Background(), mint, env, &out, &errb); code != 0 {
		t.Fatalf("exit %d: %s", code, errb.String())
	}
	parts := strings.Split(strings.TrimSpace(out.String()), ".")
	if len(parts) != 3 {
		t.Fatalf("stdout holds no JWT: %q", out.String())
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var claims struct {
		Iss string `json:"iss"`
		Aud any    `json:"aud"`
	}
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatal(err)
	}
	if claims.Iss != env["LOCKBOX_JWT_ISSUER"] || !strings.Contains(fmt.Sprint(claims.Aud), env["LOCKBOX_JWT_AUDIENCE"]) {
		t.Errorf("iss %q, aud %v; want %q and %q", claims.Iss, claims.Aud, env["LOCKBOX_JWT_ISSUER"], env["LOCKBOX_JWT_AUDIENCE"])
	}
	out.Reset()
	errb.Reset()
	elsewhere := map[string]string{"LOCKBOX_DEV_DIR": filepath.Join(t.TempDir(), "none")}
	if code := run(context.Background(), mint, elsewhere, &out, &errb); code == 0 || !strings.Contains(errb.String(), "LOCKBOX_DEV_DIR") {
		t.Errorf("with no dev key in LOCKBOX_DEV_DIR: exit %d, stderr %q; want a failure naming LOCKBOX_DEV_DIR", code, errb.String())
	}

	out.Reset()
	errb.Reset()
	if code := run(context.Background(), []string{"dev", "token", "--help"}, nil, &out, &errb); code != 0 {
		t.Fatalf("--help: exit %d: %s", code, errb.String())
	}
	for name := range env {
		if !strings.Contains(out.String(), name) {
			t.Errorf("lockbox dev token --help does not name %s:\n%s", name, out.String())
		}
	}
}

// TestDevTokenRefusesATTLThatIsNoLifetime: "--ttl 0" minted a token valid
// for an hour, said nothing, and "--ttl -1h" was refused as "identity:
// negative TTL", naming no flag. A token for a shell variable left unset
// ("--ttl ${TTL}0s") or a test of an expired token ("--ttl 0") lasted an
// hour. Both are refused in one line naming --ttl, exit 2, no token; a
// positive --ttl is the token's lifetime.
func TestDevTokenRefusesATTLThatIsNoLifetime(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "dev")
	if _, _, err := ensureDevKey(dir); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"LOCKBOX_DEV_DIR": dir}
	mint := []string{"dev", "token", "--sub", "alice@provider.example", "--roles", "operator"}
	for _, tc := range []struct{ ttl, want string }{
		{"0", "lockbox: dev token: --ttl must be a positive duration, such as 1h or 30m, got 0s\n"},
		{"0s", "lockbox: dev token: --ttl must be a positive duration, such as 1h or 30m, got 0s\n"},
		{"-1h", "lockbox: dev token: --ttl must be a positive duration, such as 1h or 30m, got -1h0m0s\n"},
	} {
		var out, errb bytes.Buffer
		code := run(context.Background(), append(slices.Clone(mint), "--ttl", tc.ttl), env, &out, &errb)
		if code != 2 || out.Len() != 0 || errb.String() != tc.want {
			t.Errorf("--ttl %s: exit %d, stdout %q, stderr %q; want exit 2, no token, stderr %q", tc.ttl, code, out.String(), errb.String(), tc.want)
		}
	}

	var out, errb bytes.Buffer
	if code := run(context.Background(), append(slices.Clone(mint), "--ttl", "90m"), env, &out, &errb); code != 0 {
		t.Fatalf("--ttl 90m: exit %d: %s", code, errb.String())
	}
	parts := strings.Split(strings.TrimSpace(out.String()), ".")
	if len(parts) != 3 {
		t.Fatalf("stdout holds no JWT: %q", out.String())
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var claims struct{ Iat, Exp int64 }
	if err := json.Unmarshal(payload, &claims); err != nil {
		t.Fatal(err)
	}
	if got := claims.Exp - claims.Iat; got != 90*60 {
		t.Errorf("--ttl 90m: exp - iat = %ds, want %d", got, 90*60)
	}
}

// TestDevTokenNotesTenantsDevDoesNotServe: a tenant user's token for a
// tenant lockbox dev does not onboard, or for a user outside the tenant's
// domains, is minted all the same (one may have been onboarded since), with
// a note on stderr; it found nothing, silently, before.
func TestDevTokenNotesTenantsDevDoesNotServe(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "dev")
	if _, _, err := ensureDevKey(dir); err != nil {
		t.Fatal(err)
	}
	env := map[string]string{"LOCKBOX_DEV_DIR": dir}
	for _, tc := range []struct {
		name string
		args []string
		note string
	}{
		{"a tenant dev onboards", []string{"--sub", "gina@contoso.example", "--roles", "global-admin", "--tid", "contoso"}, ""},
		{"the provider's staff", []string{"--sub", "alice@provider.example", "--roles", "operator"}, ""},
		{"a domain in another case", []string{"--sub", "Fay@Fabrikam.Example", "--roles", "global-admin", "--tid", "fabrikam"}, ""},
		{"a tenant misspelled", []string{"--sub", "bob@fabrikam.example", "--roles", "global-admin", "--tid", "fabrkam"},
			"lockbox dev token: note: lockbox dev onboards contoso and fabrikam, not fabrkam: the token finds nothing unless fabrkam was onboarded since (lockboxctl tenant onboard)\n"},
		{"a user of another tenant's domain", []string{"--sub", "gina@contoso.example", "--roles", "global-admin", "--tid", "fabrikam"},
			"lockbox dev token: note: gina@contoso.example is not of tenant fabrikam's domains (fabrikam.example): the server will not take it as one of fabrikam's users\n"},
	} {
		var out, errb bytes.Buffer
		code := run(context.Background(), append([]string{"dev", "token"}, tc.args...), env, &out, &errb)
		if code != 0 || strings.Count(out.String(), ".") != 2 || errb.String() != tc.note {
			t.Errorf("%s: exit %d, stdout %q, stderr %q; want a token and the note %q", tc.name, code, out.String(), errb.String(), tc.note)
		}
	}
}
