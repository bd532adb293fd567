// Package fault holds the few error categories the domain packages share, so
// the API can map any domain error to a status with errors.Is and show its
// message without ever showing an internal one.
package fault

import (
	"errors"
	"fmt"
)

// Categories. Every domain error wraps exactly one.
var (
	ErrInvalid     = errors.New("invalid input")
	ErrForbidden   = errors.New("forbidden")
	ErrNotFound    = errors.New("not found")
	ErrConflict    = errors.New("conflict")
	ErrUnavailable = errors.New("store unavailable")
	// ErrPrecondition: the caller's change was based on a version of the
	// data that is no longer current (optimistic concurrency); nothing was
	// written, and the caller is to read again before changing it.
	ErrPrecondition = errors.New("precondition failed")
	// ErrUnreadable: a record Lockbox stored does not decode (a partial
	// write, a hand edit, a flipped bit). Retrying does not help; an
	// operator repairs or removes the record (deploy/RUNBOOK.md).
	ErrUnreadable = errors.New("stored record cannot be read")
)

// Error is a categorized error with a stable code and a message that is safe
// to show to the caller.
type Error struct {
	Kind    error  // one of the categories above
	Code    string // stable and machine-readable, e.g. "self_approval"
	Message string
	// Field names the input the error is about, as the API's request
	// body names it (e.g. "display_name"), when a code shared by several
	// inputs does not say which: the console marks that field of its
	// form. Empty when the error is about no one input.
	Field string
}

func (e *Error) Error() string { return e.Message }
func (e *Error) Unwrap() error { return e.Kind }

// New returns an *Error of kind with a formatted message.
func New(kind error, code, format string, args ...any) *Error {
	return &Error{Kind: kind, Code: code, Message: fmt.Sprintf(format, args...)}
}

// Unavailable wraps a store failure. Its message stays generic: the cause is
// for logs, not for clients.
func Unavailable(op string, err error) error {
	return fmt.Errorf("%s: %w: %w", op, ErrUnavailable, err)
}
