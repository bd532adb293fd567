package audit_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/lockbox-oss/lockbox/audit"
	"github.com/lockbox-oss/lockbox/internal/keys"
)

// sealTokens returns the tokens of the seal lines among lines, of tenant's
// seals alone when tenant is not "", in the order the sink took them.
func sealTokens(t *testing.T, lines []string, tenant string) []string {
	t.Helper()
	var out []string
	for _, s := range sealLinesOf(t, lines) {
		if tenant == "" || s.LockboxTenant == tenant {
			out = append(out, s.SealToken)
		}
	}
	return out
}

// TestSIEMSealsStoredWhileTheSinkFailsAllReachIt: a forwarder runs, but its
// sink fails from the tenant's first record on, so no pass gets as far as
// the tenant's seals (they go after its records). The seals stored
// meanwhile must all wait in the seal stream and reach the SIEM, in order,
// once the sink works again. The stream keeps the newest seal alone only
// while no forwarder has reached the tenant (forwarding off, or none
// started yet); a forwarder reaches it at every pass that lists it,
// whatever its sink does. A seal that replaced another unread, uncounted and unlogged,
// would take from the SIEM the state of the chain it vouched for.
func TestSIEMSealsStoredWhileTheSinkFailsAllReachIt(t *testing.T) {
	e := newSealEnv(t, newKey(t))
	reg := prometheus.NewRegistry()
	sealer := e.newSealer(t, reg, nil)
	sink := &memSink{failing: true}
	fw := e.sealForwarder(t, "r1", sink, reg, "")
	tokens := sealThroughFailingSink(t, e, fw, sealer, 3, 2)
	if w := sealsWaiting(t, e.rdb, "contoso"); w != 3 {
		t.Fatalf("%d seals in the stream while the sink failed, want the 3 stored", w)
	}

	sink.set(false, 0)
	for poll(t, fw) > 0 {
	}
	if got := sealTokens(t, sink.got(), "contoso"); !slices.Equal(got, tokens) {
		t.Fatalf("the SIEM got %d seal lines, want the %d stored, in order", len(got), len(tokens))
	}
	for _, c := range []struct {
		name, result string
		want         float64
	}{
		{"lockbox_siem_seals_total", "written", 3},
		{"lockbox_siem_seals_total", "skipped", 0},
		{"lockbox_siem_seals_trimmed_unread_total", "", 0},
	} {
		if got := counter(t, reg, c.name, c.result); got != c.want {
			t.Errorf("%s{%s} = %v, want %v", c.name, c.result, got, c.want)
		}
	}
	if w := sealsWaiting(t, e.rdb, "contoso"); w != 0 {
		t.Errorf("%d seals left in the stream after they were written", w)
	}
}

// stallingSink is a memSink that takes no line while stalled is set, as
// stdout whose reader stopped reading.
type stallingSink struct {
	memSink
	stalled atomic.Bool
}

func (s *stallingSink) Write(line []byte) error {
	if s.stalled.Load() {
		return fmt.Errorf("write: %w", audit.ErrSinkStalled)
	}
	return s.memSink.Write(line)
}

// stalledRounds runs three rounds of a record and a seal for each of
// tenants, each round with a pass of fw over its stalled sink, and returns
// the seals stored, by tenant, in order.
func stalledRounds(t *testing.T, e *sealEnv, fw *audit.Forwarder, tenants []string) map[string][]string {
	t.Helper()
	tokens := map[string][]string{}
	for range 3 {
		for _, tn := range tenants {
			e.write(t, tn, 1)
		}
		if _, err := fw.Poll(context.Background()); !errors.Is(err, audit.ErrSinkStalled) {
			t.Fatalf("a pass over a stalled sink: %v, want ErrSinkStalled", err)
		}
		if n := e.sealAll(t); n != len(tenants) {
			t.Fatalf("sealed %d tenants, want %d", n, len(tenants))
		}
		for _, tn := range tenants {
			tokens[tn] = append(tokens[tn], storedSeal(t, e.rdb, tn))
		}
		e.clock.Advance(time.Minute)
	}
	return tokens
}

// TestSIEMSealsOfTenantsAStalledSinkLeftUnvisited: a stalled sink ends a
// pass at the first tenant it visits, and the other tenants wait for the
// next pass without a visit of their own. A forwarder still reaches them,
// so that their seals, too, wait in their seal streams for the sink and
// reach the SIEM, every one, once it reads again.
func TestSIEMSealsOfTenantsAStalledSinkLeftUnvisited(t *testing.T) {
	e := newSealEnv(t, newKey(t))
	sink := &stallingSink{}
	sink.stalled.Store(true)
	fw := e.sealForwarder(t, "r1", sink, nil, "")
	tenants := []string{"contoso", "fabrikam"}
	tokens := stalledRounds(t, e, fw, tenants)

	sink.stalled.Store(false)
	for poll(t, fw) > 0 {
	}
	for _, tn := range tenants {
		if got := sealTokens(t, sink.got(), tn); !slices.Equal(got, tokens[tn]) {
			t.Errorf("%s: the SIEM got %d seal lines, want the %d stored, in order", tn, len(got), len(tokens[tn]))
		}
	}
}

