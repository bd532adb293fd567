package main

import (
	"context"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/lockbox-oss/lockbox/api/client"
	"github.com/lockbox-oss/lockbox/api/wire"
	"github.com/lockbox-oss/lockbox/config"
	"github.com/lockbox-oss/lockbox/console"
	"github.com/lockbox-oss/lockbox/grantsig"
	"github.com/lockbox-oss/lockbox/identity"
	"github.com/lockbox-oss/lockbox/internal/keys"
	"github.com/lockbox-oss/lockbox/internal/redistest"
	"github.com/lockbox-oss/lockbox/internal/server"
)

// Sizes is how much load the model generates.
type Sizes struct {
	Tenants  int // onboarded tenants
	Requests int // requests filed, then approved (each a grant)
	Calls    int // operator calls through the proxy under those grants
	Sessions int // console sessions
}

// Row is one measured line of the model.
type Row struct {
	What  string
	Count int
	// Bytes is Redis used_memory's growth per item.
	Bytes float64
	// Commands is Redis commands per item; CPU Redis's CPU time per item
	// (used_cpu_user + used_cpu_sys).
	Commands, CPU float64
	Note          string
}

// Model is what one run measured.
type Model struct {
	Sizes Sizes
	Rows  []Row
	// AuditPer1000 is the audit log's growth per 1000 operator calls.
	AuditPer1000 float64
	// ProcessCPU is the lockbox process's CPU per proxied call (load
	// generator and upstream included: they run in the same process).
	ProcessCPU time.Duration
}

// snapshot is what Redis says at one moment.
type snapshot struct {
	mem      int64
	commands int64
	cpu      float64
}

func snap(ctx context.Context, rdb *redis.Client) (snapshot, error) {
	// Settle first: lazy frees and the allocator's view of recent writes.
	info, err := rdb.Info(ctx, "memory", "commandstats", "cpu").Result()
	if err != nil {
		return snapshot{}, err
	}
	var s snapshot
	for line := range strings.Lines(info) {
		line = strings.TrimSpace(line)
		name, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		switch {
		case name == "used_memory":
			s.mem, _ = strconv.ParseInt(v, 10, 64)
		case name == "used_cpu_user" || name == "used_cpu_sys":
			f, _ := strconv.ParseFloat(v, 64)
			s.cpu += f
		case strings.HasPrefix(name, "cmdstat_") && name != "cmdstat_info":
			calls, _, _ := strings.Cut(strings.TrimPrefix(v, "calls="), ",")
			n, _ := strconv.ParseInt(calls, 10, 64)
			s.commands += n
		}
	}
	return s, nil
}

func (s snapshot) row(before snapshot, what string, n int, note string) Row {
	return Row{What: what, Count: n, Bytes: float64(s.mem-before.mem) / float64(n),
		Commands: float64(s.commands-before.commands) / float64(n), CPU: (s.cpu - before.cpu) / float64(n), Note: note}
}

