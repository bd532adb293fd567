package client

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
)

// TestRefusedRedirectShowsNoUserInfo: a refused redirect's error named
// where it pointed as the Location said it, user information and all:
// the user name from url.URL.Redacted, and, in the *url.Error net/http
// wraps the refusal in (its URL is the Location as sent), the password
// too. Errors end up on terminals and in logs; they now name the
// redirect's scheme, host, port and path without the user information.
func TestRefusedRedirectShowsNoUserInfo(t *testing.T) {
	other := httptest.NewServer(&fake{})
	defer other.Close()
	otherHost := strings.TrimPrefix(other.URL, "http://")
	for _, tc := range []struct {
		name, location string
		want           string // what the error still names
		insecure       bool   // refused as plain http off loopback
	}{
		{"another server, user and password", "http://alice:s3cret@" + otherHost + "/v1/x", other.URL + "/v1/x", false},
		{"another server, user only", "http://alice@" + otherHost + "/v1/x", other.URL + "/v1/x", false},
		{"plain http off loopback", "http://alice:s3cret@lockbox.example/v1/x", "http://lockbox.example/v1/x", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Location", tc.location)
				w.WriteHeader(http.StatusTemporaryRedirect)
			}))
			defer srv.Close()
			c, err := New(srv.URL, token)
			if err != nil {
				t.Fatal(err)
			}
			_, errCall := c.Approvers(context.Background(), "contoso")
			errExport := c.ExportAudit(context.Background(), AuditQuery{}, "jsonl", io.Discard)
			for name, err := range map[string]error{"Approvers": errCall, "ExportAudit": errExport} {
				if err == nil {
					t.Fatalf("%s: the redirect was followed", name)
				}
				if msg := err.Error(); strings.Contains(msg, "alice") || strings.Contains(msg, "s3cret") || !strings.Contains(msg, tc.want) {
					t.Errorf("%s: %q: want it to name %s without the user information", name, msg, tc.want)
				}
				var insecure *InsecureHTTPError
				if errors.As(err, &insecure) != tc.insecure {
					t.Errorf("%s: %v: *InsecureHTTPError %t, want %t", name, err, !tc.insecure, tc.insecure)
				} else if tc.insecure && insecure.Address != tc.want {
					t.Errorf("%s: InsecureHTTPError.Address = %q, want %q", name, insecure.Address, tc.want)
				}
			}
		})
	}
}

// TestMalformedRedirectShowsNoPassword: an answer redirecting to a
// Location that does not parse made net/http fail, before any redirect
// policy saw it, with an error quoting the Location whole (twice: its own
// message, and url.Parse's inside it), password and all; lockboxctl
// printed it. The redirect is now refused before net/http reads the
// Location, with an error that does not quote it.
func TestMalformedRedirectShowsNoPassword(t *testing.T) {
	for _, tc := range []struct{ name, location string }{
		{"host not closed", "http://alice:s3cret@[::1/v1/x"},
		{"bad escape, same server", "/%zz"}, // made absolute, on the server's own address, below
	} {
		t.Run(tc.name, func(t *testing.T) {
			var calls atomic.Int32
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				calls.Add(1)
				loc := tc.location
				if strings.HasPrefix(loc, "/") {
					loc = "http://alice:s3cret@" + r.Host + loc
				}
				w.Header().Set("Location", loc)
				w.WriteHeader(http.StatusTemporaryRedirect)
			}))
			defer srv.Close()
			c, err := New(srv.URL, token)
			if err != nil {
				t.Fatal(err)
			}
			_, errCall := c.Approvers(context.Background(), "contoso")
			errExport := c.ExportAudit(context.Background(), AuditQuery{}, "jsonl", io.Discard)
			for name, err := range map[string]error{"Approvers": errCall, "ExportAudit": errExport} {
				if err == nil {
					t.Fatalf("%s: no error", name)
				}
				if msg := err.Error(); strings.Contains(msg, "alice") || strings.Contains(msg, "s3cret") || !strings.Contains(msg, "Location") {
					t.Errorf("%s: %q: want it to say the Location was refused, without quoting it", name, msg)
				}
			}
			if n := calls.Load(); n != 2 {
				t.Errorf("the server was called %d times, want 2: the redirect was followed", n)
			}
		})
	}
}
