package health

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/lockbox-oss/lockbox/internal/redistest"
)

func get(t *testing.T, h http.Handler, path string) (int, string) {
	t.Helper()
	srv := httptest.NewServer(h)
	defer srv.Close()
	resp, err := srv.Client().Get(srv.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp.StatusCode, string(body)
}

func ok(context.Context) error { return nil }

func TestLivez(t *testing.T) {
	failing := Check{Name: "redis", Func: func(context.Context) error { return errors.New("down") }}
	// Liveness does not depend on readiness checks.
	code, body := get(t, Handler(prometheus.NewRegistry(), failing), "/livez")
	if code != http.StatusOK || body != "ok\n" {
		t.Errorf("/livez = %d %q", code, body)
	}
}

func TestMetricsFromGivenRegistryOnly(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "lockbox_test_total", Help: "test"})
	reg.MustRegister(c)
	c.Add(3)
	code, body := get(t, Handler(reg), "/metrics")
	if code != http.StatusOK || !strings.Contains(body, "lockbox_test_total 3") {
		t.Errorf("/metrics = %d %q", code, body)
	}
	// The default registry's Go collector is not exposed.
	if strings.Contains(body, "go_goroutines") {
		t.Error("/metrics serves the default registry")
	}
}

func TestReadyz(t *testing.T) {
	tests := []struct {
		name   string
		checks []Check
		code   int
		body   string
	}{
		{"no checks", nil, http.StatusOK, "ok\n"},
		{"all pass", []Check{{Name: "redis", Func: ok}, {Name: "policy", Func: ok}}, http.StatusOK, "ok\n"},
		{"one fails", []Check{
			{Name: "redis", Func: ok},
			{Name: "policy", Func: func(context.Context) error { return errors.New("no policy loaded") }},
		}, http.StatusServiceUnavailable, "policy: no policy loaded\n"},
		{"all fail, in order", []Check{
			{Name: "redis", Func: func(context.Context) error { return errors.New("dial tcp: refused") }},
			{Name: "policy", Func: func(context.Context) error { return errors.New("compile error:\n  line 3") }},
		}, http.StatusServiceUnavailable, "redis: dial tcp: refused\npolicy: compile error: line 3\n"},
		{"panic", []Check{{Name: "policy", Func: func(context.Context) error { panic("secret internals") }}},
			http.StatusServiceUnavailable, "policy: check panicked\n"},
		{"degraded passes", []Check{
			{Name: "redis", Func: func(context.Context) error {
				return &Degraded{Err: errors.New("master 10.0.3.7:6379: OOM command not allowed")}
			}},
			{Name: "policy", Func: ok},
		}, http.StatusOK, "ok\n"},
		{"degraded beside a failure", []Check{
			{Name: "redis", Func: func(context.Context) error { return &Degraded{Err: errors.New("master 10.0.3.7:6379: OOM")} }},
			{Name: "policy", Func: func(context.Context) error { return errors.New("no policy loaded") }},
		}, http.StatusServiceUnavailable, "policy: no policy loaded\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := get(t, Handler(prometheus.NewRegistry(), tt.checks...), "/readyz")
			if code != tt.code || body != tt.body {
				t.Errorf("/readyz = %d %q, want %d %q", code, body, tt.code, tt.body)
			}
		})
	}
}

// A hanging dependency gives a 503 after CheckTimeout, whether its check
// honours its ctx or not. This test takes about one second.
func TestReadyzHangingCheck(t *testing.T) {
	block := make(chan struct{})
	defer close(block)
	checks := []Check{
		{Name: "ctx", Func: func(ctx context.Context) error { <-ctx.Done(); return ctx.Err() }},
		{Name: "stuck", Func: func(context.Context) error { <-block; return nil }},
		{Name: "fine", Func: ok},
	}
	start := time.Now()
	code, body := get(t, Handler(prometheus.NewRegistry(), checks...), "/readyz")
	elapsed := time.Since(start)
	want := "ctx: context deadline exceeded\nstuck: no answer within 1s\n"
	if code != http.StatusServiceUnavailable || body != want {
		t.Errorf("/readyz = %d %q, want 503 %q", code, body, want)
	}
	if elapsed < CheckTimeout || elapsed > CheckTimeout+time.Second {
		t.Errorf("/readyz took %v", elapsed)
	}
}

func TestRedisCheck(t *testing.T) {
	c := redistest.Client(t)
	code, body := get(t, Handler(prometheus.NewRegistry(), RedisCheck(c)), "/readyz")
	if code != http.StatusOK || body != "ok\n" {
		t.Errorf("/readyz with Redis up = %d %q", code, body)
	}
}

