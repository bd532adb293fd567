package audit_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/lockbox-oss/lockbox/audit"
	"github.com/lockbox-oss/lockbox/internal/clock"
)

// TestSIEMRecordsTrimmedUnreadAreCounted: records retention trims before
// any forwarder read them (the forwarders were down for the whole
// retention period) never reach the SIEM. Nothing else will ever know of
// them, so the trim counts them and says so; records the group already
// read (forwarded, or pending and counted as skipped by the forwarder)
// are not counted again.
func TestSIEMRecordsTrimmedUnreadAreCounted(t *testing.T) {
	ctx := context.Background()
	rdb := testRedis(t)
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c := clock.NewFake(t0)
	log := audit.NewLog(rdb, c.Now)
	reg := prometheus.NewRegistry()
	logs := &syncBuffer{}
	if err := log.ReportSIEMTrims(reg, slog.New(slog.NewTextHandler(logs, nil))); err != nil {
		t.Fatal(err)
	}
	siemAppend(t, rdb, log, 2, "contoso")
	sink := &memSink{}
	fw := newForwarder(t, audit.ForwarderConfig{Redis: rdb, Sink: sink, Consumer: "r1", Registerer: reg, Now: c.Now})
	if n, err := fw.Poll(ctx); err != nil || n != 2 {
		t.Fatalf("forwarded %d, %v", n, err)
	}
	// The forwarders stop; three more records, then one read and left
	// pending (its write failed), then retention trims all of them.
	c.Advance(time.Hour)
	siemAppend(t, rdb, log, 1, "contoso")
	sink.set(true, 0)
	if _, err := fw.Poll(ctx); err == nil {
		t.Fatal("pass with the sink down succeeded")
	}
	siemAppend(t, rdb, log, 3, "contoso")
	c.Advance(time.Hour)
	if n, err := log.Trim(ctx, "contoso", c.Now()); err != nil || n != 6 {
		t.Fatalf("trimmed %d, %v", n, err)
	}
	if got := counterValue(t, reg, "lockbox_siem_records_trimmed_unread_total"); got != 3 {
		t.Fatalf("lockbox_siem_records_trimmed_unread_total = %v, want the 3 records no forwarder read", got)
	}
	if !strings.Contains(logs.String(), "level=WARN") || !strings.Contains(logs.String(), "unread=3") {
		t.Fatalf("no warning names the records the SIEM never got: %q", logs.String())
	}
	// Trimming again finds nothing more; the record read and left pending
	// is the forwarder's to count, as skipped.
	if _, err := log.Trim(ctx, "contoso", c.Now()); err != nil {
		t.Fatal(err)
	}
	sink.set(false, 0)
	if _, err := fw.Poll(ctx); err != nil {
		t.Fatal(err)
	}
	if got := counterValue(t, reg, "lockbox_siem_records_trimmed_unread_total"); got != 3 {
		t.Fatalf("lockbox_siem_records_trimmed_unread_total = %v after a second trim, want 3", got)
	}
	if got := skippedOf(t, reg); got != 1 {
		t.Fatalf("skipped %v, want the 1 pending record", got)
	}
}

// With the SIEM on, a trim of a tenant's log that no forwarder ever
// visited (they were down since the tenant's first record, for the whole
// retention period) counts every record it removes: none reached the
// SIEM, and the stream has no SIEM group yet to say so. Without
// ReportSIEMTrims (the SIEM is off) nothing is counted: there is no SIEM
// to miss them.
func TestSIEMTrimBeforeAnyForwarderCountsEveryRecord(t *testing.T) {
	ctx := context.Background()
	for _, siemOn := range []bool{true, false} {
		t.Run(fmt.Sprintf("siem on=%v", siemOn), func(t *testing.T) {
			rdb := testRedis(t)
			t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
			c := clock.NewFake(t0)
			log := audit.NewLog(rdb, c.Now)
			reg := prometheus.NewRegistry()
			logs := &syncBuffer{}
			if siemOn {
				if err := log.ReportSIEMTrims(reg, slog.New(slog.NewTextHandler(logs, nil))); err != nil {
					t.Fatal(err)
				}
			}
			siemAppend(t, rdb, log, 3, "contoso")
			c.Advance(time.Hour)
			siemAppend(t, rdb, log, 1, "contoso")
			if n, err := log.Trim(ctx, "contoso", t0.Add(time.Minute)); err != nil || n != 3 {
				t.Fatalf("trimmed %d, %v", n, err)
			}
			if !siemOn {
				if mfs, _ := reg.Gather(); len(mfs) != 0 {
					t.Fatalf("the SIEM is off, and %d series were registered", len(mfs))
				}
				return
			}
			if got := counterValue(t, reg, "lockbox_siem_records_trimmed_unread_total"); got != 3 {
				t.Fatalf("lockbox_siem_records_trimmed_unread_total = %v, want the 3 records no forwarder ever read", got)
			}
			if !strings.Contains(logs.String(), "unread=3") {
				t.Fatalf("no warning names the records the SIEM never got: %q", logs.String())
			}
			// The forwarder that comes back forwards the one record left,
			// and a later trim counts nothing more.
			sink := &memSink{}
			fw := newForwarder(t, audit.ForwarderConfig{Redis: rdb, Sink: sink, Consumer: "r1", Now: c.Now})
			if n, err := fw.Poll(ctx); err != nil || n != 1 {
				t.Fatalf("forwarded %d, %v", n, err)
			}
			c.Advance(time.Hour)
			if n, err := log.Trim(ctx, "contoso", c.Now()); err != nil || n != 1 {
				t.Fatalf("second trim removed %d, %v", n, err)
			}
			if got := counterValue(t, reg, "lockbox_siem_records_trimmed_unread_total"); got != 3 {
				t.Fatalf("lockbox_siem_records_trimmed_unread_total = %v after trimming a forwarded record, want 3", got)
			}
		})
	}
}

// counterValue reads the unlabelled counter registered under name.
func counterValue(t *testing.T, reg *prometheus.Registry, name string) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() == name && len(mf.GetMetric()) == 1 {
			return mf.GetMetric()[0].GetCounter().GetValue()
		}
	}
	t.Fatalf("%s is not registered", name)
	return 0
}

func skippedOf(t *testing.T, reg *prometheus.Registry) float64 {
	t.Helper()
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		for _, mt := range mf.GetMetric() {
			if mf.GetName() == "lockbox_siem_records_total" && mt.GetLabel()[0].GetValue() == "skipped" {
				return mt.GetCounter().GetValue()
			}
		}
	}
	return -1
}
