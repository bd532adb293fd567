// Command loadbench is Lockbox's own end-to-end load benchmark: it starts an
// upstream that answers 1 KiB of JSON, a bare httputil.ReverseProxy in
// front of it (the limit for a Go proxy), and Lockbox's proxy as "lockbox
// serve" wires it (a real redis-server, a grant made through the real
// lifecycle, every permitted call audited before it is forwarded), then
// drives each with the same closed-loop load and reports requests per
// second, latency percentiles and Lockbox's ratio to the bare proxy.
//
//	go run ./internal/loadbench -c 16,64 -d 10s
//	make loadbench
//	go run ./internal/loadbench -replicas 1          # LOCKBOX_AUDIT_REPLICAS=1, with a replica
//	go run ./internal/loadbench -redis-arg=--appendonly -redis-arg=yes -redis-arg=--appendfsync -redis-arg=always
//	go run ./internal/loadbench -assertion-secret     # exchange's assertions keyed with a secret (LOCKBOX_PROXY_ASSERTION_SECRET_FILES)
//	go run ./internal/loadbench -soak 10m -rate 500   # fixed-rate soak: memory and goroutines over time
//
// The load generator runs in the same process as the servers, so absolute
// numbers are lower than a separate generator would show; the ratio, from
// one run on one machine, is the figure to compare. The peer harness
// (docs/performance.md) measures against nginx+OPA as well.
package main

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/lockbox-oss/lockbox/api/client"
	"github.com/lockbox-oss/lockbox/api/wire"
	"github.com/lockbox-oss/lockbox/config"
	"github.com/lockbox-oss/lockbox/grantsig"
	"github.com/lockbox-oss/lockbox/identity"
	"github.com/lockbox-oss/lockbox/internal/gcdefaults"
	"github.com/lockbox-oss/lockbox/internal/redistest"
	"github.com/lockbox-oss/lockbox/internal/server"
)

func main() {
	conns := flag.String("c", "16,64", "concurrent connections, comma-separated: one run each")
	dur := flag.Duration("d", 10*time.Second, "duration of each run")
	warm := flag.Duration("warmup", 2*time.Second, "warm-up before each run")
	flag.IntVar(&replicas, "replicas", 0, "start this many Redis replicas and wait for them before each record counts as written (LOCKBOX_AUDIT_REPLICAS)")
	flag.Func("redis-arg", "an argument for the primary redis-server, e.g. --appendfsync; repeat for more", func(s string) error {
		redisArgs = append(redisArgs, s)
		return nil
	})
	flag.BoolVar(&assertionSecret, "assertion-secret", false, "key the upstream's X-Lockbox-Grant assertions with a secret of its own (HS256, LOCKBOX_PROXY_ASSERTION_SECRET_FILES) instead of signing them with the Ed25519 signing key")
	soakFor := flag.Duration("soak", 0, "instead of the closed-loop runs: drive Lockbox alone at -rate calls per second for this long, and report its memory and goroutines every -sample")
	rate := flag.Int("rate", 500, "calls per second of -soak (open loop)")
	every := flag.Duration("sample", 30*time.Second, "how often -soak samples")
	flag.Parse()
	// The collector settings `lockbox serve` starts with (GOGC=400 unless
	// GOGC is set): the same for every server in this process, so the
	// ratio stays fair and the soak's memory is what a replica's is.
	gcdefaults.Apply(gcdefaults.Plan(os.Getenv, "/sys/fs/cgroup", "/proc/self/cgroup"))
	var err error
	if *soakFor > 0 {
		err = soak(*soakFor, *rate, *every, os.Stdout)
	} else {
		err = run(*conns, *dur, *warm, os.Stdout)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "loadbench:", err)
		os.Exit(1)
	}
}

// path is the call every run makes: a read the default catalog knows.
const path = "/exchange/tenants/contoso/mailboxes"

// The durability under test: replicas to wait for, and the primary's
// arguments (e.g. an append-only file fsynced on every write).
var (
	replicas  int
	redisArgs []string
	// assertionSecret keys exchange's assertions with a secret of its own.
	assertionSecret bool
)

func run(conns string, dur, warm time.Duration, out io.Writer) error {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	up, err := listen(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(body)
	}))
	if err != nil {
		return err
	}
	upURL, _ := url.Parse("http://" + up)
	bare, err := listen(bareProxy(upURL))
	if err != nil {
		return err
	}
	lb, tok, stop, err := startLockbox(ctx, "http://"+up)
	if err != nil {
		return err
	}
	defer stop()

	assertions := "signed with the Ed25519 signing key"
	if assertionSecret {
		assertions = "keyed with the upstream's secret (HS256)"
	}
	fmt.Fprintf(out, "loadbench: GET %s, %s per run after %s of warm-up; audit waits for %d replicas; redis-server %s; assertions %s\n\n",
		path, dur, warm, replicas, strings.Join(redisArgs, " "), assertions)
	fmt.Fprintln(out, "| proxy | conns | req/s | p50 ms | p99 ms | errors | vs bare |")
	fmt.Fprintln(out, "|---|---|---|---|---|---|---|")
	for c := range strings.SplitSeq(conns, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(c))
		if err != nil || n < 1 {
			return fmt.Errorf("-c: %q is not a number of connections", c)
		}
		b := load("http://"+bare+"/tenants/contoso/mailboxes", "", n, warm, dur)
		l := load("http://"+lb+path, tok, n, warm, dur)
		for _, r := range []struct {
			name string
			res  result
		}{{"bare ReverseProxy", b}, {"lockbox", l}} {
			fmt.Fprintf(out, "| %s | %d | %.0f | %.2f | %.2f | %d | %.2f× |\n", r.name, n, r.res.rps, ms(r.res.p50), ms(r.res.p99), r.res.errors, r.res.rps/b.rps)
		}
	}
	return nil
}