// TestSIEMSealsPushedOutWhileTheSinkFailsAreCounted: a forwarder whose
// sink fails for longer than the seal stream's bound has reached the
// tenant but read none of its seals; each seal a new one pushes out of the
// full stream never reaches the SIEM, and the sealer must count it
// (lockbox_siem_seals_trimmed_unread_total, which an alert watches) and
// log it at warn. The newest seals stay and reach the SIEM.
func TestSIEMSealsPushedOutWhileTheSinkFailsAreCounted(t *testing.T) {
	e := newSealEnv(t, newKey(t))
	reg := prometheus.NewRegistry()
	var logs syncBuffer
	sealer := e.newSealer(t, reg, slog.New(slog.NewTextHandler(&logs, nil)))
	audit.SetSealsKept(sealer, 2)
	sink := &memSink{failing: true}
	fw := e.sealForwarder(t, "r1", sink, nil, "")
	tokens := sealThroughFailingSink(t, e, fw, sealer, 3, 1)
	if w := sealsWaiting(t, e.rdb, "contoso"); w != 2 {
		t.Fatalf("%d seals in the stream, want its bound, 2", w)
	}
	if u := counter(t, reg, "lockbox_siem_seals_trimmed_unread_total", ""); u != 1 {
		t.Fatalf("lockbox_siem_seals_trimmed_unread_total = %v, want the first seal", u)
	}
	if out := logs.String(); !strings.Contains(out, "level=WARN") || !strings.Contains(out, "tenant=contoso unread=1") {
		t.Fatalf("the sealer's log does not warn of the seal removed unread:\n%s", out)
	}

	sink.set(false, 0)
	for poll(t, fw) > 0 {
	}
	if got := sealTokens(t, sink.got(), "contoso"); !slices.Equal(got, tokens[1:]) {
		t.Fatalf("the SIEM got %d seal lines, want the 2 newest, in order", len(got))
	}
}

// sealThroughFailingSink runs rounds of: records written to contoso, a
// forwarder pass that fails on the sink, and a seal stored; it returns
// the seals stored, oldest first.
func sealThroughFailingSink(t *testing.T, e *sealEnv, fw *audit.Forwarder, sealer *audit.Sealer, rounds, records int) []string {
	t.Helper()
	ctx := context.Background()
	var tokens []string
	for range rounds {
		e.write(t, "contoso", records)
		if _, err := fw.Poll(ctx); err == nil {
			t.Fatal("a pass over a failing sink succeeded")
		}
		if n, err := sealer.SealAll(ctx); n != 1 || err != nil {
			t.Fatalf("sealed %d, %v", n, err)
		}
		tokens = append(tokens, storedSeal(t, e.rdb, "contoso"))
		e.clock.Advance(time.Minute)
	}
	return tokens
}

// TestSIEMSealsAfterTheGroupVanishedWhileTheSinkStalls: the SIEM group
// vanishes from the tenants' streams under a running forwarder that has
// reached them (Redis restored from a snapshot taken before forwarding
// began, or a failover to a replica that never got the group), and its
// sink stalls, so the tenants after the first in each pass get no visit
// whose read would put the group back. A forwarder reaches every tenant
// its passes list, each time, so that their seals still wait in their
// seal streams and all reach the SIEM once the sink reads again: found on
// neither stream, the group would have the sealer keep each tenant's
// newest seal alone, the others replaced unread and uncounted.
func TestSIEMSealsAfterTheGroupVanishedWhileTheSinkStalls(t *testing.T) {
	ctx := context.Background()
	e := newSealEnv(t, newKey(t))
	sink := &stallingSink{}
	var logs syncBuffer
	fw := newForwarder(t, audit.ForwarderConfig{Redis: e.rdb, Sink: sink, Consumer: "r1",
		Now: e.clock.Now, Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	tenants := []string{"contoso", "fabrikam"}
	for _, tn := range tenants {
		e.write(t, tn, 1)
	}
	e.sealAll(t)
	for poll(t, fw) > 0 {
	}
	for _, tn := range tenants {
		for _, s := range []string{keys.Audit(tn), keys.AuditSeals(tn)} {
			if err := e.rdb.XGroupDestroy(ctx, s, audit.SIEMGroup).Err(); err != nil {
				t.Fatal(err)
			}
		}
	}

	sink.stalled.Store(true)
	tokens := stalledRounds(t, e, fw, tenants)
	// Put back, and said: the records and seals retention kept go to the
	// SIEM again.
	for _, tn := range tenants {
		if !strings.Contains(logs.String(), "consumer group vanished") || !strings.Contains(logs.String(), "tenant="+tn) {
			t.Errorf("no warning of the group that vanished from %s's streams:\n%s", tn, logs.String())
		}
	}

	sink.stalled.Store(false)
	before := len(sink.got())
	for poll(t, fw) > 0 {
	}
	got := sink.got()[before:]
	for _, tn := range tenants {
		if g := sealTokens(t, got, tn); !slices.Equal(g, tokens[tn]) {
			t.Errorf("%s: the SIEM got %d seal lines, want the %d stored while the sink stalled, in order", tn, len(g), len(tokens[tn]))
		}
	}
}