// TestRedisCheckWritable: /readyz says ready only where Lockbox can write.
// Every role writes (audit records, transitions, sweeps), and a stale
// address after a failover points at the old master, now a replica: it
// answers PING, but refuses every write with READONLY. A replica set to
// take writes is refused too: what Lockbox wrote there would be lost.
func TestRedisCheckWritable(t *testing.T) {
	primary := redistest.StartServer(t)
	host, port, _ := strings.Cut(primary.Addr, ":")
	replica := redistest.StartServer(t, "--replicaof", host, port)
	// A replica that takes writes: they stay on it and never reach the
	// primary, so a Lockbox pointed at it by mistake must not say ready.
	writable := redistest.StartServer(t, "--replicaof", host, port, "--replica-read-only", "no")
	// A Redis that refuses writes while no replica confirms them.
	lonely := redistest.StartServer(t, "--min-replicas-to-write", "1")
	// A Redis past its memory limit that evicts nothing: it still takes a
	// delete, but refuses every write that may grow memory, the audit
	// log's XADD among them.
	full := redistest.StartServer(t, "--maxmemory", "1", "--maxmemory-policy", "noeviction")

	// An ACL user as a deployment may give Lockbox: its keys only, and no
	// @admin or @dangerous command (ROLE, INFO, CONFIG).
	ctx := context.Background()
	// ACL users are not replicated: the writable replica gets its own.
	for _, addr := range []string{primary.Addr, writable.Addr, full.Addr} {
		admin := redis.NewClient(&redis.Options{Addr: addr})
		defer admin.Close()
		if err := admin.Do(ctx, "ACL", "SETUSER", "lockbox", "on", ">secret-pass", "~lockbox:*", "&*",
			"+@all", "-@admin", "-@dangerous").Err(); err != nil {
			t.Fatal(err)
		}
	}

	tests := []struct {
		name string
		opts redis.Options
		code int
		body string
	}{
		{"primary", redis.Options{Addr: primary.Addr}, http.StatusOK, "ok\n"},
		{"primary, restricted user", redis.Options{Addr: primary.Addr, Username: "lockbox", Password: "secret-pass"},
			http.StatusOK, "ok\n"},
		{"read-only replica", redis.Options{Addr: replica.Addr}, http.StatusServiceUnavailable,
			"redis: read-only replica: writes are refused (READONLY)\n"},
		{"writable replica", redis.Options{Addr: writable.Addr}, http.StatusServiceUnavailable,
			"redis: writable replica: writes stay on it and never reach the master\n"},
		{"writable replica, restricted user", redis.Options{Addr: writable.Addr, Username: "lockbox", Password: "secret-pass"},
			http.StatusServiceUnavailable, "redis: writable replica: writes stay on it and never reach the master\n"},
		{"writable replica, RESP2", redis.Options{Addr: writable.Addr, Protocol: 2}, http.StatusServiceUnavailable,
			"redis: writable replica: writes stay on it and never reach the master\n"},
		{"primary, RESP2", redis.Options{Addr: primary.Addr, Protocol: 2}, http.StatusOK, "ok\n"},
		{"too few replicas", redis.Options{Addr: lonely.Addr}, http.StatusServiceUnavailable,
			"redis: NOREPLICAS Not enough good replicas to write.\n"},
		{"out of memory", redis.Options{Addr: full.Addr}, http.StatusServiceUnavailable,
			"redis: OOM command not allowed when used memory > 'maxmemory'.\n"},
		{"out of memory, restricted user", redis.Options{Addr: full.Addr, Username: "lockbox", Password: "secret-pass"},
			http.StatusServiceUnavailable, "redis: OOM command not allowed when used memory > 'maxmemory'.\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := tt.opts
			o.ContextTimeoutEnabled, o.MaxRetries = true, -1
			c := redis.NewClient(&o)
			defer c.Close()
			code, body := get(t, Handler(prometheus.NewRegistry(), RedisCheck(c)), "/readyz")
			if code != tt.code || body != tt.body {
				t.Errorf("/readyz = %d %q, want %d %q", code, body, tt.code, tt.body)
			}
			if strings.Contains(body, "secret-pass") {
				t.Errorf("/readyz shows the password: %q", body)
			}
		})
	}

	// The probes wrote nothing: no key, and no change for the AOF or the
	// replicas.
	admin := redis.NewClient(&redis.Options{Addr: primary.Addr})
	defer admin.Close()
	before := changes(t, admin)
	c := redis.NewClient(&redis.Options{Addr: primary.Addr})
	defer c.Close()
	for range 3 {
		if code, body := get(t, Handler(prometheus.NewRegistry(), RedisCheck(c)), "/readyz"); code != http.StatusOK {
			t.Fatalf("/readyz = %d %q", code, body)
		}
	}
	if after := changes(t, admin); after != before {
		t.Errorf("three probes made %d changes, want none", after-before)
	}
	if n := admin.DBSize(ctx).Val(); n != 0 {
		t.Errorf("the probes left %d keys", n)
	}

	// Should the probe's key ever exist, the probe removes what it added
	// to, and the next one writes nothing again.
	if err := admin.XAdd(ctx, &redis.XAddArgs{Stream: "lockbox:readyz", Values: []any{"x", "1"}}).Err(); err != nil {
		t.Fatal(err)
	}
	for range 2 {
		if code, body := get(t, Handler(prometheus.NewRegistry(), RedisCheck(c)), "/readyz"); code != http.StatusOK {
			t.Fatalf("/readyz with the probe's key present = %d %q", code, body)
		}
	}
	if n := admin.DBSize(ctx).Val(); n != 0 {
		t.Errorf("the probes left %d keys", n)
	}
}

