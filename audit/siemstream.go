package audit

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"time"
)

// SinkWriteTimeout bounds a write to a SIEM sink that is a stream (stdout,
// a named pipe): a log pipeline that stops reading fills the pipe, and a
// write past this fails with ErrSinkStalled instead of blocking
// forwarding for good.
const SinkWriteTimeout = 10 * time.Second

// ErrSinkStalled is the error of a SIEM sink that takes no lines: the
// reader of stdout or of a named pipe is not reading, or the pipe has no
// reader yet. The records stay pending and are written once it reads.
var ErrSinkStalled = errors.New("siem sink stalled")

// streamWriter writes whole lines to a stream that can't take bytes back
// (a pipe, stdout, a device), each within a timeout, so that a line the
// forwarder retries after a failed write reaches the stream once.
//
// A write that fails may have put part of its line in the stream (a
// deadline hit mid-line), or, where the stream takes no deadlines, may
// still be running when its timeout ends and finish later. Either way the
// writer keeps the line: the next write first completes it (the stream's
// reader never sees a torn line followed by another), and if the next line
// is that same one, retried, it is not written again. A different next
// line means the forwarder moved on (another replica took the record
// over), and the completed line is the duplicate at-least-once allows.
//
// Where w has write deadlines (an *os.File of a pipe or FIFO opened
// non-blocking), each write runs under one. Elsewhere (stdout, usually a
// blocking pipe, takes none) the write runs in a goroutine the caller stops
// waiting for: it stays blocked until the stream takes the bytes, and only
// one runs at a time.
type streamWriter struct {
	w        io.Writer
	timeout  time.Duration
	deadline interface{ SetWriteDeadline(time.Time) error } // nil: w takes no deadlines
	// line is the last line a write failed on, when some of it may be in
	// the stream; done bytes of it are.
	line []byte
	done int
	// running, without deadlines, delivers the outcome of the write of
	// line[done:] that outlived its timeout.
	running chan writeResult
}

type writeResult struct {
	n   int
	err error
}

func newStreamWriter(w io.Writer, timeout time.Duration) *streamWriter {
	s := &streamWriter{w: w, timeout: timeout}
	if d, ok := w.(interface{ SetWriteDeadline(time.Time) error }); ok && d.SetWriteDeadline(time.Time{}) == nil {
		s.deadline = d
	}
	return s
}

// write puts b, a line with its newline, in the stream. It returns nil
// once b is there, once; after an error, what reached the stream is
// remembered for the next call (see streamWriter). Not safe for concurrent
// use.
func (s *streamWriter) write(b []byte) error {
	if s.line != nil {
		if err := s.settle(); err != nil {
			return err
		}
		if s.line != nil {
			same := bytes.Equal(s.line, b)
			s.line, s.done = nil, 0
			if same {
				return nil // the retried line is in the stream already
			}
		}
	}
	s.line, s.done = append([]byte(nil), b...), 0
	err := s.settle()
	if err == nil {
		s.line = nil
	}
	return err
}

// settle writes what is left of s.line. When it fails, s.line stays set
// only if some of it may have reached the stream.
func (s *streamWriter) settle() error {
	for s.running != nil || s.done < len(s.line) {
		if s.running == nil {
			s.running = s.start(s.line[s.done:])
		}
		timer := time.NewTimer(s.timeout)
		var r writeResult
		select {
		case r = <-s.running:
			timer.Stop()
		case <-timer.C:
			return fmt.Errorf("%w: a write has not finished in %s; the sink's reader is not reading", ErrSinkStalled, s.timeout)
		}
		s.running = nil
		s.done += r.n
		if r.err != nil {
			if s.done == 0 {
				s.line = nil
			}
			if errors.Is(r.err, os.ErrDeadlineExceeded) {
				return fmt.Errorf("%w: a write did not finish in %s; the sink's reader is not reading: %w", ErrSinkStalled, s.timeout, r.err)
			}
			return r.err
		}
	}
	return nil
}

// start writes b: at once under a deadline where w takes one, else in a
// goroutine. The outcome arrives on the channel.
func (s *streamWriter) start(b []byte) chan writeResult {
	c := make(chan writeResult, 1)
	if s.deadline != nil {
		var r writeResult
		if r.err = s.deadline.SetWriteDeadline(time.Now().Add(s.timeout)); r.err == nil {
			r.n, r.err = s.w.Write(b)
			if err := s.deadline.SetWriteDeadline(time.Time{}); r.err == nil {
				r.err = err
			}
		}
		c <- r
		return c
	}
	go func() {
		n, err := s.w.Write(b)
		c <- writeResult{n, err}
	}()
	return c
}
