package cli

import (
	"encoding/json"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// TestTenantShowDocumentsCarryTheETag: "tenant show" printed the entry's
// ETag in its table only; -o json and -o yaml lacked it, so a script had
// nothing to pass to "tenant offboard --if-match" or send as If-Match.
// Both documents now carry it as "etag", exactly as the API sent it
// (quotes included), beside the entry's own fields; a server that sends
// none (from before registry entries had revisions) leaves it out.
func TestTenantShowDocumentsCarryTheETag(t *testing.T) {
	if help := run(t, []string{"tenant", "show", "--help"}, nil, nil); help.code != 0 || !strings.Contains(help.stdout, "the etag\nfield of -o json") {
		t.Errorf("tenant show --help does not name the etag field: exit %d\n%s", help.code, help.stdout)
	}
	decoders := map[string]func([]byte, any) error{"json": json.Unmarshal, "yaml": yaml.Unmarshal}
	for _, format := range []string{"json", "yaml"} {
		t.Run(format, func(t *testing.T) {
			res := run(t, []string{"tenant", "show", "contoso", "-o", format}, nil, nil)
			if res.code != 0 {
				t.Fatalf("exit %d: %s", res.code, res.stderr)
			}
			var doc map[string]any
			if err := decoders[format]([]byte(res.stdout), &doc); err != nil {
				t.Fatalf("not %s: %v\n%s", format, err, res.stdout)
			}
			if doc["etag"] != tenantETag || doc["id"] != "contoso" || doc["display_name"] != "Contoso Ltd" {
				t.Errorf("etag %v, id %v, display_name %v; want %s, contoso, Contoso Ltd:\n%s",
					doc["etag"], doc["id"], doc["display_name"], tenantETag, res.stdout)
			}

			old := run(t, []string{"tenant", "show", "contoso", "-o", format}, nil, map[string]reply{"GET /v1/tenants/contoso": {200, mustJSON(sampleTenant())}})
			doc = nil
			if err := decoders[format]([]byte(old.stdout), &doc); old.code != 0 || err != nil {
				t.Fatalf("without an ETag from the server: exit %d, %v:\n%s", old.code, err, old.stdout)
			}
			if _, ok := doc["etag"]; ok || doc["id"] != "contoso" {
				t.Errorf("without an ETag from the server:\n%s", old.stdout)
			}
		})
	}
}
