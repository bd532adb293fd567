package audit_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/testutil"
	"github.com/redis/go-redis/v9"

	"github.com/lockbox-oss/lockbox/audit"
	"github.com/lockbox-oss/lockbox/internal/keys"
)

// stallTimeout is the sinks' write timeout in these tests: short, so a
// stalled write gives up quickly. Nothing is asserted on it; it only
// bounds how long a test waits.
const stallTimeout = 100 * time.Millisecond

// returns runs f and fails the test if it has not returned after a bound
// far above any write timeout here: f blocked for good.
func returns[T any](t *testing.T, what string, f func() T) T {
	t.Helper()
	done := make(chan T, 1)
	go func() { done <- f() }()
	select {
	case v := <-done:
		return v
	case <-time.After(10 * time.Second):
		t.Fatalf("%s blocked", what)
		panic("unreachable")
	}
}

type pollResult struct {
	n   int
	err error
}

// fillPipe writes to w until the pipe holds all it can, and returns how
// many bytes that took.
func fillPipe(t *testing.T, w *os.File) int {
	t.Helper()
	if err := w.SetWriteDeadline(time.Now().Add(stallTimeout)); err != nil {
		t.Fatal(err)
	}
	n, err := w.Write(bytes.Repeat([]byte("filler\n"), 1<<16))
	if !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("filling the pipe: %d, %v", n, err)
	}
	if err := w.SetWriteDeadline(time.Time{}); err != nil {
		t.Fatal(err)
	}
	return n
}

func siemFailed(t *testing.T, reg *prometheus.Registry) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != "lockbox_siem_records_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			if m.GetLabel()[0].GetValue() == "failed" {
				return m.GetCounter().GetValue()
			}
		}
	}
	t.Fatal("no failed series")
	return 0
}

// TestSIEMStalledStdout: the log pipeline reading stdout stops reading. A
// pass gives up on the stalled write instead of blocking for good, says so
// (an error that is ErrSinkStalled, the failed count), acknowledges nothing
// it could not write, and once the pipeline reads again every record
// reaches it exactly once, in order. stdout is usually a blocking pipe,
// which takes no write deadline; a pipe that takes one is tried too.
func TestSIEMStalledStdout(t *testing.T) {
	for _, tc := range []struct {
		name string
		wrap func(*os.File) io.Writer
	}{
		{"without write deadlines", func(f *os.File) io.Writer { return struct{ io.Writer }{f} }},
		{"with write deadlines", func(f *os.File) io.Writer { return f }},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			rdb := testRedis(t)
			log := audit.NewLog(rdb, nil)
			tenants := []string{"contoso", "fabrikam"}
			siemAppend(t, rdb, log, 5, tenants...)
			r, w, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			filler := fillPipe(t, w)
			reg := prometheus.NewRegistry()
			fw := newForwarder(t, audit.ForwarderConfig{Redis: rdb, Sink: audit.NewWriterSinkTimeout(tc.wrap(w), stallTimeout),
				Consumer: "r1", BatchSize: 3, Registerer: reg})

			res := returns(t, "a pass over a stalled stdout", func() pollResult { n, err := fw.Poll(ctx); return pollResult{n, err} })
			if res.n != 0 || !errors.Is(res.err, audit.ErrSinkStalled) {
				t.Fatalf("pass over a stalled stdout: wrote %d, %v; want 0 and ErrSinkStalled", res.n, res.err)
			}
			if got := siemFailed(t, reg); got != 1 {
				t.Errorf("failed = %v, want 1 (the pass ends at the stall)", got)
			}
			// The batch it read stays pending: nothing was acknowledged.
			var p int64
			for _, tn := range tenants {
				// A tenant the pass did not reach has no group yet.
				if x, err := rdb.XPending(ctx, keys.Audit(tn), audit.SIEMGroup).Result(); err == nil {
					p += x.Count
				} else if !redis.HasErrorPrefix(err, "NOGROUP") {
					t.Fatal(err)
				}
			}
			if p != 3 {
				t.Errorf("%d records pending after the stalled pass, want its one batch of 3", p)
			}

			// The pipeline reads again.
			var out syncBuffer
			read := make(chan error, 1)
			go func() { _, err := io.Copy(&out, r); read <- err }()
			for i := 0; ; i++ {
				res := returns(t, "a pass", func() pollResult { n, err := fw.Poll(ctx); return pollResult{n, err} })
				if res.err != nil && !errors.Is(res.err, audit.ErrSinkStalled) {
					t.Fatal(res.err)
				}
				if testutil.ToFloat64(siemWritten(t, reg)) == 10 {
					break
				}
				if i == 100 {
					t.Fatal("records still pending after 100 passes")
				}
			}
			w.Close()
			if err := <-read; err != nil {
				t.Fatal(err)
			}
			got := out.String()[filler:]
			lines := strings.Split(strings.TrimSuffix(got, "\n"), "\n")
			want := streamRecords(t, rdb, tenants...)
			gotBy := byTenant(t, lines)
			for _, tn := range tenants {
				if strings.Join(gotBy[tn], "\n") != strings.Join(want[tn], "\n") {
					t.Errorf("%s: the pipeline got\n%q\nwant every record once, in order:\n%q", tn, gotBy[tn], want[tn])
				}
			}
			for _, tn := range tenants {
				if p := pending(t, rdb, tn); p != 0 {
					t.Errorf("%s: %d records pending", tn, p)
				}
			}
		})
	}
}

