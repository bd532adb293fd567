package api_test

import (
	"bytes"
	"compress/gzip"
	"net/http"
	"testing"

	"github.com/lockbox-oss/lockbox/grants"
)

// TestCompressedBodyIsRefusedAsSuch: a body sent with Content-Encoding:
// gzip, as some HTTP clients send large bodies, was read as it came and
// refused as malformed JSON, naming neither the cause nor the fix. It is
// 415 unsupported_media_type naming the coding, with Accept-Encoding
// saying which one the API takes (RFC 9110 15.5.16); "identity" is none.
func TestCompressedBodyIsRefusedAsSuch(t *testing.T) {
	e := newEnv(t)
	req := e.file(alice, "contoso", "exchange")
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	if _, err := zw.Write([]byte(`{"comment":"case checked"}`)); err != nil {
		t.Fatal(err)
	}
	if err := zw.Close(); err != nil {
		t.Fatal(err)
	}
	approve := "/v1/requests/" + req.ID + "/approve"
	for _, coding := range []string{"gzip", "identity, gzip", "br"} {
		r := e.do(mia, "POST", approve, gz.Bytes(), withHeader("Content-Encoding", coding))
		wantError(t, r, http.StatusUnsupportedMediaType, "unsupported_media_type", "send the body uncompressed")
		if got := r.header.Get("Accept-Encoding"); got != "identity" {
			t.Errorf("Content-Encoding %s: Accept-Encoding %q, want identity", coding, got)
		}
	}
	got := decode[grants.Request](t, e.do(mia, "GET", "/v1/requests/"+req.ID, nil), http.StatusOK)
	if got.State != grants.StatePendingManager {
		t.Fatalf("state %s after refused bodies, want %s", got.State, grants.StatePendingManager)
	}
	got = decode[grants.Request](t, e.do(mia, "POST", approve, `{"comment":"case checked"}`, withHeader("Content-Encoding", "identity")), http.StatusOK)
	if got.State != grants.StatePendingCustomer {
		t.Errorf("state %s after approving with Content-Encoding: identity, want %s", got.State, grants.StatePendingCustomer)
	}
}
