package audit_test

import (
	"context"
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/lockbox-oss/lockbox/audit"
	"github.com/lockbox-oss/lockbox/internal/clock"
	"github.com/lockbox-oss/lockbox/internal/keys"
)

// stalledSink takes no line, as stdout whose reader stopped reading.
type stalledSink struct{}

func (stalledSink) Write([]byte) error { return fmt.Errorf("write: %w", audit.ErrSinkStalled) }

// siemGauge reads a gauge of reg; it fails the test if it is not
// registered.
func siemGauge(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name {
			return mf.GetMetric()[0].GetGauge().GetValue()
		}
	}
	t.Fatalf("%s is not registered", name)
	return 0
}

// entryTime is the time in a stream entry's id, in Unix seconds.
func entryTime(t *testing.T, rdb redis.UniversalClient, tenant string, index int64) float64 {
	t.Helper()
	msgs, err := rdb.XRange(context.Background(), keys.Audit(tenant), "-", "+").Result()
	if err != nil || int64(len(msgs)) <= index {
		t.Fatalf("%s: %d entries, %v", tenant, len(msgs), err)
	}
	ms, err := strconv.ParseInt(strings.Split(msgs[index].ID, "-")[0], 10, 64)
	if err != nil {
		t.Fatal(err)
	}
	return float64(ms) / 1000
}

// TestSIEMBacklogGauges: an SRE must see the SIEM falling behind before
// the security team asks where a day of records went. A sink that takes
// nothing only showed in lockbox_siem_records_total{result="failed"}, and
// forwarding that stopped without a failed write (a pass failing on
// Redis, replicas too slow for the rate records come in) showed nowhere.
// The forwarder reports how many records wait (read and pending, or not
// read yet by any replica) and the time before which every record reached
// the sink: the oldest waiting record's, or, when none waits, when it
// looked.
func TestSIEMBacklogGauges(t *testing.T) {
	ctx := context.Background()
	rdb := testRedis(t)
	log := audit.NewLog(rdb, nil)
	siemAppend(t, rdb, log, 3, "contoso")
	siemAppend(t, rdb, log, 2, "fabrikam")
	clk := clock.NewFake(time.Now())

	// A stalled sink ends the pass at the first tenant: that one's
	// records are pending, the other's were never read (the pass only
	// created its group).
	reg := prometheus.NewRegistry()
	stalled := newForwarder(t, audit.ForwarderConfig{Redis: rdb, Sink: stalledSink{}, Consumer: "r1",
		Now: clk.Now, Registerer: reg})
	if _, err := stalled.Poll(ctx); !errors.Is(err, audit.ErrSinkStalled) {
		t.Fatalf("pass over a stalled sink: %v", err)
	}
	if got := siemGauge(t, reg, "lockbox_siem_backlog_records"); got != 5 {
		t.Errorf("backlog with a stalled sink: %v records, want 5", got)
	}
	oldest := math.Min(entryTime(t, rdb, "contoso", 0), entryTime(t, rdb, "fabrikam", 0))
	if got := siemGauge(t, reg, "lockbox_siem_forwarded_until_timestamp_seconds"); got != oldest {
		t.Errorf("forwarded until %v with a stalled sink, want %v (the oldest record's time)", got, oldest)
	}

	// A healthy replica, batches of one: a pass takes over contoso's 3,
	// forwards 20 of the 25 new ones and leaves 5 that no replica has
	// read yet.
	siemAppend(t, rdb, log, 25, "contoso")
	reg = prometheus.NewRegistry()
	healthy := newForwarder(t, audit.ForwarderConfig{Redis: rdb, Sink: &memSink{}, Consumer: "r2", BatchSize: 1,
		Now: clk.Now, Registerer: reg})
	ageRecords(t, rdb, "contoso", time.Hour) // r1's records are r2's to take over
	clk.Advance(time.Minute)
	if _, err := healthy.Poll(ctx); err != nil {
		t.Fatal(err)
	}
	if got := siemGauge(t, reg, "lockbox_siem_backlog_records"); got != 5 {
		t.Errorf("backlog after a pass that left 5: %v records, want 5", got)
	}
	if got, want := siemGauge(t, reg, "lockbox_siem_forwarded_until_timestamp_seconds"), entryTime(t, rdb, "contoso", 23); got != want {
		t.Errorf("forwarded until %v, want %v (the first record no replica read)", got, want)
	}

	// Everything forwarded: nothing waits, as of when it looked.
	clk.Advance(time.Minute)
	for range 3 {
		if _, err := healthy.Poll(ctx); err != nil {
			t.Fatal(err)
		}
	}
	if got := siemGauge(t, reg, "lockbox_siem_backlog_records"); got != 0 {
		t.Errorf("backlog once all is forwarded: %v records, want 0", got)
	}
	if got, want := siemGauge(t, reg, "lockbox_siem_forwarded_until_timestamp_seconds"), float64(clk.Now().UnixMilli())/1000; got != want {
		t.Errorf("forwarded until %v once all is forwarded, want %v (when it looked)", got, want)
	}
}
