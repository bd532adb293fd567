package httperr_test

import (
	"errors"
	"fmt"
	"net/http/httptest"

	"github.com/lockbox-oss/lockbox/internal/fault"
	"github.com/lockbox-oss/lockbox/internal/httperr"
)

func ExampleFromError() {
	for _, err := range []error{
		fault.New(fault.ErrForbidden, "self_approval", "two-person rule: alice filed this request"),
		fault.Unavailable("grants: load", errors.New("dial tcp 10.0.0.7:6379: connection refused")),
		errors.New("something unexpected"),
	} {
		status, code, msg := httperr.FromError(err)
		fmt.Println(status, code, msg)
	}
	// Output:
	// 403 self_approval two-person rule: alice filed this request
	// 503 unavailable service temporarily unavailable; retry later
	// 500 internal internal error
}

func ExampleWrite() {
	rec := httptest.NewRecorder()
	httperr.Write(rec, 404, "not_found", "request 0190a6b4-0000-7000-8000-000000000000 not found")
	fmt.Println(rec.Code, rec.Header().Get("Content-Type"))
	fmt.Print(rec.Body.String())
	// Output:
	// 404 application/json
	// {"error":{"code":"not_found","message":"request 0190a6b4-0000-7000-8000-000000000000 not found"}}
}
