package audit_test

import (
	"context"
	"errors"
	"log/slog"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/lockbox-oss/lockbox/audit"
	"github.com/lockbox-oss/lockbox/internal/clock"
	"github.com/lockbox-oss/lockbox/internal/keys"
)

// heldSink holds its first write until release is closed, as a sink
// taking its time (an fsync, a slow log pipeline) does.
type heldSink struct {
	memSink
	entered chan struct{}
	release chan struct{}
	held    bool
}

func newHeldSink() *heldSink {
	return &heldSink{entered: make(chan struct{}), release: make(chan struct{})}
}

func (s *heldSink) Write(line []byte) error {
	s.mu.Lock()
	first := !s.held
	s.held = true
	s.mu.Unlock()
	if first {
		close(s.entered)
		<-s.release
	}
	return s.memSink.Write(line)
}

// TestSIEMReplicasSharingAConsumerNameWriteNothingTwice: two live
// replicas with one LOCKBOX_SIEM_CONSUMER (two units on one host, both
// named by the host name; a pod name reused) were one consumer to Redis.
// While one wrote a batch, the other's pass, on the same tenant (marked
// again by a new record), read that batch as its own pending records and
// wrote it too: every record in flight reached the SIEM twice, with no
// failure anywhere. A name another live replica holds must not forward;
// its pass fails, saying so, and nothing is written twice. Once the
// holder stops, or its hold lapses (it died), the name forwards again.
func TestSIEMReplicasSharingAConsumerNameWriteNothingTwice(t *testing.T) {
	ctx := context.Background()
	rdb := testRedis(t)
	log := audit.NewLog(rdb, nil)
	siemAppend(t, rdb, log, 5, "contoso")

	held := newHeldSink()
	a := newForwarder(t, audit.ForwarderConfig{Redis: rdb, Sink: held, Consumer: "host", ClaimAfter: time.Minute})
	other := &memSink{}
	b := newForwarder(t, audit.ForwarderConfig{Redis: rdb, Sink: other, Consumer: "host", ClaimAfter: time.Minute})

	done := make(chan pollResult, 1)
	go func() {
		n, err := a.Poll(ctx)
		done <- pollResult{n, err}
	}()
	<-held.entered // a holds 5 records, writing the first
	siemAppend(t, rdb, log, 1, "contoso")
	n, err := b.Poll(ctx)
	close(held.release)
	if res := <-done; res.err != nil || res.n != 5 {
		t.Fatalf("the first replica's pass wrote %d, %v; want its 5", res.n, res.err)
	}
	if !errors.Is(err, audit.ErrConsumerInUse) || n != 0 {
		t.Errorf("pass under a name another live replica holds: wrote %d, %v; want 0 and ErrConsumerInUse", n, err)
	}
	if _, err := a.Poll(ctx); err != nil {
		t.Fatal(err)
	}
	want := streamRecords(t, rdb, "contoso")["contoso"]
	got := append(held.got(), other.got()...)
	slices.Sort(got)
	for i := 1; i < len(got); i++ {
		if got[i] == got[i-1] {
			t.Fatalf("a record was written twice (%d lines for %d records): %s", len(got), len(want), got[i])
		}
	}
	if len(got) != len(want) {
		t.Fatalf("%d lines for %d records", len(got), len(want))
	}

	// a stops: its name is free at once.
	stopped, cancel := context.WithCancel(ctx)
	cancel()
	if err := a.Run(stopped); err != nil {
		t.Fatal(err)
	}
	siemAppend(t, rdb, log, 1, "contoso")
	if n, err := b.Poll(ctx); err != nil || n != 1 {
		t.Fatalf("after the holder stopped: wrote %d, %v; want 1", n, err)
	}

	// b dies without stopping: a replica started under its name waits
	// until b's hold lapses (deleted here, as its expiry does).
	c := newForwarder(t, audit.ForwarderConfig{Redis: rdb, Sink: &memSink{}, Consumer: "host", ClaimAfter: time.Minute})
	if _, err := c.Poll(ctx); !errors.Is(err, audit.ErrConsumerInUse) {
		t.Fatalf("a dead replica's hold still on: %v, want ErrConsumerInUse", err)
	} else if !strings.Contains(err.Error(), `"host"`) {
		t.Errorf("the refusal does not name the consumer: %v", err)
	}
	if err := rdb.Del(ctx, keys.SIEMConsumer("host")).Err(); err != nil {
		t.Fatal(err)
	}
	siemAppend(t, rdb, log, 1, "contoso")
	if n, err := c.Poll(ctx); err != nil || n != 1 {
		t.Fatalf("once the dead replica's hold lapsed: wrote %d, %v; want 1", n, err)
	}
}

// TestSIEMRunSaysALiveHolderOfItsNameIsAnError: a replica refused its
// consumer name says so at warn (the holder may be its own previous
// process, dead, whose hold lapses within ClaimAfter), and at error once
// the refusal has lasted ClaimAfter by its clock: the holder is alive,
// and this replica forwards nothing until someone renames one of them.
func TestSIEMRunSaysALiveHolderOfItsNameIsAnError(t *testing.T) {
	rdb := testRedis(t)
	siemAppend(t, rdb, audit.NewLog(rdb, nil), 1, "contoso")
	holder := newForwarder(t, audit.ForwarderConfig{Redis: rdb, Sink: &memSink{}, Consumer: "host"})
	if _, err := holder.Poll(context.Background()); err != nil {
		t.Fatal(err)
	}
	clk := clock.NewFake(time.Now())
	var logs syncBuffer
	fw := newForwarder(t, audit.ForwarderConfig{Redis: rdb, Sink: &memSink{}, Consumer: "host", Block: time.Millisecond,
		ClaimAfter: time.Minute, Now: clk.Now, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- fw.Run(ctx) }()
	refusals := func() int { return strings.Count(logs.String(), "consumer name is held") }
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(time.Millisecond) {
			if time.Now().After(deadline) {
				cancel()
				<-done
				t.Fatalf("waited 10s for %s; log:\n%s", what, logs.String())
			}
		}
	}
	waitFor("the refusal logged", func() bool { return refusals() == 1 })
	clk.Advance(time.Minute)
	waitFor("the refusal logged again", func() bool { return refusals() == 2 })
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	var lines []string
	for l := range strings.Lines(logs.String()) {
		if strings.Contains(l, "consumer name is held") {
			lines = append(lines, l)
		}
	}
	if len(lines) != 2 || !strings.Contains(lines[0], "level=WARN") || !strings.Contains(lines[1], "level=ERROR") {
		t.Fatalf("the refusal logged as:\n%s\nwant at warn, then at error once it lasted ClaimAfter", logs.String())
	}
	if !strings.Contains(lines[1], "failing_for=1m0s") || !strings.Contains(lines[1], "pid ") {
		t.Errorf("the error does not say how long, or who holds the name:\n%s", lines[1])
	}
	// The refused replica, stopping, left the holder its hold.
	if n, err := rdb.Exists(context.Background(), keys.SIEMConsumer("host")).Result(); err != nil || n != 1 {
		t.Errorf("the holder's hold after the refused replica stopped: %d, %v; want it there", n, err)
	}
}