// body is the upstream's answer: 1 KiB of JSON, as in the peer harness.
var body = func() []byte {
	b, _ := json.Marshal(map[string]string{"value": strings.Repeat("x", 1000)})
	return b[:1024-1]
}()

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

func listen(h http.Handler) (string, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	go func() { _ = (&http.Server{Handler: h, ReadHeaderTimeout: 10 * time.Second}).Serve(ln) }()
	return ln.Addr().String(), nil
}

// bareProxy is the harness's go-bare: a ReverseProxy with a tuned idle
// pool and a buffer pool, and nothing else.
func bareProxy(u *url.URL) http.Handler {
	rp := httputil.NewSingleHostReverseProxy(u)
	rp.Transport = &http.Transport{MaxIdleConns: 1024, MaxIdleConnsPerHost: 512, IdleConnTimeout: 90 * time.Second}
	rp.BufferPool = bufPool{}
	return rp
}

type bufPool struct{}

var bufs = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

func (bufPool) Get() []byte  { return *bufs.Get().(*[]byte) }
func (bufPool) Put(b []byte) { bufs.Put(&b) }

// startLockbox runs Lockbox's proxy and API on a redis-server of its own,
// onboards contoso and has a request approved by its manager and the
// tenant, and returns the proxy's address and the engineer's token.
func startLockbox(ctx context.Context, upstream string) (string, string, func(), error) {
	dir, err := os.MkdirTemp("", "lockbox-loadbench-")
	if err != nil {
		return "", "", nil, err
	}
	rs, err := redistest.Start(redisArgs...)
	if err != nil {
		os.RemoveAll(dir)
		return "", "", nil, err
	}
	var reps []*redistest.Server
	cleanup := func() {
		for _, r := range reps {
			r.Remove()
		}
		rs.Remove()
		os.RemoveAll(dir)
	}
	host, port, _ := strings.Cut(rs.Addr, ":")
	for range replicas {
		r, err := redistest.Start("--replicaof", host, port)
		if err != nil {
			cleanup()
			return "", "", nil, err
		}
		reps = append(reps, r)
	}
	if err := waitReplicas(ctx, rs.URL, replicas); err != nil {
		cleanup()
		return "", "", nil, err
	}
	key, err := identity.GenerateDevKey()
	if err != nil {
		cleanup()
		return "", "", nil, err
	}
	_, jwks, err := identity.WriteDevKeys(dir, key)
	if err != nil {
		cleanup()
		return "", "", nil, err
	}
	if _, err := grantsig.EnsureKeyFiles(filepath.Join(dir, "grant.pem"), filepath.Join(dir, "grant.pub.pem")); err != nil {
		cleanup()
		return "", "", nil, err
	}
	env := map[string]string{
		"LOCKBOX_REDIS_URL": rs.URL, "LOCKBOX_JWT_JWKS_FILE": jwks, "LOCKBOX_UPSTREAMS": "exchange=" + upstream,
		"LOCKBOX_PROXY_SIGNING_KEY_FILE": filepath.Join(dir, "grant.pem"), "LOCKBOX_SERVE": "proxy,api",
		"LOCKBOX_API_ADDR": "127.0.0.1:0", "LOCKBOX_PROXY_ADDR": "127.0.0.1:0", "LOCKBOX_METRICS_ADDR": "127.0.0.1:0",
		"LOCKBOX_AUDIT_REPLICAS": strconv.Itoa(replicas),
	}
	if assertionSecret {
		secret := make([]byte, 48)
		if _, err := rand.Read(secret); err != nil {
			cleanup()
			return "", "", nil, err
		}
		file := filepath.Join(dir, "exchange-assertion.secret")
		if err := os.WriteFile(file, []byte(base64.StdEncoding.EncodeToString(secret)+"\n"), 0o600); err != nil {
			cleanup()
			return "", "", nil, err
		}
		env["LOCKBOX_PROXY_ASSERTION_SECRET_FILES"] = "exchange=" + file
	}
	cfg, err := config.Load(env)
	if err != nil {
		cleanup()
		return "", "", nil, err
	}
	srv, err := server.New(ctx, cfg, server.Options{Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn}))})
	if err != nil {
		cleanup()
		return "", "", nil, err
	}
	if err := srv.Listen(); err != nil {
		cleanup()
		return "", "", nil, err
	}
	rctx, stopServer := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- srv.Run(rctx) }()
	stop := func() { stopServer(); <-done; cleanup() }

	now := time.Now()
	tokens := map[string]string{}
	for name, c := range map[string]identity.Claims{
		"operator": {Subject: "alice@provider.example", Roles: []identity.Role{identity.RoleOperator}},
		"manager":  {Subject: "mary@provider.example", Roles: []identity.Role{identity.RoleSupportManager}},
		"admin":    {Subject: "gina@contoso.example", Roles: []identity.Role{identity.RoleGlobalAdmin}, TenantID: "contoso"},
		"lbadmin":  {Subject: "lara@provider.example", Roles: []identity.Role{identity.RoleLockboxAdmin}},
	} {
		c.TTL = 12 * time.Hour
		if tokens[name], err = identity.Mint(key, cfg.JWTIssuer, cfg.JWTAudience, c, now); err != nil {
			stop()
			return "", "", nil, err
		}
	}
	api := func(who string) *client.Client {
		c, _ := client.New("http://"+srv.APIAddr(), tokens[who])
		return c
	}
	err = func() error {
		if _, err := api("lbadmin").Onboard(ctx, wire.Onboarding{ID: "contoso", DisplayName: "Contoso", Domains: []string{"contoso.example"}}); err != nil {
			return fmt.Errorf("onboard: %w", err)
		}
		r, err := api("operator").CreateRequest(ctx, wire.CreateRequest{Tenant: "contoso", Service: "exchange",
			ServiceRequest: "SR-1", Reason: "load benchmark", Duration: wire.Duration(4 * time.Hour)})
		if err != nil {
			return fmt.Errorf("file the request: %w", err)
		}
		if _, err := api("manager").Approve(ctx, r.ID, "bench"); err != nil {
			return fmt.Errorf("manager approval: %w", err)
		}
		if _, err := api("admin").Approve(ctx, r.ID, "bench"); err != nil {
			return fmt.Errorf("tenant approval: %w", err)
		}
		return nil
	}()
	if err != nil {
		stop()
		return "", "", nil, err
	}
	return srv.ProxyAddr(), "Bearer " + tokens["operator"], stop, nil
}