// measure runs the capacity load against a redis-server of its own and
// one in-process "lockbox serve" (api, proxy) in front of a trivial
// upstream, and returns what each kind of object costs Redis.
func measure(ctx context.Context, sz Sizes) (Model, error) {
	m := Model{Sizes: sz}
	dir, err := os.MkdirTemp("", "lockbox-capacity-")
	if err != nil {
		return m, err
	}
	defer os.RemoveAll(dir)
	// No snapshots: used_memory is what the data costs, not a fork's.
	rs, err := redistest.Start("--save", "", "--appendonly", "no")
	if err != nil {
		return m, err
	}
	defer rs.Remove()
	rdb := redis.NewClient(&redis.Options{Addr: rs.Addr})
	defer rdb.Close()

	upstream := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		io.WriteString(w, `{"value":[{"id":"user0001","displayName":"A mailbox"}]}`)
	})}
	upAddr, err := listenOn(upstream)
	if err != nil {
		return m, err
	}
	defer upstream.Close()

	key, err := identity.GenerateDevKey()
	if err != nil {
		return m, err
	}
	_, jwks, err := identity.WriteDevKeys(dir, key)
	if err != nil {
		return m, err
	}
	if _, err := grantsig.EnsureKeyFiles(filepath.Join(dir, "grant.pem"), filepath.Join(dir, "grant.pub.pem")); err != nil {
		return m, err
	}
	cfg, err := config.Load(map[string]string{
		"LOCKBOX_REDIS_URL": rs.URL, "LOCKBOX_JWT_JWKS_FILE": jwks, "LOCKBOX_UPSTREAMS": "exchange=http://" + upAddr,
		"LOCKBOX_PROXY_SIGNING_KEY_FILE": filepath.Join(dir, "grant.pem"), "LOCKBOX_SERVE": "proxy,api",
		"LOCKBOX_API_ADDR": "127.0.0.1:0", "LOCKBOX_PROXY_ADDR": "127.0.0.1:0", "LOCKBOX_METRICS_ADDR": "127.0.0.1:0",
	})
	if err != nil {
		return m, err
	}
	srv, err := server.New(ctx, cfg, server.Options{Logger: slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))})
	if err != nil {
		return m, err
	}
	if err := srv.Listen(); err != nil {
		return m, err
	}
	rctx, stop := context.WithCancel(ctx)
	done := make(chan error, 1)
	go func() { done <- srv.Run(rctx) }()
	defer func() { stop(); <-done }()

	mint := func(c identity.Claims) (*client.Client, string, error) {
		c.TTL = 12 * time.Hour
		tok, err := identity.Mint(key, cfg.JWTIssuer, cfg.JWTAudience, c, time.Now())
		if err != nil {
			return nil, "", err
		}
		api, err := client.New("http://"+srv.APIAddr(), tok)
		return api, tok, err
	}
	lbadmin, _, err := mint(identity.Claims{Subject: "lara@provider.example", Roles: []identity.Role{identity.RoleLockboxAdmin}})
	if err != nil {
		return m, err
	}
	manager, _, err := mint(identity.Claims{Subject: "mary@provider.example", Roles: []identity.Role{identity.RoleSupportManager}})
	if err != nil {
		return m, err
	}
	tenant := func(i int) string { return fmt.Sprintf("tenant-%05d", i%sz.Tenants) }
	operator := func(i int) string { return fmt.Sprintf("op%05d@provider.example", i) }

	base, err := snap(ctx, rdb)
	if err != nil {
		return m, err
	}
	// Tenants: registry entry, settings, tenant-set entry, the
	// onboarding's audit record.
	if err := parallel(sz.Tenants, func(i int) error {
		id := tenant(i)
		_, err := lbadmin.Onboard(ctx, wire.Onboarding{ID: id, DisplayName: "Tenant " + id, Domains: []string{id + ".example"},
			GlobalAdmins: []string{"admin@" + id + ".example"}})
		return err
	}); err != nil {
		return m, fmt.Errorf("onboard: %w", err)
	}
	after, err := snap(ctx, rdb)
	if err != nil {
		return m, err
	}
	m.Rows = append(m.Rows, after.row(base, "onboarded tenant", sz.Tenants, "registry entry, settings, tenant set, its audit record"))

	// Requests, pending: one per operator, spread over the tenants.
	ops := make([]*client.Client, sz.Requests)
	for i := range ops {
		if ops[i], _, err = mint(identity.Claims{Subject: operator(i), Roles: []identity.Role{identity.RoleOperator}}); err != nil {
			return m, err
		}
	}
	ids := make([]string, sz.Requests)
	before := after
	if err := parallel(sz.Requests, func(i int) error {
		r, err := ops[i].CreateRequest(ctx, wire.CreateRequest{Tenant: tenant(i), Service: "exchange", ServiceRequest: "SR-" + strconv.Itoa(i),
			Reason: "Mailbox repair after a failed migration", Duration: wire.Duration(4 * time.Hour)})
		ids[i] = r.ID
		return err
	}); err != nil {
		return m, fmt.Errorf("file requests: %w", err)
	}
	if after, err = snap(ctx, rdb); err != nil {
		return m, err
	}
	m.Rows = append(m.Rows, after.row(before, "pending request", sz.Requests, "request, indexes, its audit record, queued notifications"))

	// Approved: the manager, then the tenant's global admin; the grant key
	// appears.
	admins := make([]*client.Client, sz.Tenants)
	for i := range admins {
		if admins[i], _, err = mint(identity.Claims{Subject: "admin@" + tenant(i) + ".example", TenantID: tenant(i), Roles: []identity.Role{identity.RoleGlobalAdmin}}); err != nil {
			return m, err
		}
	}
	before = after
	if err := parallel(sz.Requests, func(i int) error {
		if _, err := manager.Approve(ctx, ids[i], "ok"); err != nil {
			return err
		}
		_, err := admins[i%sz.Tenants].Approve(ctx, ids[i], "ok")
		return err
	}); err != nil {
		return m, fmt.Errorf("approve: %w", err)
	}
	if after, err = snap(ctx, rdb); err != nil {
		return m, err
	}
	m.Rows = append(m.Rows, after.row(before, "approval to a live grant", sz.Requests, "two decisions' audit records and notifications, the grant key"))

	// Operator calls through the proxy, round-robin over the grants.
	toks := make([]string, sz.Requests)
	for i := range toks {
		if _, toks[i], err = mint(identity.Claims{Subject: operator(i), Roles: []identity.Role{identity.RoleOperator}}); err != nil {
			return m, err
		}
	}
	hc := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 16}}
	defer hc.CloseIdleConnections()
	before = after
	// The calls add nothing but audit records, so their memory is read
	// from the audit streams themselves: used_memory also moves with client
	// buffers and lazy frees, by more than a few records at a small size.
	audit0, err := auditBytes(ctx, rdb, sz.Tenants, tenant)
	if err != nil {
		return m, err
	}
	cpu0 := processCPU()
	if err := parallel(sz.Calls, func(i int) error {
		g := i % sz.Requests
		req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+srv.ProxyAddr()+"/exchange/tenants/"+tenant(g)+"/mailboxes", nil)
		req.Header.Set("Authorization", "Bearer "+toks[g])
		resp, err := hc.Do(req)
		if err != nil {
			return err
		}
		io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return fmt.Errorf("proxied call %d: %s", i, resp.Status)
		}
		return nil
	}); err != nil {
		return m, fmt.Errorf("proxied calls: %w", err)
	}
	m.ProcessCPU = (processCPU() - cpu0) / time.Duration(sz.Calls)
	if after, err = snap(ctx, rdb); err != nil {
		return m, err
	}
	calls := after.row(before, "operator call (audit record)", sz.Calls, "one audit record in the tenant's stream")
	audit1, err := auditBytes(ctx, rdb, sz.Tenants, tenant)
	if err != nil {
		return m, err
	}
	calls.Bytes = float64(audit1-audit0) / float64(sz.Calls)
	m.Rows = append(m.Rows, calls)
	m.AuditPer1000 = calls.Bytes * 1000

	// Console sessions, as the console stores them: a tenant admin's
	// session JSON under the SHA-256 of its cookie, with its TTL.
	before = after
	for i := range sz.Sessions {
		now := time.Now()
		b, err := json.Marshal(console.Session{Principal: identity.Principal{Subject: "admin@" + tenant(i) + ".example", TenantID: tenant(i),
			Roles: []identity.Role{identity.RoleGlobalAdmin}}, Name: "Global Admin", Via: "oidc", CSRF: rand.Text(), CreatedAt: now, LastSeen: now})
		if err != nil {
			return m, err
		}
		sum := sha256.Sum256([]byte(rand.Text()))
		if err := rdb.Set(ctx, keys.ConsoleSession(hex.EncodeToString(sum[:])), b, 8*time.Hour).Err(); err != nil {
			return m, err
		}
	}
	if after, err = snap(ctx, rdb); err != nil {
		return m, err
	}
	m.Rows = append(m.Rows, after.row(before, "console session", max(sz.Sessions, 1), "session JSON under the cookie's hash, with a TTL"))
	return m, nil
}

