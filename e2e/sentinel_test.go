package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/lockbox-oss/lockbox/api/client"
	"github.com/lockbox-oss/lockbox/api/wire"
	"github.com/lockbox-oss/lockbox/audit"
	"github.com/lockbox-oss/lockbox/audit/record"
	"github.com/lockbox-oss/lockbox/cli"
	"github.com/lockbox-oss/lockbox/grants"
	"github.com/lockbox-oss/lockbox/grantsig"
	"github.com/lockbox-oss/lockbox/identity"
	"github.com/lockbox-oss/lockbox/internal/keys"
	"github.com/lockbox-oss/lockbox/internal/redistest"
)

// The deadlines the failover test configures, and the longest a call may
// take with them: the grant lookup's deadline, then at most twice the
// audit write's (group commit bounds a record by its own deadline and its
// batch's round trip by another), plus scheduling slack.
const (
	failoverGrantTimeout = 300 * time.Millisecond
	failoverAuditTimeout = time.Second
	failoverCallBound    = failoverGrantTimeout + 2*failoverAuditTimeout + time.Second
)

// call is one operator call made during the failover test.
type call struct {
	mailbox string // unique per call: "<replica>-<worker>-<n>"
	start   time.Time
	took    time.Duration
	status  int
	code    string
}

// upstreamLog is an upstream that records which calls reached it.
type upstreamLog struct {
	mu   sync.Mutex
	seen map[string]bool // mailbox → reached
}

var mailboxRE = regexp.MustCompile(`/mailboxes/([A-Za-z0-9-]+)/messages$`)

func (u *upstreamLog) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if m := mailboxRE.FindStringSubmatch(r.URL.Path); m != nil {
		u.mu.Lock()
		u.seen[m[1]] = true
		u.mu.Unlock()
	}
	w.Header().Set("Content-Type", "application/json")
	_, _ = w.Write([]byte(`{"value":[]}`))
}

// startedReady waits until url answers 200, and reports false if the
// process exits first (exited closes). It fails t at deadline.
func startedReady(t *testing.T, url string, exited <-chan struct{}, deadline time.Time) bool {
	t.Helper()
	for time.Now().Before(deadline) {
		if resp, err := http.Get(url); err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return true
			}
		}
		select {
		case <-exited:
			return false
		case <-time.After(50 * time.Millisecond):
		}
	}
	t.Fatalf("%s never became ready", url)
	return false
}

