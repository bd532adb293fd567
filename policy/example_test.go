package policy_test

import (
	"fmt"
	"log"

	"github.com/lockbox-oss/lockbox/policy"
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
