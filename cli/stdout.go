package cli

import (
	"errors"
	"io"
	"syscall"
)

// stdoutWriter is lockboxctl's standard output. Its reader going away
// ("lockboxctl get requests | head -1", a pager quit early) ends the
// command where it is, quietly and with exit 0: what was asked for has
// been taken, and a script under "set -o pipefail" must not fail on a
// pipeline that did what it meant. lockboxctl's main keeps the runtime
// from ending the process with SIGPIPE (exit 141 in a shell), so the
// write fails with EPIPE and comes here.
type stdoutWriter struct{ w io.Writer }

func (s stdoutWriter) Write(p []byte) (int, error) {
	n, err := s.w.Write(p)
	if err != nil && errors.Is(err, syscall.EPIPE) {
		return n, &stdoutClosedError{err: err}
	}
	return n, err
}

// stdoutClosedError is a write to a standard output whose reader is
// gone: not a failure of the command (see stdoutWriter). Only stdout's
// writes make one, so a connection to the API that breaks (also EPIPE)
// is still reported.
type stdoutClosedError struct{ err error }

func (e *stdoutClosedError) Error() string { return "stdout: " + e.err.Error() }
func (e *stdoutClosedError) Unwrap() error { return e.err }
