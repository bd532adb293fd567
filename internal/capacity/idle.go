package main

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/lockbox-oss/lockbox/config"
	"github.com/lockbox-oss/lockbox/identity"
	"github.com/lockbox-oss/lockbox/internal/redistest"
	"github.com/lockbox-oss/lockbox/internal/server"
	"github.com/lockbox-oss/lockbox/tenants"
)

// idle measures the Redis commands per second of one "lockbox serve"
// running the jobs (and the API) over n onboarded tenants with no activity,
// in real time: what an operator sees in INFO on an idle deployment.
func idle(out io.Writer, counts []int, window, warm, scrapeEvery time.Duration) error {
	fmt.Fprintf(out, "Idle Redis commands per second (one replica running api,jobs; window %s after %s warm-up; metrics scraped every %s)\n\n", window, warm, scrapeEvery)
	fmt.Fprintf(out, "| tenants | commands/s | top commands |\n|---:|---:|---|\n")
	for _, n := range counts {
		rate, top, err := idleOnce(n, window, warm, scrapeEvery)
		if err != nil {
			return err
		}
		fmt.Fprintf(out, "| %d | %.1f | %s |\n", n, rate, top)
	}
	return nil
}

func idleOnce(n int, window, warm, scrapeEvery time.Duration) (float64, string, error) {
	rs, err := redistest.Start()
	if err != nil {
		return 0, "", err
	}
	defer rs.Remove()
	dir, err := os.MkdirTemp("", "lockbox-capacity-")
	if err != nil {
		return 0, "", err
	}
	defer os.RemoveAll(dir)
	key, err := identity.GenerateDevKey()
	if err != nil {
		return 0, "", err
	}
	if _, _, err := identity.WriteDevKeys(dir, key); err != nil {
		return 0, "", err
	}
	cfg, err := config.Load(map[string]string{
		"LOCKBOX_REDIS_URL":       rs.URL,
		"LOCKBOX_SERVE":           "api,jobs",
		"LOCKBOX_JWT_JWKS_FILE":   filepath.Join(dir, identity.DevJWKSFile),
		"LOCKBOX_API_ADDR":        "127.0.0.1:0",
		"LOCKBOX_METRICS_ADDR":    "127.0.0.1:0",
		"LOCKBOX_AUDIT_RETENTION": "8760h",
	})
	if err != nil {
		return 0, "", err
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	srv, err := server.New(ctx, cfg, server.Options{SIEMOut: io.Discard})
	if err != nil {
		return 0, "", err
	}
	if err := onboard(ctx, srv.Tenants, n); err != nil {
		return 0, "", err
	}
	if err := srv.Listen(); err != nil {
		return 0, "", err
	}
	done := make(chan error, 1)
	go func() { done <- srv.Run(ctx) }()
	defer func() { cancel(); <-done }()
	scrape := func() {
		resp, err := http.Get("http://" + srv.MetricsAddr() + "/metrics")
		if err == nil {
			io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
	}
	time.Sleep(warm)
	rdb := redis.NewClient(&redis.Options{Addr: rs.Addr})
	defer rdb.Close()
	before, err := commandStats(ctx, rdb)
	if err != nil {
		return 0, "", err
	}
	start := time.Now()
	for time.Since(start) < window {
		scrape()
		time.Sleep(min(scrapeEvery, window-time.Since(start)))
	}
	elapsed := time.Since(start)
	after, err := commandStats(ctx, rdb)
	if err != nil {
		return 0, "", err
	}
	total := 0.0
	type kv struct {
		cmd string
		n   float64
	}
	var per []kv
	for c, v := range after {
		d := float64(v - before[c])
		if c == "info" {
			continue
		}
		if d > 0 {
			total += d
			per = append(per, kv{c, d})
		}
	}
	sort.Slice(per, func(i, j int) bool { return per[i].n > per[j].n })
	var top []string
	for i, p := range per {
		if i == 5 {
			break
		}
		top = append(top, fmt.Sprintf("%s %.1f", p.cmd, p.n/elapsed.Seconds()))
	}
	return total / elapsed.Seconds(), strings.Join(top, ", "), nil
}

// commandStats returns the calls of each command so far.
func commandStats(ctx context.Context, rdb *redis.Client) (map[string]int64, error) {
	s, err := rdb.Info(ctx, "commandstats").Result()
	if err != nil {
		return nil, err
	}
	out := map[string]int64{}
	for _, line := range strings.Split(s, "\n") {
		name, rest, ok := strings.Cut(strings.TrimSpace(line), ":")
		if !ok || !strings.HasPrefix(name, "cmdstat_") {
			continue
		}
		calls, _, _ := strings.Cut(strings.TrimPrefix(rest, "calls="), ",")
		v, _ := strconv.ParseInt(calls, 10, 64)
		out[strings.TrimPrefix(name, "cmdstat_")] = v
	}
	return out, nil
}

// admin onboards the tenants.
var admin = identity.Principal{Subject: "lara@provider.example", Roles: []identity.Role{identity.RoleLockboxAdmin}}

func onboard(ctx context.Context, ts *tenants.Store, n int) error {
	var wg sync.WaitGroup
	errc := make(chan error, 8)
	for w := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += 8 {
				id := fmt.Sprintf("tenant-%05d", i)
				if _, _, err := ts.Onboard(ctx, admin, "192.0.2.1", tenants.Onboarding{
					ID: id, DisplayName: id, Domains: []string{id + ".example"}, GlobalAdmins: []string{"admin@" + id + ".example"},
				}); err != nil {
					errc <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	select {
	case err := <-errc:
		return err
	default:
		return nil
	}
}
