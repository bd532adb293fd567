package api_test

import (
	"net/http"
	"strings"
	"testing"

	"github.com/lockbox-oss/lockbox/api/wire"
)

// TestFilingRetriedWithItsIdempotencyKey: a filing whose answer was lost,
// sent again with its Idempotency-Key, is answered as the first was (201,
// the same request, the same Location), whether the key comes as the
// draft's quoted string or bare; nothing is filed or audited twice.
func TestFilingRetriedWithItsIdempotencyKey(t *testing.T) {
	e := newEnv(t)
	const key = "8e03978e-40d5-43e8-bc93-6894a57f9324"
	first := e.do(alice, "POST", "/v1/requests", createBody("contoso", "exchange"), withHeader("Idempotency-Key", `"`+key+`"`))
	filed := decode[wire.Request](t, first, http.StatusCreated)
	for _, sent := range []string{`"` + key + `"`, key} {
		again := e.do(alice, "POST", "/v1/requests", createBody("contoso", "exchange"), withHeader("Idempotency-Key", sent))
		got := decode[wire.Request](t, again, http.StatusCreated)
		if got.ID != filed.ID || again.header.Get("Location") != first.header.Get("Location") {
			t.Fatalf("retry with %s = %s at %q, want %s at %q", sent, got.ID, again.header.Get("Location"), filed.ID, first.header.Get("Location"))
		}
	}
	list := decode[wire.RequestList](t, e.do(mia, "GET", "/v1/requests?tenant=contoso", nil), http.StatusOK)
	if len(list.Requests) != 1 {
		t.Errorf("contoso has %d requests, want the one filed", len(list.Requests))
	}
	audit := decode[page](t, e.do(contosoAdmin, "GET", "/v1/audit?tenant=contoso&request_id="+filed.ID, nil), http.StatusOK)
	if len(audit.Records) != 1 {
		t.Errorf("audit records of the request = %d, want its filing's alone", len(audit.Records))
	}
}

// TestFilingIdempotencyKeyRefusals: the key sent with another body is 422
// and files nothing; a malformed key, or two, are 400 before anything is
// filed; another caller's same key is theirs.
func TestFilingIdempotencyKeyRefusals(t *testing.T) {
	e := newEnv(t)
	key := withHeader("Idempotency-Key", "k-1")
	decode[wire.Request](t, e.do(alice, "POST", "/v1/requests", createBody("contoso", "exchange"), key), http.StatusCreated)
	wantError(t, e.do(alice, "POST", "/v1/requests", createBody("fabrikam", "exchange"), key), http.StatusUnprocessableEntity, "idempotency_key_reused", "another request")
	for name, opts := range map[string][]option{
		"empty":       {withHeader("Idempotency-Key", "")},
		"a space":     {withHeader("Idempotency-Key", "k 2")},
		"too long":    {withHeader("Idempotency-Key", strings.Repeat("k", 256))},
		"given twice": {withHeader("Idempotency-Key", "k-2"), withHeader("Idempotency-Key", "k-2")},
	} {
		t.Run(name, func(t *testing.T) {
			wantError(t, e.do(alice, "POST", "/v1/requests", createBody("fabrikam", "sharepoint"), opts...), http.StatusBadRequest, "invalid_idempotency_key", "Idempotency-Key")
		})
	}
	if list := decode[wire.RequestList](t, e.do(mia, "GET", "/v1/requests?tenant=fabrikam", nil), http.StatusOK); len(list.Requests) != 0 {
		t.Errorf("fabrikam has %d requests, want none", len(list.Requests))
	}
	theirs := decode[wire.Request](t, e.do(bob, "POST", "/v1/requests", createBody("contoso", "exchange"), key), http.StatusCreated)
	if theirs.Requester != bob.sub {
		t.Errorf("bob's filing with alice's key = %+v", theirs)
	}
}
