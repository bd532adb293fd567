// Package httperr owns the one JSON error shape every Lockbox HTTP surface
// answers with (the control-plane API and the proxy alike):
//
//	{"error": {"code": "self_approval", "message": "two-person rule: ..."}}
//
// and the mapping from the shared error categories of internal/fault to HTTP
// status codes. The code is stable and meant for programs; the message is
// meant for people and is never an internal cause: store failures and
// unexpected errors get a fixed, generic message, and the caller logs the
// real one with the trace id.
//
// It imports no domain package (grants, identity, ...): domain errors reach
// it through the fault categories, and what has no category (an
// authentication failure, a body too large) the caller states with Error.
package httperr

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"

	"github.com/lockbox-oss/lockbox/internal/fault"
)

// Body is the JSON document of every error response.
type Body struct {
	Error Detail `json:"error"`
}

// Detail is the inside of Body.
type Detail struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// Error is an error the caller has already given a status and a safe message,
// for failures the fault categories don't cover (401, 413, 415, ...).
type Error struct {
	Status  int
	Code    string
	Message string
}

func (e *Error) Error() string { return e.Message }

// New returns an *Error with a formatted message.
func New(status int, code, format string, args ...any) *Error {
	return &Error{Status: status, Code: code, Message: fmt.Sprintf(format, args...)}
}

// Generic messages for errors whose own text is not for clients.
const (
	MsgInternal    = "internal error"
	MsgUnavailable = "service temporarily unavailable; retry later"
)

// Write sends the error document with status. It sets Content-Type and
// Cache-Control itself, so an error never inherits a cacheable header.
func Write(w http.ResponseWriter, status int, code, message string) {
	b, err := json.Marshal(Body{Error: Detail{Code: code, Message: message}})
	if err != nil {
		// Two strings always encode; keep the shape even so.
		b = []byte(`{"error":{"code":"internal","message":"internal error"}}`)
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Cache-Control", "no-store")
	h.Set("X-Content-Type-Options", "nosniff")
	h.Del("Content-Length")
	w.WriteHeader(status)
	_, _ = w.Write(append(b, '\n'))
}

// WriteError writes err as FromError maps it and returns the status, so the
// caller can decide what to log.
func WriteError(w http.ResponseWriter, err error) int {
	status, code, msg := FromError(err)
	Write(w, status, code, msg)
	return status
}

// FromError maps err to a status, code and client-safe message:
//
//   - *Error: as given.
//   - *fault.Error: its Code and Message, the status by its Kind (Invalid 400,
//     Forbidden 403, NotFound 404, Conflict 409, Precondition 412,
//     Unavailable 503, Unreadable 500: a stored record that does not
//     decode, which the message names without its content).
//   - any other error matching fault.ErrConflict (such as a state-machine
//     TransitionError, whose text names the state): 409 invalid_transition
//     with err.Error().
//   - fault.ErrUnavailable not carried by such a *fault.Error: 503
//     unavailable with a generic message, never the cause (which names
//     hosts, keys and library internals).
//   - context.DeadlineExceeded: 503 unavailable, as above.
//   - other fault categories without a *fault.Error: their status with a
//     generic message, except ErrInvalid, whose text describes the client's
//     own input.
//   - anything else: 500 internal "internal error".
func FromError(err error) (status int, code, message string) {
	if err == nil {
		return http.StatusInternalServerError, "internal", MsgInternal
	}
	if e, ok := errors.AsType[*Error](err); ok {
		return e.Status, e.Code, e.Message
	}
	fe, isFault := errors.AsType[*fault.Error](err)
	if errors.Is(err, fault.ErrUnavailable) {
		// A store failure wrapped around a categorized error is still a
		// store failure; only a *fault.Error that is itself of this kind
		// carries a message meant for clients.
		if isFault && errors.Is(fe.Kind, fault.ErrUnavailable) {
			return http.StatusServiceUnavailable, fe.Code, fe.Message
		}
		return http.StatusServiceUnavailable, "unavailable", MsgUnavailable
	}
	if isFault {
		if status := statusOf(fe.Kind); status != 0 {
			return status, fe.Code, fe.Message
		}
		// A category we don't know: its message was never vetted for any
		// status, so don't show it.
		return http.StatusInternalServerError, "internal", MsgInternal
	}
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		// A dependency too slow for the caller's deadline is unavailable
		// as far as the client can tell.
		return http.StatusServiceUnavailable, "unavailable", MsgUnavailable
	case errors.Is(err, fault.ErrConflict):
		return http.StatusConflict, "invalid_transition", err.Error()
	case errors.Is(err, fault.ErrInvalid):
		return http.StatusBadRequest, "invalid", err.Error()
	case errors.Is(err, fault.ErrForbidden):
		return http.StatusForbidden, "forbidden", "forbidden"
	case errors.Is(err, fault.ErrNotFound):
		return http.StatusNotFound, "not_found", "not found"
	case errors.Is(err, fault.ErrPrecondition):
		return http.StatusPreconditionFailed, "precondition_failed", "precondition failed"
	}
	return http.StatusInternalServerError, "internal", MsgInternal
}

// statusOf returns the status of a fault category, or 0 for none.
func statusOf(kind error) int {
	switch {
	case kind == nil:
		return 0
	case errors.Is(kind, fault.ErrUnavailable):
		return http.StatusServiceUnavailable
	case errors.Is(kind, fault.ErrInvalid):
		return http.StatusBadRequest
	case errors.Is(kind, fault.ErrForbidden):
		return http.StatusForbidden
	case errors.Is(kind, fault.ErrNotFound):
		return http.StatusNotFound
	case errors.Is(kind, fault.ErrConflict):
		return http.StatusConflict
	case errors.Is(kind, fault.ErrPrecondition):
		return http.StatusPreconditionFailed
	case errors.Is(kind, fault.ErrUnreadable):
		return http.StatusInternalServerError
	}
	return 0
}