// changes is the number of changes c's server made since its last save.
func changes(t *testing.T, c *redis.Client) int {
	t.Helper()
	info, err := c.Info(context.Background(), "persistence").Result()
	if err != nil {
		t.Fatal(err)
	}
	for line := range strings.Lines(info) {
		if v, ok := strings.CutPrefix(strings.TrimSpace(line), "rdb_changes_since_last_save:"); ok {
			n, err := strconv.Atoi(v)
			if err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatal("INFO persistence without rdb_changes_since_last_save")
	return 0
}

func TestRedisCheckUnreachable(t *testing.T) {
	// A port nothing listens on: bind one, then close it.
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	// No retries, so the refusal itself is reported rather than the
	// deadline the retries run into.
	c := redis.NewUniversalClient(&redis.UniversalOptions{
		Addrs: []string{addr}, ContextTimeoutEnabled: true, MaxRetries: -1,
	})
	defer c.Close()
	code, body := get(t, Handler(prometheus.NewRegistry(), RedisCheck(c)), "/readyz")
	if code != http.StatusServiceUnavailable || !strings.HasPrefix(body, "redis: ") ||
		!strings.Contains(body, "refused") {
		t.Errorf("/readyz with Redis down = %d %q", code, body)
	}
}

func TestUnknownPathAndMethod(t *testing.T) {
	h := Handler(prometheus.NewRegistry())
	if code, _ := get(t, h, "/healthz"); code != http.StatusNotFound {
		t.Errorf("/healthz = %d", code)
	}
	srv := httptest.NewServer(h)
	defer srv.Close()
	resp, err := srv.Client().Post(srv.URL+"/livez", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /livez = %d", resp.StatusCode)
	}
}

func TestHandlerRefusesNilGatherer(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("Handler(nil) did not panic")
		}
	}()
	Handler(nil)
}

// TestOwnSlot: the slot a master is asked about is one it owns and is not
// moving to or from another node, whose key would be answered with ASK.
func TestOwnSlot(t *testing.T) {
	const (
		me    = "07c37dfeb235213a872192d90877d0cd55635b91 127.0.0.1:30004@31004 myself,master - 0 0 4 connected"
		other = "67ed2db8d677e59ec4a4cefb06858cf2a1a89fa1 127.0.0.1:30002@31002 master - 0 1426238316232 2 connected 5461-10922\n"
	)
	for _, tt := range []struct {
		name, nodes string
		want        int
	}{
		{"range", other + me + " 0-5460\n", 0},
		{"single slot", me + " 7\n", 7},
		{"first slot moving out", me + " 100-200 [100->-67ed2db8d677e59ec4a4cefb06858cf2a1a89fa1]\n", 101},
		{"slot moving in, then a range", me + " [5-<-67ed2db8d677e59ec4a4cefb06858cf2a1a89fa1] 5 9-10\n", 9},
		{"every slot moving", me + " 3 [3->-67ed2db8d677e59ec4a4cefb06858cf2a1a89fa1]\n", -1},
		{"no slot", other + me + "\n", -1},
		{"no myself line", other, -1},
		{"replica flags", "07c37d 127.0.0.1:30004@31004 myself,slave 67ed2d 0 0 4 connected\n", -1},
		{"out of range", me + " 16384-20000 12\n", 12},
	} {
		if got := ownSlot(tt.nodes); got != tt.want {
			t.Errorf("%s: ownSlot = %d, want %d", tt.name, got, tt.want)
		}
	}
}

