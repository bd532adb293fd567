package audit

import (
	"bytes"
	"errors"
	"os"
	"testing"
	"time"
)

// fullPipe is a stream with write deadlines whose buffer takes room more
// bytes (any number when negative); a write past them writes what fits and
// fails at its deadline, as a write to a pipe nobody reads does.
type fullPipe struct {
	bytes.Buffer
	room int
}

func (p *fullPipe) SetWriteDeadline(time.Time) error { return nil }

func (p *fullPipe) Write(b []byte) (int, error) {
	if p.room < 0 || len(b) <= p.room {
		if p.room >= 0 {
			p.room -= len(b)
		}
		return p.Buffer.Write(b)
	}
	n, _ := p.Buffer.Write(b[:p.room])
	p.room = 0
	return n, os.ErrDeadlineExceeded
}

// TestStreamWriterTornLine: a line cut short at its deadline is completed
// before anything else is written, and not written again when it is the
// line retried; a line none of which got in is forgotten.
func TestStreamWriterTornLine(t *testing.T) {
	l1, l2 := []byte(`{"Id":"one"}`+"\n"), []byte(`{"Id":"two"}`+"\n")
	for _, tc := range []struct {
		name string
		room int
		next []byte
		want string
	}{
		{"torn, then retried", 5, l1, string(l1)},
		{"torn, then another line", 5, l2, string(l1) + string(l2)},
		{"nothing got in, then another line", 0, l2, string(l2)},
		{"nothing got in, then retried", 0, l1, string(l1)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := &fullPipe{room: tc.room}
			s := newStreamWriter(p, time.Second)
			if s.deadline == nil {
				t.Fatal("the stream's write deadlines are not used")
			}
			if err := s.write(l1); !errors.Is(err, ErrSinkStalled) {
				t.Fatalf("write to a full pipe: %v, want ErrSinkStalled", err)
			}
			p.room = -1
			if err := s.write(tc.next); err != nil {
				t.Fatal(err)
			}
			if got := p.String(); got != tc.want {
				t.Fatalf("stream %q, want %q", got, tc.want)
			}
		})
	}
}