// parallel runs f(0..n-1) on 16 goroutines and returns the first error.
func parallel(n int, f func(int) error) error {
	var wg sync.WaitGroup
	var once sync.Once
	var first error
	next := make(chan int)
	for range 16 {
		wg.Go(func() {
			for i := range next {
				if err := f(i); err != nil {
					once.Do(func() { first = err })
				}
			}
		})
	}
	for i := range n {
		next <- i
	}
	close(next)
	wg.Wait()
	return first
}

func listenOn(s *http.Server) (string, error) {
	ln, err := netListen()
	if err != nil {
		return "", err
	}
	go s.Serve(ln)
	return ln.Addr().String(), nil
}

func processCPU() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// print writes the model's tables in Markdown.
func (m Model) print(out io.Writer) {
	fmt.Fprintf(out, "Measured with %d tenants, %d requests (each approved to a grant), %d proxied operator calls, %d console sessions\n\n",
		m.Sizes.Tenants, m.Sizes.Requests, m.Sizes.Calls, m.Sizes.Sessions)
	fmt.Fprintf(out, "| per | Redis memory | Redis commands | Redis CPU | what it holds |\n|---|---:|---:|---:|---|\n")
	for _, r := range m.Rows {
		fmt.Fprintf(out, "| %s | %.0f B | %.1f | %.1f µs | %s |\n", r.What, r.Bytes, r.Commands, r.CPU*1e6, r.Note)
	}
	fmt.Fprintf(out, "\nAudit growth per 1000 operator calls: %.2f MiB of Redis memory.\n", m.AuditPer1000/(1<<20))
	fmt.Fprintf(out, "Lockbox process CPU per proxied call (load generator and upstream in the same process): %.0f µs.\n", float64(m.ProcessCPU.Microseconds()))
}

func netListen() (net.Listener, error) { return net.Listen("tcp", "127.0.0.1:0") }

// auditBytes is the memory of the first n tenants' audit streams, exactly
// (MEMORY USAGE with every element sampled).
func auditBytes(ctx context.Context, rdb *redis.Client, n int, tenant func(int) string) (int64, error) {
	var total int64
	for i := range n {
		b, err := rdb.MemoryUsage(ctx, keys.Audit(tenant(i)), 0).Result()
		if err != nil && !errors.Is(err, redis.Nil) {
			return 0, fmt.Errorf("MEMORY USAGE of %s's audit log: %w", tenant(i), err)
		}
		total += b
	}
	return total, nil
}
