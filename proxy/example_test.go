package proxy_test

import (
	"errors"
	"fmt"

	"github.com/lockbox-oss/lockbox/proxy"
)

func ExampleCanonicalize() {
	p, err := proxy.Canonicalize("/tenants/contoso/mailboxes/alice/messages?top=10")
	fmt.Println(p, p.Query(), p.Segments(), err)

	// Targets that are not already canonical are refused, never repaired.
	for _, target := range []string{
		"/tenants/contoso/mailboxes/../../fabrikam/mailboxes",
		"/tenants/contoso/mailboxes%2F..%2F..%2Ffabrikam",
		"//tenants/contoso",
		"http://upstream.internal/tenants/contoso",
	} {
		_, err := proxy.Canonicalize(target)
		fmt.Println(errors.Is(err, proxy.ErrNotCanonical), err)
	}
	// Output:
	// /tenants/contoso/mailboxes/alice/messages top=10 [tenants contoso mailboxes alice messages] <nil>
	// true request target is not canonical: dot segment
	// true request target is not canonical: percent-encoding in the path
	// true request target is not canonical: empty segment ("//")
	// true request target is not canonical: not origin-form: must start with "/"
}

func ExampleAllReasons() {
	// Each reason is the JSON error code, the metric label and the log
	// attribute of a refused call, with the status it is answered with.
	for _, r := range proxy.AllReasons() {
		fmt.Println(r, r.Status(), r.Denial())
	}
	// Output:
	// bad_request 400 true
	// unauthenticated 401 true
	// unknown_service 404 true
	// unknown_activity 403 true
	// overloaded 503 true
	// no_grant 403 true
	// grant_expired 403 true
	// tenant_mismatch 403 true
	// policy_denied 403 true
	// policy_error 403 true
	// store_unavailable 503 true
	// audit_unavailable 503 true
	// upstream_unavailable 502 false
	// internal_error 500 true
	// client_canceled 499 true
}