// TestSentinelFailover kills the Redis master (kill -9) under steady proxy
// load through two real "lockbox serve" processes configured with
// LOCKBOX_REDIS_SENTINEL_*: "durable" waits for a replica to acknowledge
// every audit record (LOCKBOX_AUDIT_REPLICAS=1), "fast" takes the master's
// acknowledgement. Neither is restarted.
//
//   - While there is no writable master, every call of both fails closed:
//     503 within the configured deadlines, never forwarded.
//   - Once the sentinels promote the replica, "fast" recovers by itself.
//   - "durable" keeps refusing while the new master has no replica to
//     acknowledge its records, and recovers once the old master comes back
//     (as its supervisor would restart it) as the new master's replica.
//   - Every call "durable" forwarded — each one the upstream saw — has its
//     audit record on the new master: no acknowledged record is lost.
//
// The measured outage of each is logged.
func TestSentinelFailover(t *testing.T) {
	if testing.Short() {
		t.Skip("builds binaries")
	}
	s := redistest.StartSentinel(t)
	lockbox := lockboxBinary(t)
	dir := t.TempDir()
	key, _ := identity.GenerateDevKey()
	if _, _, err := identity.WriteDevKeys(dir, key); err != nil {
		t.Fatal(err)
	}
	if _, err := grantsig.EnsureKeyFiles(filepath.Join(dir, "grant.pem"), filepath.Join(dir, "grant.pub.pem")); err != nil {
		t.Fatal(err)
	}
	up := &upstreamLog{seen: map[string]bool{}}
	upstream := httptest.NewServer(up)
	defer upstream.Close()

	type replica struct {
		name, api, proxy, metrics string
	}
	startServe := func(name string, extra ...string) replica {
		r := replica{name: name, api: freeAddr(t), proxy: freeAddr(t), metrics: freeAddr(t)}
		env := scrubbedEnv(append([]string{
			"LOCKBOX_REDIS_SENTINEL_ADDRS=" + s.Seeds(),
			"LOCKBOX_REDIS_SENTINEL_MASTER=" + redistest.SentinelMaster,
			"LOCKBOX_REDIS_TIMEOUT=500ms",
			"LOCKBOX_GRANT_TIMEOUT=" + failoverGrantTimeout.String(),
			"LOCKBOX_AUDIT_TIMEOUT=" + failoverAuditTimeout.String(),
			"LOCKBOX_JWT_JWKS_FILE=" + filepath.Join(dir, identity.DevJWKSFile),
			"LOCKBOX_API_ADDR=" + r.api, "LOCKBOX_PROXY_ADDR=" + r.proxy, "LOCKBOX_METRICS_ADDR=" + r.metrics,
			"LOCKBOX_UPSTREAMS=exchange=" + upstream.URL,
			"LOCKBOX_PROXY_SIGNING_KEY_FILE=" + filepath.Join(dir, "grant.pem"),
			"LOCKBOX_SIEM_SINK=off",
			"LOCKBOX_LOG_LEVEL=warn",
		}, extra...)...)
		// A serve whose Redis doesn't answer within LOCKBOX_REDIS_TIMEOUT
		// at start-up exits, as it should; on a loaded machine the
		// sentinels and the master can take longer than the 500 ms set
		// here. Its supervisor would start it again: so does the test.
		deadline := time.Now().Add(60 * time.Second)
		for attempt := 1; ; attempt++ {
			logs := new(bytes.Buffer)
			srv := exec(t, lockbox, "serve")
			srv.Env, srv.Stdout, srv.Stderr = env, logs, logs
			if err := srv.Start(); err != nil {
				t.Fatal(err)
			}
			exited := make(chan struct{})
			go func() {
				_ = srv.Wait()
				close(exited)
			}()
			t.Cleanup(func() {
				_ = srv.Process.Kill()
				<-exited
				if t.Failed() {
					t.Logf("lockbox serve (%s, start %d) logs:\n%s", name, attempt, logs.String())
				}
			})
			if startedReady(t, "http://"+r.metrics+"/readyz", exited, deadline) {
				return r
			}
			t.Logf("lockbox serve (%s) exited at start-up, started again: %s", name, strings.TrimSpace(logs.String()))
		}
	}
	durable := startServe("durable", "LOCKBOX_AUDIT_REPLICAS=1")
	fast := startServe("fast", "LOCKBOX_AUDIT_REPLICAS=0", "LOCKBOX_SERVE=proxy")

	tokens := map[string]string{}
	for _, u := range []string{"operator", "manager", "admin", "lockbox-admin"} {
		c := users[u]
		c.TTL = time.Hour
		tok, err := identity.Mint(key, "lockbox", "lockbox", c, time.Now())
		if err != nil {
			t.Fatal(err)
		}
		tokens[u] = tok
	}
	ctl := func(user string, v any, args ...string) {
		t.Helper()
		var out, errb bytes.Buffer
		env := map[string]string{"LOCKBOX_ADDR": "http://" + durable.api, "LOCKBOX_TOKEN": tokens[user]}
		if code := cli.Run(context.Background(), append([]string{"-o", "json"}, args...), func(k string) string { return env[k] }, &out, &errb); code != 0 {
			t.Fatalf("lockboxctl %v: %s", args, errb.String())
		}
		if v != nil {
			if err := json.Unmarshal(out.Bytes(), v); err != nil {
				t.Fatal(err)
			}
		}
	}
	la, err := client.New("http://"+durable.api, tokens["lockbox-admin"])
	if err != nil {
		t.Fatal(err)
	}
	if _, err := la.Onboard(context.Background(), wire.Onboarding{ID: "contoso", DisplayName: "Contoso Ltd",
		Domains: []string{"contoso.example"}, GlobalAdmins: []string{"gina@contoso.example"}}); err != nil {
		t.Fatal(err)
	}
	var r grants.Request
	ctl("operator", &r, "request", "create", "--tenant", "contoso", "--service", "exchange", "--service-request", "SR-77",
		"--reason", "mail flow", "--duration", "1h")
	ctl("manager", nil, "request", "approve", r.ID)
	ctl("admin", &r, "request", "approve", r.ID)
	if r.State != grants.StateApproved {
		t.Fatalf("not approved: %s", r.State)
	}

	// Steady load: two callers per replica, a call every few milliseconds.
	var mu sync.Mutex
	calls := map[string][]call{}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	hc := &http.Client{Timeout: 15 * time.Second}
	for _, rep := range []replica{durable, fast} {
		for w := range 2 {
			wg.Go(func() {
				for n := 0; ; n++ {
					select {
					case <-stop:
						return
					case <-time.After(5 * time.Millisecond):
					}
					c := call{mailbox: fmt.Sprintf("%s-%d-%d", rep.name, w, n), start: time.Now()}
					req, _ := http.NewRequest("GET", "http://"+rep.proxy+"/exchange/tenants/contoso/mailboxes/"+c.mailbox+"/messages", nil)
					req.Header.Set("Authorization", "Bearer "+tokens["operator"])
					resp, err := hc.Do(req)
					c.took = time.Since(c.start)
					if err != nil {
						c.code = err.Error()
					} else {
						c.status = resp.StatusCode
						var body struct{ Error struct{ Code string } }
						_ = json.NewDecoder(resp.Body).Decode(&body)
						resp.Body.Close()
						c.code = body.Error.Code
					}
					mu.Lock()
					calls[rep.name] = append(calls[rep.name], c)
					mu.Unlock()
				}
			})
		}
	}
	// successAfter reports whether rep has a call that started after at
	// and succeeded.
	successAfter := func(rep string, at time.Time) bool {
		mu.Lock()
		defer mu.Unlock()
		for _, c := range slices.Backward(calls[rep]) {
			if c.start.Before(at) {
				return false
			}
			if c.status == http.StatusOK {
				return true
			}
		}
		return false
	}
	waitFor := func(what string, limit time.Duration, cond func() bool) time.Time {
		t.Helper()
		deadline := time.Now().Add(limit)
		for !cond() {
			if time.Now().After(deadline) {
				close(stop)
				wg.Wait()
				t.Fatalf("%s: not within %s", what, limit)
			}
			time.Sleep(5 * time.Millisecond)
		}
		return time.Now()
	}
	began := time.Now()
	waitFor("both replicas serving", 10*time.Second, func() bool {
		return time.Since(began) > time.Second && successAfter("durable", began) && successAfter("fast", began)
	})

	ctx := context.Background()
	// The kill counts from when the master is gone (Stop waits for its
	// exit), not from when Stop was called: a call that starts in between
	// may still be acknowledged by the master and its replica, and on a
	// loaded machine this goroutine can wait tens of milliseconds between
	// reading the time and sending the signal.
	s.Master.Stop() // kill -9
	killed := time.Now()
	promoted := waitFor("the sentinels promote the replica", 30*time.Second, func() bool {
		m, _ := s.MasterAddr(ctx)
		return m == s.Replica.Addr
	})
	fastBack := waitFor(`"fast" recovers`, 30*time.Second, func() bool { return successAfter("fast", promoted) })
	// "durable" can't have forwarded anything since the kill: no master,
	// then a master without a replica to acknowledge its records.
	if successAfter("durable", killed) {
		t.Error(`"durable" forwarded a call while no replica could acknowledge its record`)
	}
	// The old master's supervisor restarts it; it rejoins as a replica of
	// the new master.
	host, port, _ := strings.Cut(s.Replica.Addr, ":")
	restarted := time.Now()
	if err := s.Master.Restart("--replicaof", host, port); err != nil {
		t.Fatal(err)
	}
	durableBack := waitFor(`"durable" recovers`, 30*time.Second, func() bool { return successAfter("durable", restarted) })
	time.Sleep(300 * time.Millisecond) // a little steady load after recovery
	close(stop)
	wg.Wait()

	// What each replica's callers saw.
	outage := func(rep string) (time.Duration, int, int, time.Duration) {
		var lastBefore, firstAfter time.Time
		refused, forwarded := 0, 0
		var slowest time.Duration
		for _, c := range calls[rep] {
			slowest = max(slowest, c.took)
			switch {
			case c.status == http.StatusOK:
				forwarded++
				end := c.start.Add(c.took)
				if c.start.Before(killed) && end.After(lastBefore) {
					lastBefore = end
				}
				if c.start.After(killed) && (firstAfter.IsZero() || end.Before(firstAfter)) {
					firstAfter = end
				}
			case c.status == http.StatusServiceUnavailable && (c.code == "audit_unavailable" || c.code == "store_unavailable"):
				refused++
			default:
				t.Errorf("%s: call %s answered %d %q: want 200, or 503 while Redis fails over", rep, c.mailbox, c.status, c.code)
			}
			if c.took > failoverCallBound {
				t.Errorf("%s: call %s (%d %s) took %s, past the configured deadlines' bound of %s", rep, c.mailbox, c.status, c.code, c.took, failoverCallBound)
			}
		}
		return firstAfter.Sub(lastBefore), forwarded, refused, slowest
	}

	// Every call the upstream saw from "durable" has its audit record on
	// the new master; count those of "fast" too.
	rdb := redis.NewClient(&redis.Options{Addr: s.Replica.Addr})
	defer rdb.Close()
	msgs, err := rdb.XRange(ctx, keys.Audit("contoso"), "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	recorded := map[string]bool{}
	for _, m := range msgs {
		var rec record.Record
		if sv, _ := m.Values["r"].(string); json.Unmarshal([]byte(sv), &rec) == nil {
			if mm := regexp.MustCompile(`/mailboxes/([A-Za-z0-9-]+)/messages$`).FindStringSubmatch(rec.ObjectId); mm != nil {
				recorded[mm[1]] = true
			}
		}
	}
	for _, rep := range []string{"durable", "fast"} {
		gap, forwarded, refused, slowest := outage(rep)
		acked, present := 0, 0
		up.mu.Lock()
		for mb := range up.seen {
			if strings.HasPrefix(mb, rep+"-") {
				acked++
				if recorded[mb] {
					present++
				} else if rep == "durable" {
					t.Errorf("durable: call %s reached the upstream, and its audit record is gone after the failover", mb)
				}
			}
		}
		up.mu.Unlock()
		if acked < forwarded {
			t.Errorf("%s: %d calls answered 200 but the upstream saw %d", rep, forwarded, acked)
		}
		t.Logf("%s: %d calls forwarded, %d refused (503); outage seen by callers %s (last success before the kill to first after); slowest call %s; %d calls reached the upstream, %d of their audit records present after the failover",
			rep, forwarded, refused, gap.Round(time.Millisecond), slowest.Round(time.Millisecond), acked, present)
	}
	t.Logf("kill -9 → promotion %s; → \"fast\" serving again %s; old master restarted as replica after %s → \"durable\" serving again %s later",
		promoted.Sub(killed).Round(time.Millisecond), fastBack.Sub(killed).Round(time.Millisecond),
		restarted.Sub(killed).Round(time.Millisecond), durableBack.Sub(restarted).Round(time.Millisecond))

	// The chain survived whole, read through "durable"'s API.
	var v audit.Verification
	ctl("admin", &v, "audit", "verify", "--tenant", "contoso")
	if !v.OK {
		t.Fatalf("chain after the failover: %+v", v)
	}
}
