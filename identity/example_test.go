package identity_test

import (
	"context"
	"errors"
	"fmt"
	"log"
	"os"
	"path/filepath"
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

// Two identity providers, each trusted for its own users only: the
// provider's for its staff, contoso's for contoso's users. What a token
// claims about its tenant or provider roles counts only as far as its
// issuer's scope allows.
func ExampleTenantScope() {
	dir, err := os.MkdirTemp("", "lockbox-identity-example")
	if err != nil {
		log.Fatal(err)
	}
	defer os.RemoveAll(dir)
	keyFile := func(name string) (string, func(identity.Claims) string) {
		key, err := identity.GenerateDevKey()
		if err != nil {
			log.Fatal(err)
		}
		_, jwks, err := identity.WriteDevKeys(filepath.Join(dir, name), key)
		if err != nil {
			log.Fatal(err)
		}
		iss := "https://login." + name + ".example"
		return jwks, func(c identity.Claims) string {
			tok, err := identity.Mint(key, iss, "lockbox", c, time.Now())
			if err != nil {
				log.Fatal(err)
			}
			return tok
		}
	}
	providerKeys, providerToken := keyFile("provider")
	contosoKeys, contosoToken := keyFile("contoso")

	v, err := identity.NewVerifier(identity.Config{Issuers: []identity.IssuerConfig{
		{Issuer: "https://login.provider.example", Audience: "lockbox", Scope: identity.ProviderScope(), JWKSFile: providerKeys},
		{Issuer: "https://login.contoso.example", Audience: "lockbox", Scope: identity.TenantScope("contoso"), JWKSFile: contosoKeys},
	}})
	if err != nil {
		log.Fatal(err)
	}
	for _, tok := range []string{
		providerToken(identity.Claims{Subject: "alice@provider.example", Roles: []identity.Role{identity.RoleOperator}}),
		// contoso's identity provider claims fabrikam and provider roles.
		contosoToken(identity.Claims{Subject: "mallory@contoso.example", TenantID: "fabrikam",
			Roles: []identity.Role{identity.RoleOperator, identity.RoleGlobalAdmin}}),
	} {
		p, err := v.Verify(context.Background(), tok)
		if err != nil {
			log.Fatal(err)
		}
		fmt.Printf("%s: tenant %q, roles %v, provider staff %v\n", p.Subject, p.TenantID, p.Roles, p.IsProvider())
	}

	// Output:
	// alice@provider.example: tenant "", roles [operator], provider staff true
	// mallory@contoso.example: tenant "contoso", roles [global-admin], provider staff false
}