// TestLogged: a check's failures reach the log once for each change of
// its answer, with the check and the reason, and its return to passing
// once, naming what it had failed for; a probe that answers as the one
// before logs nothing.
func TestLogged(t *testing.T) {
	var buf bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&buf, nil))
	answers := []error{
		nil,
		errors.New("OOM command not allowed\nwhen used memory > 'maxmemory'."),
		errors.New("OOM command not allowed when used memory > 'maxmemory'."), // the same, on one line
		errors.New("dial tcp 10.0.0.1:6379: connect: connection refused"),
		nil,
		nil,
	}
	i := 0
	c := Logged(logger, Check{Name: "redis", Func: func(context.Context) error { err := answers[i]; i++; return err }})
	h := Handler(prometheus.NewRegistry(), c)
	for range answers {
		get(t, h, "/readyz")
	}
	type line struct {
		Level, Msg, Check, Error, Was string
	}
	var got []line
	dec := json.NewDecoder(&buf)
	for dec.More() {
		var l line
		if err := dec.Decode(&l); err != nil {
			t.Fatal(err)
		}
		got = append(got, l)
	}
	const oom = "OOM command not allowed when used memory > 'maxmemory'."
	want := []line{
		{Level: "WARN", Msg: "readiness check failing: /readyz answers 503", Check: "redis", Error: oom},
		{Level: "WARN", Msg: "readiness check failing: /readyz answers 503", Check: "redis", Error: "dial tcp 10.0.0.1:6379: connect: connection refused"},
		{Level: "INFO", Msg: "readiness check passing again", Check: "redis", Was: "dial tcp 10.0.0.1:6379: connect: connection refused"},
	}
	if !slices.Equal(got, want) {
		t.Errorf("log lines:\n got %+v\nwant %+v", got, want)
	}
}

// TestLoggedDegraded: a check that passes degraded is logged as a failure
// is, once for each change, with its own message (/readyz answers 200),
// and its return to a full pass once, naming what it was; a failure and
// a degraded pass with the same words are two answers.
func TestLoggedDegraded(t *testing.T) {
	var buf bytes.Buffer
	logger := slog.New(slog.NewJSONHandler(&buf, nil))
	const (
		a = "master 10.0.3.7:6379: OOM command not allowed when used memory > 'maxmemory'."
		b = "master 10.0.3.7:6379: NOREPLICAS Not enough good replicas to write."
	)
	answers := []struct {
		err  error
		code int
	}{
		{nil, http.StatusOK},
		{&Degraded{Err: errors.New(a)}, http.StatusOK},
		{&Degraded{Err: errors.New(a)}, http.StatusOK},
		{&Degraded{Err: errors.New(b)}, http.StatusOK},
		{errors.New(b), http.StatusServiceUnavailable},
		{&Degraded{Err: errors.New(b)}, http.StatusOK},
		{nil, http.StatusOK},
		{nil, http.StatusOK},
	}
	i := 0
	c := Logged(logger, Check{Name: "redis", Func: func(context.Context) error { err := answers[i].err; i++; return err }})
	h := Handler(prometheus.NewRegistry(), c)
	for _, ans := range answers {
		if code, body := get(t, h, "/readyz"); code != ans.code {
			t.Errorf("/readyz answering %v = %d %q, want %d", ans.err, code, body, ans.code)
		}
	}
	type line struct {
		Level, Msg, Check, Error, Was string
	}
	var got []line
	dec := json.NewDecoder(&buf)
	for dec.More() {
		var l line
		if err := dec.Decode(&l); err != nil {
			t.Fatal(err)
		}
		got = append(got, l)
	}
	const (
		degraded = "readiness check degraded: /readyz answers 200"
		failing  = "readiness check failing: /readyz answers 503"
	)
	want := []line{
		{Level: "WARN", Msg: degraded, Check: "redis", Error: a},
		{Level: "WARN", Msg: degraded, Check: "redis", Error: b},
		{Level: "WARN", Msg: failing, Check: "redis", Error: b},
		{Level: "WARN", Msg: degraded, Check: "redis", Error: b},
		{Level: "INFO", Msg: "readiness check no longer degraded", Check: "redis", Was: b},
	}
	if !slices.Equal(got, want) {
		t.Errorf("log lines:\n got %+v\nwant %+v", got, want)
	}
}

