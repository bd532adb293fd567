package cli

import (
	"encoding/json"
	"regexp"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/lockbox-oss/lockbox/api/wire"
)

// TestDescribeTenantShowsTheETags: "describe tenant" showed the tenant's
// settings and registry entry without the ETag of either, where "tenant
// settings get" and "tenant show" print them, so an administrator who
// read the settings there had nothing to give "tenant settings set
// --if-match" (nor "tenant offboard --if-match" the entry's) and had to
// read them again elsewhere, perhaps after a change. The table now has
// the entry's ETag: line and a Settings ETag: line, and -o json and
// -o yaml the entry's "etag" and the settings' "settings.etag", as the
// API sent them (quotes included); a server that sends none leaves them
// out, as do settings the caller may not read.
func TestDescribeTenantShowsTheETags(t *testing.T) {
	res := run(t, []string{"describe", "tenant", "contoso"}, nil, nil)
	if res.code != 0 ||
		!regexp.MustCompile(`(?m)^ETag: +`+regexp.QuoteMeta(tenantETag)+`$`).MatchString(res.stdout) ||
		!regexp.MustCompile(`(?m)^Settings ETag: +`+regexp.QuoteMeta(settingsETag)+`$`).MatchString(res.stdout) {
		t.Errorf("exit %d, want the lines ETag: %s and Settings ETag: %s:\n%s%s", res.code, tenantETag, settingsETag, res.stdout, res.stderr)
	}

	decoders := map[string]func([]byte, any) error{"json": json.Unmarshal, "yaml": yaml.Unmarshal}
	for _, format := range []string{"json", "yaml"} {
		res := run(t, []string{"describe", "tenant", "contoso", "-o", format}, nil, nil)
		var doc struct {
			ID       string `json:"id" yaml:"id"`
			ETag     string `json:"etag" yaml:"etag"`
			Settings struct {
				LockboxEnabled bool   `json:"lockbox_enabled" yaml:"lockbox_enabled"`
				ETag           string `json:"etag" yaml:"etag"`
			} `json:"settings" yaml:"settings"`
		}
		if err := decoders[format]([]byte(res.stdout), &doc); res.code != 0 || err != nil {
			t.Fatalf("-o %s: exit %d, %v:\n%s%s", format, res.code, err, res.stdout, res.stderr)
		}
		if doc.ID != "contoso" || doc.ETag != tenantETag || doc.Settings.ETag != settingsETag || !doc.Settings.LockboxEnabled {
			t.Errorf("-o %s: %+v, want the entry's etag %s and the settings' %s:\n%s", format, doc, tenantETag, settingsETag, res.stdout)
		}
	}

	// A server from before revisions sends no ETag: none is shown.
	old := map[string]reply{
		"GET /v1/tenants/contoso":          {200, mustJSON(sampleTenant())},
		"GET /v1/tenants/contoso/settings": {200, mustJSON(wire.Settings{LockboxEnabled: true})},
	}
	res = run(t, []string{"describe", "tenant", "contoso"}, nil, old)
	if res.code != 0 || strings.Contains(res.stdout, "ETag") || !strings.Contains(res.stdout, "Customer Lockbox:") {
		t.Errorf("without ETags from the server: exit %d:\n%s%s", res.code, res.stdout, res.stderr)
	}
	res = run(t, []string{"describe", "tenant", "contoso", "-o", "json"}, nil, old)
	if res.code != 0 || strings.Contains(res.stdout, "etag") {
		t.Errorf("without ETags from the server, -o json: exit %d:\n%s%s", res.code, res.stdout, res.stderr)
	}

	// Settings the caller may not read have no ETag to show.
	forbidden := map[string]reply{"GET /v1/tenants/contoso/settings": {403, `{"error":{"code":"forbidden","message":"not yours"}}`}}
	res = run(t, []string{"describe", "tenant", "contoso"}, nil, forbidden)
	if res.code != 0 || strings.Contains(res.stdout, "Settings ETag") || !regexp.MustCompile(`(?m)^Customer Lockbox: +\(not visible to you\)$`).MatchString(res.stdout) {
		t.Errorf("settings not visible: exit %d:\n%s%s", res.code, res.stdout, res.stderr)
	}
	res = run(t, []string{"describe", "tenant", "contoso", "-o", "json"}, nil, forbidden)
	if res.code != 0 || !strings.Contains(res.stdout, `"settings": null`) {
		t.Errorf("settings not visible, -o json: exit %d:\n%s%s", res.code, res.stdout, res.stderr)
	}
}
