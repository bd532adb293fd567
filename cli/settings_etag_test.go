package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/lockbox-oss/lockbox/api/client"
	"github.com/lockbox-oss/lockbox/api/wire"
)

// TestTenantSettingsGetShowsTheETag: "tenant settings get" showed no ETag
// in any output, where "tenant show" prints the entry's, so nothing told
// an administrator which revision of the settings they had read. The
// table now has an ETag: line and -o json and -o yaml an "etag" field,
// exactly as the API sent it (quotes included); a server that sends none
// (from before settings had revisions) leaves both out.
func TestTenantSettingsGetShowsTheETag(t *testing.T) {
	if help := run(t, []string{"tenant", "settings", "get", "--help"}, nil, nil); help.code != 0 || !strings.Contains(help.stdout, "--if-match") {
		t.Errorf("tenant settings get --help does not say what the ETag is for: exit %d\n%s", help.code, help.stdout)
	}
	for _, args := range [][]string{{"tenant", "settings", "get", "contoso"}, {"get", "settings", "contoso"}} {
		res := run(t, args, nil, nil)
		if res.code != 0 || !strings.Contains(res.stdout, "ETag:") || !strings.Contains(res.stdout, settingsETag) {
			t.Errorf("%q: exit %d, no ETag: %s line:\n%s%s", args, res.code, settingsETag, res.stdout, res.stderr)
		}
	}
	old := map[string]reply{"GET /v1/tenants/contoso/settings": {200, mustJSON(wire.Settings{LockboxEnabled: true})}}
	if res := run(t, []string{"tenant", "settings", "get", "contoso"}, nil, old); res.code != 0 || strings.Contains(res.stdout, "ETag") {
		t.Errorf("without an ETag from the server: exit %d\n%s", res.code, res.stdout)
	}

	decoders := map[string]func([]byte, any) error{"json": json.Unmarshal, "yaml": yaml.Unmarshal}
	for _, format := range []string{"json", "yaml"} {
		t.Run(format, func(t *testing.T) {
			res := run(t, []string{"tenant", "settings", "get", "contoso", "-o", format}, nil, nil)
			var doc map[string]any
			if err := decoders[format]([]byte(res.stdout), &doc); res.code != 0 || err != nil {
				t.Fatalf("exit %d, %v:\n%s%s", res.code, err, res.stdout, res.stderr)
			}
			if doc["etag"] != settingsETag || doc["lockbox_enabled"] != true {
				t.Errorf("etag %v, lockbox_enabled %v; want %s, true:\n%s", doc["etag"], doc["lockbox_enabled"], settingsETag, res.stdout)
			}
			res = run(t, []string{"tenant", "settings", "get", "contoso", "-o", format}, nil, old)
			doc = nil
			if err := decoders[format]([]byte(res.stdout), &doc); res.code != 0 || err != nil {
				t.Fatalf("without an ETag from the server: exit %d, %v:\n%s", res.code, err, res.stdout)
			}
			if _, ok := doc["etag"]; ok || doc["lockbox_enabled"] != true {
				t.Errorf("without an ETag from the server:\n%s", res.stdout)
			}
		})
	}
}

