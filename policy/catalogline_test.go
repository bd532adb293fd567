package policy_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/lockbox-oss/lockbox/policy"
)

// TestCatalogRefusalNamesTheLine: a catalog the server refuses is refused
// with the line of activities/data.json to look at, beside the entry, as a
// Rego error is: in a catalog of hundreds of entries "sharepoint[143]"
// alone leaves the security team counting, and a JSON syntax error named
// only the entry after the one that was wrong.
func TestCatalogRefusalNamesTheLine(t *testing.T) {
	const good = `{
  "exchange": [
    {"activity": "Get-Mailbox", "method": "GET", "path": "/tenants/{tenant}/mailboxes", "access": "read"},
    {"activity": "Get-MailboxMessage", "method": "GET", "path": "/tenants/{tenant}/mailboxes/{mailbox}/messages", "access": "read"}
  ],
  "sharepoint": [
    {"activity": "Get-SPOSite", "method": "GET", "path": "/tenants/{tenant}/sites", "access": "read"},
    {
      "activity": "Set-SPOSite",
      "method": "PATCH",
      "path": "/tenants/{tenant}/sites/{site}",
      "access": "write"
    }
  ]
}
`
	tests := []struct {
		name, old, new, want string
	}{
		{"bad path template", `/tenants/{tenant}/sites"`, `/tenants/{tenant/sites"`,
			`data.json:7: invalid activity catalog: sharepoint[0].path: "/tenants/{tenant/sites"`},
		{"two activities for one method and path", `/tenants/{tenant}/mailboxes/{mailbox}/messages`, `/tenants/{tenant}/mailboxes`,
			`data.json:4: invalid activity catalog: exchange[1].path: GET /tenants/{tenant}/mailboxes has the same shape as exchange[0]`},
		{"entry over several lines", `"method": "PATCH"`, `"method": "patch"`,
			`data.json:8: invalid activity catalog: sharepoint[1].method: "patch" is not one of`},
		{"comma missing", `"access": "read"},
    {"activity": "Get-MailboxMessage"`, `"access": "read"}
    {"activity": "Get-MailboxMessage"`,
			`data.json:4: invalid activity catalog: exchange[1]: expected comma after array element`},
		{"syntax error in an entry", `"method": "PATCH"`, `"method": PATCH`,
			`data.json:8: invalid activity catalog: sharepoint[1]: invalid character 'P'`},
		{"unknown field", `"access": "write"`, `"acess": "write"`,
			`data.json:8: invalid activity catalog: sharepoint[1]: unknown field "acess"`},
		{"cut short", "  ]\n}\n", "",
			`data.json:13: invalid activity catalog: sharepoint: EOF`},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if !strings.Contains(good, tc.old) {
				t.Fatalf("the catalog has no %q", tc.old)
			}
			dir := policyDir(t, "package lockbox.authz\n\ndefault decision := {\"allow\": false, \"reasons\": [\"not_allowed\"]}\n")
			catalog := filepath.Join(dir, policy.CatalogPath)
			if err := os.WriteFile(catalog, []byte(good), 0o644); err != nil {
				t.Fatal(err)
			}
			if _, err := policy.NewEngine(policy.EngineConfig{Dir: dir}); err != nil {
				t.Fatalf("the catalog before the edit is refused: %v", err)
			}
			if err := os.WriteFile(catalog, []byte(strings.Replace(good, tc.old, tc.new, 1)), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := policy.NewEngine(policy.EngineConfig{Dir: dir})
			if !errors.Is(err, policy.ErrInvalidPolicy) || !errors.Is(err, policy.ErrInvalidCatalog) {
				t.Fatalf("NewEngine = %v, want ErrInvalidPolicy and ErrInvalidCatalog", err)
			}
			if !strings.Contains(err.Error(), filepath.Join(dir, "activities", tc.want)) {
				t.Errorf("error %q\nwant it to hold %q", err, filepath.Join(dir, "activities", tc.want))
			}
		})
	}
}