func siemWritten(t *testing.T, reg *prometheus.Registry) prometheus.Collector {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "x"})
	for _, mf := range mfs {
		if mf.GetName() != "lockbox_siem_records_total" {
			continue
		}
		for _, m := range mf.GetMetric() {
			if m.GetLabel()[0].GetValue() == "written" {
				c.Add(m.GetCounter().GetValue())
			}
		}
	}
	return c
}

// TestSIEMNamedPipeWithoutReader: a file: sink naming a named pipe nobody
// reads yet does not hold up start-up. Forwarding fails (ErrSinkStalled,
// the failed count) and acknowledges nothing until a reader opens the
// pipe, then writes every record.
func TestSIEMNamedPipeWithoutReader(t *testing.T) {
	ctx := context.Background()
	rdb := testRedis(t)
	log := audit.NewLog(rdb, nil)
	siemAppend(t, rdb, log, 3, "contoso")
	path := filepath.Join(t.TempDir(), "siem.fifo")
	if err := syscall.Mkfifo(path, 0o600); err != nil {
		t.Fatal(err)
	}
	type opened struct {
		sink   audit.Sink
		closer io.Closer
		err    error
	}
	o := returns(t, "opening a named pipe without a reader", func() opened {
		s, c, err := audit.OpenSinkTimeout("file:"+path, stallTimeout)
		return opened{s, c, err}
	})
	if o.err != nil {
		t.Fatalf("opening a named pipe without a reader: %v", o.err)
	}
	reg := prometheus.NewRegistry()
	fw := newForwarder(t, audit.ForwarderConfig{Redis: rdb, Sink: o.sink, Consumer: "r1", Registerer: reg})
	if n, err := fw.Poll(ctx); n != 0 || !errors.Is(err, audit.ErrSinkStalled) {
		t.Fatalf("pass without a reader: wrote %d, %v; want 0 and ErrSinkStalled", n, err)
	}
	if got := siemFailed(t, reg); got != 1 {
		t.Errorf("failed = %v, want 1", got)
	}
	if p := pending(t, rdb, "contoso"); p != 3 {
		t.Fatalf("%d pending, want 3", p)
	}
	// A reader opens the pipe (without waiting for a writer).
	r, err := os.OpenFile(path, os.O_RDONLY|syscall.O_NONBLOCK, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if n, err := fw.Poll(ctx); n != 3 || err != nil {
		t.Fatalf("pass with a reader: wrote %d, %v", n, err)
	}
	if err := o.closer.Close(); err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	if want := strings.Join(streamRecords(t, rdb, "contoso")["contoso"], "\n") + "\n"; string(b) != want {
		t.Fatalf("the reader got\n%s\nwant\n%s", b, want)
	}
	if p := pending(t, rdb, "contoso"); p != 0 {
		t.Fatalf("%d pending", p)
	}
}
