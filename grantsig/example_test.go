package grantsig_test

import (
	"crypto/ed25519"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/lockbox-oss/lockbox/grantsig"
)

// An upstream verifies the assertion of a call it received with the JWKS
// the proxy publishes, for its own service and exactly the method and path
// it received.
func ExampleVerify() {
	// The proxy's side: its key, and the JWKS it publishes at GET /v1/keys.
	key := ed25519.NewKeyFromSeed(make([]byte, ed25519.SeedSize))
	signer, _ := grantsig.NewSigner(key)
	set, _ := grantsig.NewJWKS(key.Public())
	jwks, _ := json.Marshal(set)
	now := time.Date(2026, 11, 23, 9, 0, 0, 0, time.UTC)
	assertion, _ := signer.Sign(grantsig.Claims{
		Issuer: "lockbox", Subject: "Microsoft Operator", Audience: "exchange",
		Tenant: "contoso", Service: "exchange", RequestID: "0195a000-0000-7000-8000-000000000001",
		AuditID: "0195a000-0000-7000-8000-0000000000a1", Activity: "Get-Mailbox",
		Method: "GET", Path: "/tenants/contoso/mailboxes",
		IssuedAt: now.Unix(), ExpiresAt: now.Add(30 * time.Second).Unix(),
	})

	// The upstream's side.
	keys, _ := grantsig.ParseJWKS(jwks)
	want := grantsig.Expect{Issuer: "lockbox", Audience: "exchange", Method: "GET", Path: "/tenants/contoso/mailboxes"}
	c, err := grantsig.Verify(keys, assertion, want, now.Add(time.Second))
	fmt.Println(c.Tenant, c.RequestID, c.Activity, c.AuditID, err)

	// The same assertion, replayed for another call.
	want.Method = "DELETE"
	_, err = grantsig.Verify(keys, assertion, want, now.Add(time.Second))
	fmt.Println(errors.Is(err, grantsig.ErrInvalid))
	// Output:
	// contoso 0195a000-0000-7000-8000-000000000001 Get-Mailbox 0195a000-0000-7000-8000-0000000000a1 <nil>
	// true
}
