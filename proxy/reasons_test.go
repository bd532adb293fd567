package proxy

import (
	"errors"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

func TestReasons(t *testing.T) {
	want := map[Reason]int{
		ReasonBadRequest:          http.StatusBadRequest,
		ReasonUnauthenticated:     http.StatusUnauthorized,
		ReasonUnknownService:      http.StatusNotFound,
		ReasonUnknownActivity:     http.StatusForbidden,
		ReasonOverloaded:          http.StatusServiceUnavailable,
		ReasonNoGrant:             http.StatusForbidden,
		ReasonGrantExpired:        http.StatusForbidden,
		ReasonTenantMismatch:      http.StatusForbidden,
		ReasonPolicyDenied:        http.StatusForbidden,
		ReasonPolicyError:         http.StatusForbidden,
		ReasonStoreUnavailable:    http.StatusServiceUnavailable,
		ReasonAuditUnavailable:    http.StatusServiceUnavailable,
		ReasonUpstreamUnavailable: http.StatusBadGateway,
		ReasonInternalError:       http.StatusInternalServerError,
		ReasonClientCanceled:      499,
	}
	all := AllReasons()
	if len(all) != len(want) {
		t.Fatalf("AllReasons has %d reasons, want %d", len(all), len(want))
	}
	seen := map[Reason]bool{}
	for _, r := range all {
		if seen[r] {
			t.Errorf("%s listed twice", r)
		}
		seen[r] = true
		if got := r.Status(); got != want[r] {
			t.Errorf("%s.Status() = %d, want %d", r, got, want[r])
		}
		if r.Denial() != (r != ReasonUpstreamUnavailable) {
			t.Errorf("%s.Denial() = %t", r, r.Denial())
		}
	}
	if Reason("nope").Status() != 0 || Reason("nope").Denial() {
		t.Error("a reason outside the set has a status")
	}
	all[0] = "changed"
	if AllReasons()[0] != ReasonBadRequest {
		t.Error("AllReasons shares its slice")
	}
}

func TestMessages(t *testing.T) {
	internal := errors.New("dial tcp 10.0.0.7:6379: connection refused")
	tests := []struct {
		name   string
		reason Reason
		err    error
		status int
		msg    string
	}{
		{"caller's own error is shown", ReasonNoGrant, errors.New("no grant for exchange"), 403, "no grant for exchange"},
		{"store trouble is not", ReasonStoreUnavailable, internal, 503, publicMessage[ReasonStoreUnavailable]},
		{"policy internals are not", ReasonPolicyError, internal, 403, publicMessage[ReasonPolicyError]},
		{"hidden cause", ReasonUnauthenticated, hide("the bearer token could not be verified", internal), 401, "the bearer token could not be verified"},
		{"status override", ReasonUnauthenticated, withStatus(403, errors.New("operators only")), 403, "operators only"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := statusOf(tt.reason, tt.err); got != tt.status {
				t.Errorf("status %d, want %d", got, tt.status)
			}
			if got := messageOf(tt.reason, tt.err); got != tt.msg {
				t.Errorf("message %q, want %q", got, tt.msg)
			}
		})
	}
}

// TestREADMENamesEveryReason: README's section on the enforcement proxy,
// where callers and operators look up the codes of its answers (and the
// reason label of lockbox_proxy_denials_total), names every reason.
func TestREADMENamesEveryReason(t *testing.T) {
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(b), "\n## The enforcement proxy\n")
	if !ok {
		t.Fatal("README.md has no section \"## The enforcement proxy\"")
	}
	section, _, _ = strings.Cut(section, "\n## ")
	for _, r := range AllReasons() {
		if !strings.Contains(section, "`"+string(r)+"`") {
			t.Errorf("README.md's enforcement proxy section does not name the reason %s", r)
		}
	}
}

// TestDocumentedStatuses: where README's enforcement proxy section, the
// runbook and docs/operations.md give a proxy answer as status and code
// ("503 `store_unavailable`", "401/403 `unauthenticated`"), the code is a
// reason and the status one it is answered with: its Status, or one of the
// three other answers Status's comment names.
func TestDocumentedStatuses(t *testing.T) {
	others := map[Reason][]int{
		ReasonUnauthenticated: {http.StatusForbidden},
		ReasonBadRequest:      {http.StatusRequestEntityTooLarge},
		ReasonPolicyError:     {http.StatusServiceUnavailable},
	}
	readme, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(readme), "\n## The enforcement proxy\n")
	if !ok {
		t.Fatal("README.md has no section \"## The enforcement proxy\"")
	}
	section, _, _ = strings.Cut(section, "\n## ")
	docs := map[string]string{"README.md (The enforcement proxy)": section}
	for _, name := range []string{"../deploy/RUNBOOK.md", "../docs/operations.md"} {
		b, err := os.ReadFile(name)
		if err != nil {
			t.Fatal(err)
		}
		docs[name] = string(b)
	}
	answer := regexp.MustCompile("\\b([1-5][0-9]{2}(?:/[1-5][0-9]{2})*) `([a-z_]+)`")
	found := 0
	for doc, text := range docs {
		for _, m := range answer.FindAllStringSubmatch(text, -1) {
			found++
			r := Reason(m[2])
			if r.Status() == 0 {
				t.Errorf("%s: %q: %s is no reason of the proxy", doc, m[0], r)
				continue
			}
			for _, s := range strings.Split(m[1], "/") {
				status, _ := strconv.Atoi(s)
				if status != r.Status() && !slices.Contains(others[r], status) {
					t.Errorf("%s: %q: %s is never answered with %d", doc, m[0], r, status)
				}
			}
		}
	}
	if found < 10 {
		t.Fatalf("found only %d answers in the documentation", found)
	}
}
