package client

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
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