// TestTenantSettingsSetIfMatch: "tenant settings set" had no --if-match,
// so an administrator who decided on the settings as "settings get"
// showed them could only change them as they were when the command ran.
// With --if-match ETAG, against a real Lockbox, a change saved since that
// ETag was read refuses the command in one line, exit 3 (as "tenant
// offboard --if-match" for a changed entry), and nothing is saved; with
// the current ETag (quoted or not) the change is saved and its output
// carries the new ETag.
func TestTenantSettingsSetIfMatch(t *testing.T) {
	addr, tokens := startLockbox(t, t.Cleanup)
	ctx := context.Background()
	other, err := client.New(addr, tokens["admin"])
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{EnvAddr: addr, EnvToken: tokens["admin"], EnvConfigDir: t.TempDir()}
	ctl := func(args ...string) (int, string, string) {
		var stdout, stderr bytes.Buffer
		code := Run(ctx, args, func(k string) string { return env[k] }, &stdout, &stderr)
		return code, stdout.String(), stderr.String()
	}
	etagOf := func(out string) string {
		t.Helper()
		var doc struct {
			ETag string `json:"etag"`
		}
		if err := json.Unmarshal([]byte(out), &doc); err != nil || doc.ETag == "" {
			t.Fatalf("no etag (%v):\n%s", err, out)
		}
		return doc.ETag
	}
	code, out, errs := ctl("tenant", "settings", "get", "contoso", "-o", "json")
	if code != 0 {
		t.Fatalf("settings get: exit %d: %s", code, errs)
	}
	seen := etagOf(out)
	theirs := wire.Settings{LockboxEnabled: true, NotificationAddresses: []string{"soc@contoso.example"}}
	if _, err := other.PutSettings(ctx, "contoso", theirs); err != nil {
		t.Fatal(err)
	}

	code, out, errs = ctl("tenant", "settings", "set", "contoso", "--lockbox", "off", "--if-match", seen)
	if code != exitRefused || out != "" || strings.Count(errs, "\n") != 1 ||
		!strings.HasPrefix(errs, "lockboxctl: the settings of tenant contoso changed since the ETag "+seen+" was read; nothing was saved") {
		t.Errorf("--if-match an ETag read before a change: exit %d\nstdout: %q\nstderr: %q\nwant exit %d and one line", code, out, errs, exitRefused)
	}
	now, current, err := other.SettingsETag(ctx, "contoso")
	if err != nil {
		t.Fatal(err)
	}
	if !now.LockboxEnabled || len(now.NotificationAddresses) != 1 {
		t.Fatalf("the refused command saved something: %+v", now)
	}

	code, out, errs = ctl("tenant", "settings", "set", "contoso", "--lockbox", "off", "--if-match", strings.Trim(current, `"`), "-o", "json")
	if code != 0 {
		t.Fatalf("--if-match the current ETag %s unquoted: exit %d: %s", current, code, errs)
	}
	after, latest, err := other.SettingsETag(ctx, "contoso")
	if err != nil {
		t.Fatal(err)
	}
	if after.LockboxEnabled || len(after.NotificationAddresses) != 1 {
		t.Errorf("after the change: %+v, want Customer Lockbox off and the other's address kept", after)
	}
	if got := etagOf(out); got != latest || got == current {
		t.Errorf("the output's etag is %s; want the new one, %s (was %s)", got, latest, current)
	}
}

// TestTenantSettingsSetIfMatchSendsNoUnconditionalChange: an empty
// --if-match (an unset shell variable) is refused before anything is
// sent, and a server that sent no ETag for the settings gets no change,
// since it could not check the condition asked for.
func TestTenantSettingsSetIfMatchSendsNoUnconditionalChange(t *testing.T) {
	res := run(t, []string{"tenant", "settings", "set", "contoso", "--lockbox", "off", "--if-match", " "}, nil, nil)
	if res.code != exitUsage || len(res.calls) != 0 || !strings.Contains(res.stderr, "--if-match needs the ETag 'lockboxctl tenant settings get contoso' prints") {
		t.Errorf("an empty --if-match: exit %d, calls %+v\n%s", res.code, res.calls, res.stderr)
	}
	old := map[string]reply{"GET /v1/tenants/contoso/settings": {200, mustJSON(wire.Settings{LockboxEnabled: true})}}
	res = run(t, []string{"tenant", "settings", "set", "contoso", "--lockbox", "off", "--if-match", "3"}, nil, old)
	if res.code != exitError || len(res.calls) != 1 || res.calls[0].Method != "GET" || !strings.Contains(res.stderr, "nothing was saved") {
		t.Errorf("a server without ETags: exit %d, calls %+v\n%s", res.code, res.calls, res.stderr)
	}
	res = run(t, []string{"tenant", "settings", "set", "contoso", "--lockbox", "off", "--if-match", "3"}, nil, nil)
	if res.code != 0 || len(res.calls) != 2 || res.calls[1].IfMatch != settingsETag {
		t.Errorf("--if-match 3: exit %d, calls %+v\n%s", res.code, res.calls, res.stderr)
	}
}