type result struct {
	rps      float64
	p50, p99 time.Duration
	errors   int64
}

// load drives url with conns keep-alive connections for warm, then for
// dur, and reports the second part.
func load(url, auth string, conns int, warm, dur time.Duration) result {
	tr := &http.Transport{MaxIdleConnsPerHost: conns, MaxConnsPerHost: conns, DisableCompression: true}
	defer tr.CloseIdleConnections()
	c := &http.Client{Transport: tr}
	var (
		measuring atomic.Bool
		stopAt    atomic.Int64
		mu        sync.Mutex
		lat       []time.Duration
		errs      atomic.Int64
		wg        sync.WaitGroup
	)
	stopAt.Store(time.Now().Add(warm + dur).UnixNano())
	for range conns {
		wg.Go(func() {
			mine := make([]time.Duration, 0, 1<<14)
			for time.Now().UnixNano() < stopAt.Load() {
				req, _ := http.NewRequest(http.MethodGet, url, nil)
				if auth != "" {
					req.Header.Set("Authorization", auth)
				}
				t0 := time.Now()
				res, err := c.Do(req)
				if err == nil {
					_, _ = io.Copy(io.Discard, res.Body)
					res.Body.Close()
					if res.StatusCode != http.StatusOK {
						err = errors.New(res.Status)
					}
				}
				if !measuring.Load() {
					continue
				}
				if err != nil {
					errs.Add(1)
					continue
				}
				mine = append(mine, time.Since(t0))
			}
			mu.Lock()
			lat = append(lat, mine...)
			mu.Unlock()
		})
	}
	time.Sleep(warm)
	measuring.Store(true)
	measured := time.Now()
	wg.Wait()
	elapsed := time.Since(measured)
	slices.Sort(lat)
	r := result{rps: float64(len(lat)) / elapsed.Seconds(), errors: errs.Load()}
	if len(lat) > 0 {
		r.p50, r.p99 = lat[len(lat)/2], lat[len(lat)*99/100]
	}
	return r
}

// waitReplicas waits until the primary at url has n replicas online.
func waitReplicas(ctx context.Context, url string, n int) error {
	if n == 0 {
		return nil
	}
	opts, err := redis.ParseURL(url)
	if err != nil {
		return err
	}
	c := redis.NewClient(opts)
	defer c.Close()
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		info, err := c.Info(ctx, "replication").Result()
		if err == nil && strings.Contains(info, "connected_slaves:"+strconv.Itoa(n)) && !strings.Contains(info, "state=wait_bgsave") {
			return nil
		}
	}
	return fmt.Errorf("the %d replicas did not come online", n)
}