// TestChecksMetrics: a check's own metrics are served on /metrics with
// the registry's, and keep what the check set at its last probe.
func TestChecksMetrics(t *testing.T) {
	reg := prometheus.NewRegistry()
	c := prometheus.NewCounter(prometheus.CounterOpts{Name: "lockbox_test_total", Help: "test"})
	reg.MustRegister(c)
	c.Add(3)
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "lockbox_test_check", Help: "test"})
	h := Handler(reg, Check{Name: "redis", Metrics: g, Func: func(context.Context) error { g.Set(2); return nil }})
	get(t, h, "/readyz")
	code, body := get(t, h, "/metrics")
	if code != http.StatusOK || !strings.Contains(body, "\nlockbox_test_total 3\n") || !strings.Contains(body, "\nlockbox_test_check 2\n") {
		t.Errorf("/metrics = %d %q, want lockbox_test_total 3 and lockbox_test_check 2", code, body)
	}
}

// TestProbe: Probe runs the checks at once and at each wait's end, with
// nothing asking /readyz, so what they keep is current where nothing
// probes (systemd): the gauge a check sets moves on /metrics, and Logged
// logs each change. Before, both moved only with /readyz, and a Redis
// Cluster master refusing writes never raised its gauge, nor its alert.
// It returns once ctx ends, and a stop in the middle of a probe is no
// failure to log.
func TestProbe(t *testing.T) {
	var buf lockedBuffer
	logger := slog.New(slog.NewJSONHandler(&buf, nil))
	g := prometheus.NewGauge(prometheus.GaugeOpts{Name: "lockbox_test_check", Help: "test"})
	var (
		mu     sync.Mutex
		answer error
	)
	ran := make(chan struct{})
	stopping := make(chan struct{})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := Logged(logger, Check{Name: "redis", Metrics: g, Func: func(pctx context.Context) error {
		mu.Lock()
		err := answer
		mu.Unlock()
		if err != nil {
			g.Set(1)
		} else {
			g.Set(0)
		}
		select {
		case ran <- struct{}{}:
			return err
		case <-stopping:
			// The stop came in the middle of this probe: its context
			// must still be live, or the check would report the stop.
			return pctx.Err()
		}
	}})
	h := Handler(prometheus.NewRegistry(), c)
	gauge := func() string {
		t.Helper()
		_, body := get(t, h, "/metrics")
		for line := range strings.Lines(body) {
			if v, ok := strings.CutPrefix(strings.TrimSpace(line), "lockbox_test_check "); ok {
				return v
			}
		}
		t.Fatalf("/metrics has no lockbox_test_check: %q", body)
		return ""
	}
	waiting := make(chan time.Duration)
	tick := make(chan time.Time)
	after := func(d time.Duration) <-chan time.Time { waiting <- d; return tick }
	g.Set(7) // no probe yet
	done := make(chan struct{})
	go func() { defer close(done); Probe(ctx, ProbeInterval, after, c) }()

	oom := errors.New("master 10.0.3.7:6379: OOM command not allowed")
	for i, ans := range []error{nil, &Degraded{Err: oom}, &Degraded{Err: oom}, nil} {
		mu.Lock()
		answer = ans
		mu.Unlock()
		if i > 0 {
			tick <- time.Time{}
		}
		select {
		case <-ran:
		case d := <-waiting:
			t.Fatalf("probe %d: Probe waits %v without running the check", i, d)
		}
		if d := <-waiting; d != ProbeInterval {
			t.Fatalf("probe %d waits %v, want %v", i, d, ProbeInterval)
		}
		want := "0"
		if ans != nil {
			want = "1"
		}
		if got := gauge(); got != want {
			t.Errorf("after probe %d (%v) with no /readyz: gauge %s, want %s", i, ans, got, want)
		}
	}
	// A probe in progress at the stop runs to its end, and is the last.
	tick <- time.Time{}
	cancel()
	close(stopping)
	select {
	case <-done:
	case d := <-waiting:
		t.Fatalf("Probe waits another %v after ctx ended", d)
	}
	got := buf.take(t)
	want := []string{
		"readiness check degraded: /readyz answers 200: " + oom.Error(),
		"readiness check no longer degraded: ",
	}
	if !slices.Equal(got, want) {
		t.Errorf("logged %q, want %q", got, want)
	}
}
