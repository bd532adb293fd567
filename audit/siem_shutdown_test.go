package audit_test

import (
	"context"
	"strings"
	"sync"
	"testing"

	"github.com/lockbox-oss/lockbox/audit"
)

// cancelSink is a memSink that cancels the forwarder's context at its
// first line: the replica is told to shut down in the middle of a batch.
type cancelSink struct {
	memSink
	once   sync.Once
	cancel context.CancelFunc
}

func (s *cancelSink) Write(line []byte) error {
	err := s.memSink.Write(line)
	s.once.Do(s.cancel)
	return err
}

// TestSIEMShutdownMidBatchWritesEachRecordOnce: a replica shut down (its
// context canceled) while it writes a batch acknowledges the lines its
// sink took, so that they are not written again when it, or another
// replica, forwards next. Only a replica that dies between writing and
// acknowledging may repeat a record.
func TestSIEMShutdownMidBatchWritesEachRecordOnce(t *testing.T) {
	rdb := testRedis(t)
	log := audit.NewLog(rdb, nil)
	siemAppend(t, rdb, log, 5, "contoso")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	sink := &cancelSink{cancel: cancel}
	fw := newForwarder(t, audit.ForwarderConfig{Redis: rdb, Sink: sink, Consumer: "r1"})
	if err := fw.Run(ctx); err != nil {
		t.Fatal(err)
	}
	first := sink.got()
	if len(first) == 0 {
		t.Fatal("the sink took no line before the shutdown")
	}
	if p := pending(t, rdb, "contoso"); p > int64(5-len(first)) {
		t.Fatalf("%d records pending after the shutdown, though the sink took %d of 5", p, len(first))
	}
	// The replica starts again (same consumer name) and forwards the rest.
	again := &memSink{}
	fw = newForwarder(t, audit.ForwarderConfig{Redis: rdb, Sink: again, Consumer: "r1"})
	if _, err := fw.Poll(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := append(first, again.got()...)
	want := streamRecords(t, rdb, "contoso")["contoso"]
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Fatalf("lines across the shutdown:\n%s\nwant each record once:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}
