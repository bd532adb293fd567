package identity

import (
	"strings"
	"testing"
)

// CheckFetchURL's errors go to logs (the console checks a provider's
// discovery endpoints with it), so a URL carrying user info is refused
// without quoting it, as config's copy of the check does.
func TestCheckFetchURLHidesCredentials(t *testing.T) {
	for _, u := range []string{
		"https://user:s3cret@idp.example/keys",
		"https://s3cret@idp.example/keys",
		"http://user:s3cret@localhost:8080/keys",
		"https://user:s3cret@idp.example/keys#frag",
		// Not percent-encoded, the / ends the authority early, and the
		// parser quotes the password's first part as a port.
		"https://user:s3c/ret@idp.example/keys",
		// User info and a credential in the query: neither is quoted.
		"https://user:s3cret@idp.example/keys?api_key=s3cret",
		"http://idp.example/keys?api_key=s3cret",
		"https://idp.example/keys?api_key=s3cret#frag",
	} {
		err := CheckFetchURL("JWKS URL", u)
		if err == nil {
			t.Errorf("%s: no error", u)
			continue
		}
		if strings.Contains(err.Error(), "s3c") {
			t.Errorf("%s: error leaks the credential: %v", u, err)
		}
		if !strings.HasPrefix(err.Error(), "JWKS URL ") {
			t.Errorf("%s: error does not name what it checked: %v", u, err)
		}
	}
	for _, u := range []string{"https://idp.example/keys", "http://localhost:8080/keys"} {
		if err := CheckFetchURL("JWKS URL", u); err != nil {
			t.Errorf("%s: %v", u, err)
		}
	}
}
