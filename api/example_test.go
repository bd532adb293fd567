package api_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"

	"github.com/redis/go-redis/v9"

	"github.com/lockbox-oss/lockbox/api"
	"github.com/lockbox-oss/lockbox/audit"
	"github.com/lockbox-oss/lockbox/grants"
	"github.com/lockbox-oss/lockbox/identity"
	"github.com/lockbox-oss/lockbox/tenants"
)

// ExampleNew wires the API the way cmd/lockbox does, and shows the answer to
// a call without a token. Redis is never reached here: the call is refused
// before any handler runs.
func ExampleNew() {
	dir, err := os.MkdirTemp("", "lockbox-example-")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	key, err := identity.GenerateDevKey()
	if err != nil {
		panic(err)
	}
	_, jwks, err := identity.WriteDevKeys(dir, key)
	if err != nil {
		panic(err)
	}
	verifier, err := identity.NewVerifier(identity.Config{Issuer: "https://idp.example", Audience: "lockbox", JWKSFile: jwks})
	if err != nil {
		panic(err)
	}

	rdb := redis.NewClient(&redis.Options{Addr: "localhost:6379"})
	defer rdb.Close()
	log := audit.NewLog(rdb, nil)
	ten := tenants.NewStore(rdb, log, nil)
	log.SetTenantDirectory(ten)
	reqs, err := grants.NewStore(grants.Config{Redis: rdb, Audit: log, Tenants: ten, Catalog: testCatalog})
	if err != nil {
		panic(err)
	}

	h, err := api.New(api.Config{Auth: verifier, Requests: reqs, Tenants: ten, Audit: log})
	if err != nil {
		panic(err)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()

	resp, err := http.Get(srv.URL + "/v1/requests")
	if err != nil {
		panic(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	fmt.Println(resp.StatusCode, resp.Header.Get("WWW-Authenticate"))
	fmt.Print(string(body))
	// Output:
	// 401 Bearer realm="lockbox"
	// {"error":{"code":"unauthenticated","message":"missing bearer token in the Authorization header"}}
}
