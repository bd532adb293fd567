package policy_test

import (
	"bytes"
	"context"
	"fmt"
	"log"
	"os"
	"path/filepath"

	"github.com/lockbox-oss/lockbox/policy"
	lockboxrego "github.com/lockbox-oss/lockbox/rego"
)

func ExampleCatalog_Match() {
	c, err := policy.ParseCatalog([]byte(`{
	  "exchange": [
	    {"activity": "Get-MailboxMessage", "method": "GET", "path": "/tenants/{tenant}/mailboxes/{mailbox}/messages", "access": "read"},
	    {"activity": "Remove-MailboxMessage", "method": "DELETE", "path": "/tenants/{tenant}/mailboxes/{mailbox}/messages/{id}", "access": "write"}
	  ]
	}`))
	if err != nil {
		log.Fatal(err)
	}

	a, vars, ok := c.Match("exchange", "DELETE", "/tenants/contoso/mailboxes/alice/messages/42")
	fmt.Println(ok, a.Name, a.Access)
	fmt.Println(vars["tenant"], vars["mailbox"], vars["id"])

	// A method or path the catalog does not list matches nothing: deny.
	_, _, ok = c.Match("exchange", "DELETE", "/tenants/contoso/mailboxes/alice/messages")
	fmt.Println(ok)
	// Output:
	// true Remove-MailboxMessage write
	// contoso alice 42
	// false
}

func ExampleEngine_Decide() {
	// The zero configuration serves the embedded default policy; a server
	// sets Dir (LOCKBOX_POLICY_DIR), a Logger and a Registerer.
	e, err := policy.NewEngine(policy.EngineConfig{})
	if err != nil {
		log.Fatal(err)
	}

	// Classify the call with the engine's catalog... (the proxy does this
	// and the decision with one Snapshot; see ExampleEngine_Snapshot)
	a, vars, ok := e.Match("exchange", "DELETE", "/tenants/contoso/mailboxes/alice/messages/42")
	if !ok {
		log.Fatal("no such activity")
	}
	// ...and asks about it under the operator's grant, which names no
	// activities: reads only.
	in := policy.Input{
		Operator: policy.Operator{ID: "op-1", Roles: []string{"operator"}},
		Call: policy.Call{
			Method: a.Method, Path: "/tenants/contoso/mailboxes/alice/messages/42",
			Service: a.Service, Activity: a.Name, Access: string(a.Access),
			Tenant: vars["tenant"], ClientIP: "192.0.2.10",
		},
		Grant: &policy.Grant{
			RequestID: "req-1", Tenant: "contoso", Operator: "op-1", Service: "exchange",
			Activities: []string{}, Approver: "admin@contoso", TenantApproved: true,
			ApprovedAt: "2026-03-01T10:00:00Z", ExpiresAt: "2026-03-01T14:00:00Z",
		},
		Tenant: policy.Tenant{ID: "contoso", LockboxEnabled: true},
		Now:    "2026-03-01T11:00:00Z",
	}
	d, err := e.Decide(context.Background(), in)
	if err != nil {
		log.Fatal(err) // a caller denies on any error
	}
	fmt.Println(a.Name, d.Allow, d.Reasons)

	// The same grant, an hour after it expired.
	in.Call = policy.Call{
		Method: "GET", Path: "/tenants/contoso/mailboxes", Service: "exchange",
		Activity: "Get-Mailbox", Access: "read", Tenant: "contoso", ClientIP: "192.0.2.10",
	}
	in.Now = "2026-03-01T15:00:00Z"
	d, _ = e.Decide(context.Background(), in)
	fmt.Println(in.Call.Activity, d.Allow, d.Reasons)

	in.Now = "2026-03-01T11:00:00Z"
	d, _ = e.Decide(context.Background(), in)
	fmt.Println(in.Call.Activity, d.Allow, d.Reasons)
	// Output:
	// Remove-MailboxMessage false [write_not_requested]
	// Get-Mailbox false [grant_expired]
	// Get-Mailbox true []
}

func ExampleEngine_Snapshot() {
	// A policy directory on disk, as LOCKBOX_POLICY_DIR names one: here a
	// copy of the default.
	dir, err := os.MkdirTemp("", "policy")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	if err := os.CopyFS(dir, lockboxrego.FS); err != nil {
		log.Fatal(err)
	}
	e, err := policy.NewEngine(policy.EngineConfig{Dir: dir})
	if err != nil {
		log.Fatal(err)
	}

	// A call takes one snapshot and classifies with it...
	snap := e.Snapshot()
	a, _, _ := snap.Match("exchange", "GET", "/tenants/contoso/mailboxes")

	// ...while the security team renames the activity and the engine
	// reloads.
	catalog := filepath.Join(dir, policy.CatalogPath)
	b, err := os.ReadFile(catalog)
	if err != nil {
		log.Fatal(err)
	}
	b = bytes.Replace(b, []byte(`"Get-Mailbox"`), []byte(`"Get-MailboxList"`), 1)
	if err := os.WriteFile(catalog, b, 0o644); err != nil {
		log.Fatal(err)
	}
	if err := e.Reload(); err != nil {
		log.Fatal(err)
	}

	// The call is still decided by the version that classified it, whose
	// policy knows Get-Mailbox; its revision is what the proxy logs and
	// audits.
	d, err := snap.Decide(context.Background(), policy.Input{
		Operator: policy.Operator{ID: "op-1", Roles: []string{"operator"}},
		Call: policy.Call{
			Method: a.Method, Path: "/tenants/contoso/mailboxes", Service: a.Service,
			Activity: a.Name, Access: string(a.Access), Tenant: "contoso", ClientIP: "192.0.2.10",
		},
		Grant: &policy.Grant{
			RequestID: "req-1", Tenant: "contoso", Operator: "op-1", Service: "exchange",
			Activities: []string{}, Approver: "admin@contoso", TenantApproved: true,
			ApprovedAt: "2026-03-01T10:00:00Z", ExpiresAt: "2026-03-01T14:00:00Z",
		},
		Tenant: policy.Tenant{ID: "contoso", LockboxEnabled: true},
		Now:    "2026-03-01T11:00:00Z",
	})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(a.Name, d.Allow, snap.Revision() == e.Revision())

	// The next call takes the new version.
	a, _, _ = e.Snapshot().Match("exchange", "GET", "/tenants/contoso/mailboxes")
	fmt.Println(a.Name)
	// Output:
	// Get-Mailbox true false
	// Get-MailboxList
}
