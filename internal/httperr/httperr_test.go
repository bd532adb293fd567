package httperr

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/lockbox-oss/lockbox/internal/fault"
)

// transitionError stands in for grants.TransitionError, which httperr must
// not import: a conflict that is not a *fault.Error and names the state.
type transitionError struct{ state string }

func (e *transitionError) Error() string {
	return "cannot approve a request that is " + e.state
}
func (e *transitionError) Is(target error) bool { return target == fault.ErrConflict }

func TestFromError(t *testing.T) {
	redisDown := errors.New("dial tcp 10.0.0.7:6379: connect: connection refused")
	tests := []struct {
		name       string
		err        error
		wantStatus int
		wantCode   string
		wantMsg    string
	}{
		{"caller stated", New(http.StatusUnauthorized, "unauthenticated", "missing %s token", "bearer"),
			401, "unauthenticated", "missing bearer token"},
		{"caller stated, wrapped", fmt.Errorf("decode: %w", New(413, "body_too_large", "too large")),
			413, "body_too_large", "too large"},
		{"fault invalid", fault.New(fault.ErrInvalid, "invalid_tenant", "tenant %q is bad", "X"),
			400, "invalid_tenant", `tenant "X" is bad`},
		{"fault forbidden", fault.New(fault.ErrForbidden, "self_approval", "two-person rule"),
			403, "self_approval", "two-person rule"},
		{"fault not found", fault.New(fault.ErrNotFound, "not_found", "request r not found"),
			404, "not_found", "request r not found"},
		{"fault conflict", fault.New(fault.ErrConflict, "open_request_exists", "you already have one"),
			409, "open_request_exists", "you already have one"},
		{"fault precondition", fault.New(fault.ErrPrecondition, "settings_changed", "read them again"),
			412, "settings_changed", "read them again"},
		{"bare precondition hides text", fmt.Errorf("%w: revision 7", fault.ErrPrecondition),
			412, "precondition_failed", "precondition failed"},
		{"fault unavailable with a safe message", fault.New(fault.ErrUnavailable, "audit_unavailable", "audit log unavailable"),
			503, "audit_unavailable", "audit log unavailable"},
		{"fault unreadable names the record", fault.New(fault.ErrUnreadable, "record_unreadable", "request r cannot be read"),
			500, "record_unreadable", "request r cannot be read"},
		{"fault wrapped by the caller", fmt.Errorf("api: %w", fault.New(fault.ErrForbidden, "forbidden", "no")),
			403, "forbidden", "no"},
		{"fault of unknown kind", &fault.Error{Kind: errors.New("odd"), Code: "odd", Message: "secret detail"},
			500, "internal", MsgInternal},
		{"fault without kind", &fault.Error{Code: "odd", Message: "secret detail"},
			500, "internal", MsgInternal},
		{"transition conflict", &transitionError{state: "expired"},
			409, "invalid_transition", "cannot approve a request that is expired"},
		{"store unavailable hides the cause", fault.Unavailable("grants: load", redisDown),
			503, "unavailable", MsgUnavailable},
		{"store failure around a categorized error", fault.Unavailable("grants: x", fault.New(fault.ErrInvalid, "bad", "bad input")),
			503, "unavailable", MsgUnavailable},
		{"deadline", fmt.Errorf("tenants: approvers: %w", context.DeadlineExceeded),
			503, "unavailable", MsgUnavailable},
		{"bare invalid", fmt.Errorf("%w: limit must be positive", fault.ErrInvalid),
			400, "invalid", "invalid input: limit must be positive"},
		{"bare forbidden hides text", fmt.Errorf("%w: internal rule 7", fault.ErrForbidden),
			403, "forbidden", "forbidden"},
		{"bare not found hides text", fmt.Errorf("%w: key lockbox:x", fault.ErrNotFound),
			404, "not_found", "not found"},
		{"unknown error", redisDown, 500, "internal", MsgInternal},
		{"nil", nil, 500, "internal", MsgInternal},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			status, code, msg := FromError(tc.err)
			if status != tc.wantStatus || code != tc.wantCode || msg != tc.wantMsg {
				t.Errorf("FromError() = %d %q %q, want %d %q %q", status, code, msg, tc.wantStatus, tc.wantCode, tc.wantMsg)
			}
			if strings.Contains(msg, "10.0.0.7") {
				t.Errorf("message leaks the internal cause: %q", msg)
			}
		})
	}
}

func TestWrite(t *testing.T) {
	rec := httptest.NewRecorder()
	rec.Header().Set("Cache-Control", "max-age=3600")
	rec.Header().Set("Content-Length", "3")
	Write(rec, http.StatusConflict, "invalid_transition", `cannot approve a request that is "denied" <b>`)

	if rec.Code != http.StatusConflict {
		t.Errorf("status = %d, want 409", rec.Code)
	}
	for k, want := range map[string]string{
		"Content-Type":           "application/json",
		"Cache-Control":          "no-store",
		"X-Content-Type-Options": "nosniff",
		"Content-Length":         "",
	} {
		if got := rec.Header().Get(k); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
	dec := json.NewDecoder(rec.Body)
	dec.DisallowUnknownFields()
	var b Body
	if err := dec.Decode(&b); err != nil {
		t.Fatalf("body is not the error document: %v", err)
	}
	want := Detail{Code: "invalid_transition", Message: `cannot approve a request that is "denied" <b>`}
	if b.Error != want {
		t.Errorf("body = %+v, want %+v", b.Error, want)
	}
}

func TestWriteError(t *testing.T) {
	rec := httptest.NewRecorder()
	status := WriteError(rec, fault.Unavailable("audit: append", errors.New("READONLY You can't write against a read only replica")))
	if status != http.StatusServiceUnavailable || rec.Code != status {
		t.Fatalf("status = %d (recorded %d), want 503", status, rec.Code)
	}
	if body := rec.Body.String(); strings.Contains(body, "READONLY") || !strings.Contains(body, `"code":"unavailable"`) {
		t.Errorf("body = %s", body)
	}
}
