package identity_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"time"

	"github.com/lockbox-oss/lockbox/identity"
)

// A development set-up: a local key signs tokens, and the Verifier trusts
// the matching JWKS, exactly as it would trust an identity provider's.
func ExampleVerifier_Verify() {
	dir, err := os.MkdirTemp("", "lockbox-identity-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)

	key, err := identity.GenerateDevKey()
	if err != nil {
		log.Fatal(err)
	}
	_, jwksPath, err := identity.WriteDevKeys(dir, key)
	if err != nil {
		log.Fatal(err)
	}

	now := time.Date(2025, 3, 1, 9, 0, 0, 0, time.UTC)
	v, err := identity.NewVerifier(identity.Config{
		Issuer:   "https://login.lockbox.test",
		Audience: "lockbox",
		JWKSFile: jwksPath,
		Now:      func() time.Time { return now },
	})
	if err != nil {
		log.Fatal(err)
	}

	token, err := identity.Mint(key, "https://login.lockbox.test", "lockbox", identity.Claims{
		Subject:  "admin@contoso.example",
		Roles:    []identity.Role{identity.RoleGlobalAdmin, identity.RoleApprover},
		TenantID: "contoso",
		TTL:      15 * time.Minute,
	}, now)
	if err != nil {
		log.Fatal(err)
	}

	p, err := v.Verify(context.Background(), token)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println("subject:", p.Subject)
	fmt.Println("roles:", p.Roles)
	fmt.Println("tenant:", p.TenantID, "provider staff:", p.IsProvider())
	fmt.Println("global admin of contoso:", p.IsGlobalAdminOf("contoso"))

	// An hour later the same token is refused, and the caller needs only
	// one check to answer 401.
	now = now.Add(time.Hour)
	_, err = v.Verify(context.Background(), token)
	fmt.Println(errors.Is(err, identity.ErrUnauthenticated), err)

	// Output:
	// subject: admin@contoso.example
	// roles: [global-admin lockbox-approver]
	// tenant: contoso provider staff: false
	// global admin of contoso: true
	// true unauthenticated: token expired
}
