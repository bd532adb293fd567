package origin_test

import (
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/lockbox-oss/lockbox/internal/origin"
)

func TestOf(t *testing.T) {
	same := [][2]string{
		{"https://idp.example/a", "https://IDP.example:443/b"},
		{"http://idp.example", "HTTP://idp.example:80"},
		{"https://[::1]/x", "https://[::1]:443"},
		{"https://user:pw@idp.example/", "https://idp.example"},
	}
	differ := [][2]string{
		{"https://idp.example", "http://idp.example"},
		{"https://idp.example", "https://idp.example:8443"},
		{"https://idp.example", "https://login.idp.example"},
		{"https://idp.example", "https://idp.example."},
		{"http://idp.example:443", "https://idp.example"},
	}
	for _, c := range same {
		if a, b := of(t, c[0]), of(t, c[1]); a != b {
			t.Errorf("%s and %s: %q and %q, want one origin", c[0], c[1], a, b)
		}
	}
	for _, c := range differ {
		if a, b := of(t, c[0]), of(t, c[1]); a == b {
			t.Errorf("%s and %s: both %q, want two origins", c[0], c[1], a)
		}
	}
	if got := of(t, "https://user:pw@idp.example/p?q"); got != "https://idp.example:443" {
		t.Errorf("origin with user info, path and query: %q", got)
	}
}

func of(t *testing.T, s string) string {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return origin.Of(u)
}

// TestTransportRefusesMalformedLocation: a redirect to a Location that
// does not parse is refused by Transport with ErrMalformedRedirect, in an
// error that does not quote it; one that parses is followed as before.
func TestTransportRefusesMalformedLocation(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/bad":
			w.Header().Set("Location", "http://alice:s3cret@[::1/x")
			w.WriteHeader(http.StatusTemporaryRedirect)
		case "/good":
			http.Redirect(w, r, "/here", http.StatusFound)
		default:
			w.Write([]byte("here"))
		}
	}))
	defer srv.Close()
	c := &http.Client{Transport: origin.Transport(nil)}

	_, err := c.Get(srv.URL + "/bad")
	if !errors.Is(err, origin.ErrMalformedRedirect) || strings.Contains(err.Error(), "alice") || strings.Contains(err.Error(), "s3cret") {
		t.Errorf("malformed Location: err = %v, want ErrMalformedRedirect, without the Location", err)
	}
	if bad, ok := errors.AsType[*origin.MalformedRedirectError](err); !ok || bad.Status != http.StatusTemporaryRedirect {
		t.Errorf("malformed Location: err = %#v, want a *MalformedRedirectError naming status 307", err)
	}
	resp, err := c.Get(srv.URL + "/good")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Request.URL.Path != "/here" {
		t.Errorf("a redirect to a Location that parses ended at %s, want /here", resp.Request.URL)
	}
}
