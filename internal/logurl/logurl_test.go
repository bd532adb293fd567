package logurl_test

import (
	"testing"

	"github.com/lockbox-oss/lockbox/internal/logurl"
)

func TestShow(t *testing.T) {
	for in, want := range map[string]string{
		"https://idp.example/keys":                          "https://idp.example/keys",
		"https://idp.example/keys?key=s3cret":               "https://idp.example/keys?key=REDACTED",
		"https://idp.example/keys?tenant=t1&sig=s3cret&x":   "https://idp.example/keys?tenant=REDACTED&sig=REDACTED&x",
		"https://user:s3cret@idp.example/keys#s3cret":       "https://idp.example/keys",
		"https://idp.example/keys?":                         "https://idp.example/keys",
		"https://idp.example/keys?a%3Db=s3cret%26c%3Dd":     "https://idp.example/keys?a%3Db=REDACTED",
		"http://[::1]:8080/.well-known/jwks.json?sig=x%20y": "http://[::1]:8080/.well-known/jwks.json?sig=REDACTED",
		"https://idp.example/%zz?key=s3cret":                "(a URL that does not parse, not shown)",
	} {
		if got := logurl.Show(in); got != want {
			t.Errorf("Show(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestReplace(t *testing.T) {
	u := "https://idp.example/keys?tenant=t1&sig=s3cret"
	in := `jwksfetch: ` + u + `: unexpected status code (status code=503, url="` + u + `")`
	want := `jwksfetch: https://idp.example/keys?tenant=REDACTED&sig=REDACTED: unexpected status code (status code=503, url="https://idp.example/keys?tenant=REDACTED&sig=REDACTED")`
	if got := logurl.Replace(in, u); got != want {
		t.Errorf("Replace = %q, want %q", got, want)
	}
	quoted := "https://idp.example/keys?sig=\"s3cret\""
	if got := logurl.Replace(`url="https://idp.example/keys?sig=\"s3cret\""`, quoted); got != `url="https://idp.example/keys?sig=REDACTED"` {
		t.Errorf("Replace of a quoted URL = %q", got)
	}
}
