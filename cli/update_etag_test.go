package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/lockbox-oss/lockbox/api/client"
)

// TestTenantUpdatePrintsTheNewETag: "tenant update" printed the entry as
// saved without its ETag, where "tenant settings set" prints the
// settings' new one, so a script that changed an entry and then meant to
// offboard it as it had left it ("tenant offboard --if-match") had to read
// it again, and could take in a change someone saved in between. Against a
// real Lockbox, both ways of updating (replacing a field, and adding to a
// list, which is sent with If-Match) now print the ETag the server
// answered, in the table and as "etag" in -o json, and that ETag
// offboards the entry.
func TestTenantUpdatePrintsTheNewETag(t *testing.T) {
	addr, tokens := startLockbox(t, t.Cleanup)
	ctx := context.Background()
	other, err := client.New(addr, tokens["lockbox-admin"])
	if err != nil {
		t.Fatal(err)
	}
	env := map[string]string{EnvAddr: addr, EnvToken: tokens["lockbox-admin"], EnvConfigDir: t.TempDir()}
	ctl := func(args ...string) (int, string, string) {
		var stdout, stderr bytes.Buffer
		code := Run(ctx, args, func(k string) string { return env[k] }, &stdout, &stderr)
		return code, stdout.String(), stderr.String()
	}
	current := func() string {
		t.Helper()
		_, etag, err := other.TenantETag(ctx, "contoso")
		if err != nil || etag == "" {
			t.Fatalf("ETag %q, %v", etag, err)
		}
		return etag
	}

	before := current()
	code, out, errs := ctl("tenant", "update", "contoso", "--name", "Contoso Group", "-o", "json")
	if code != 0 {
		t.Fatalf("tenant update --name: exit %d: %s", code, errs)
	}
	var doc struct {
		ETag        string `json:"etag"`
		DisplayName string `json:"display_name"`
	}
	if err := json.Unmarshal([]byte(out), &doc); err != nil {
		t.Fatalf("%v:\n%s", err, out)
	}
	if now := current(); doc.ETag != now || now == before || doc.DisplayName != "Contoso Group" {
		t.Errorf("tenant update --name -o json: etag %q, display_name %q; want the new ETag %s (was %s) and Contoso Group:\n%s",
			doc.ETag, doc.DisplayName, now, before, out)
	}

	code, out, errs = ctl("tenant", "update", "contoso", "--add-domain", "contoso.org")
	if code != 0 {
		t.Fatalf("tenant update --add-domain: exit %d: %s", code, errs)
	}
	now := current()
	var printed string
	for line := range strings.SplitSeq(out, "\n") {
		if f := strings.Fields(line); len(f) == 2 && f[0] == "ETag:" {
			printed = f[1]
		}
	}
	if printed != now || now == doc.ETag {
		t.Errorf("tenant update --add-domain: the table's ETag is %q, want the new one, %s:\n%s", printed, now, out)
	}

	if code, _, errs := ctl("tenant", "offboard", "contoso", "--reason", "contract ended", "--if-match", printed); code != 0 {
		t.Errorf("tenant offboard --if-match the ETag update printed: exit %d: %s", code, errs)
	}
}

// TestTenantUpdateWithoutETags: a server from before registry entries had
// revisions sends no ETag: the output has no ETag line and no etag field.
func TestTenantUpdateWithoutETags(t *testing.T) {
	res := run(t, []string{"tenant", "update", "contoso", "--name", "Contoso Group"}, nil, nil)
	if res.code != 0 || strings.Contains(res.stdout, "ETag") || !strings.Contains(res.stdout, "Contoso Group") {
		t.Errorf("exit %d:\n%s%s", res.code, res.stdout, res.stderr)
	}
	res = run(t, []string{"tenant", "update", "contoso", "--name", "Contoso Group", "-o", "json"}, nil, nil)
	if res.code != 0 || strings.Contains(res.stdout, "etag") {
		t.Errorf("-o json: exit %d:\n%s%s", res.code, res.stdout, res.stderr)
	}
}
