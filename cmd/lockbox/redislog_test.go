package main

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/lockbox-oss/lockbox/grantsig"
	"github.com/lockbox-oss/lockbox/identity"
	"github.com/lockbox-oss/lockbox/internal/redistest"
)

// With LOCKBOX_LOG_FORMAT=json every line "lockbox serve" writes to stderr
// is a JSON object with a level, go-redis's too: while Redis was down,
// go-redis wrote "redis: <date> pool.go:770: redis: connection pool: failed
// to dial after 5 attempts: ..." straight to stderr, a line a log pipeline
// expecting JSON can't parse, with no level or component. Its messages now
// come through Lockbox's logger at warn, with component=redis, and never
// with the password of LOCKBOX_REDIS_URL.
func TestServeLogsRedisMessagesAsJSON(t *testing.T) {
	const password = "s3cret-redis-pass"
	srv := redistest.StartServer(t)
	// Set once the server is up: redistest's readiness check speaks no
	// AUTH.
	admin := redis.NewClient(&redis.Options{Addr: srv.Addr})
	err := admin.ConfigSet(context.Background(), "requirepass", password).Err()
	admin.Close()
	if err != nil {
		t.Fatal(err)
	}
	redisURL := fmt.Sprintf("redis://:%s@%s/0", password, srv.Addr)

	dir := t.TempDir()
	key, err := identity.GenerateDevKey()
	if err != nil {
		t.Fatal(err)
	}
	_, jwks, err := identity.WriteDevKeys(dir, key)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := grantsig.EnsureKeyFiles(filepath.Join(dir, "grant.pem"), filepath.Join(dir, "grant.pub.pem")); err != nil {
		t.Fatal(err)
	}

	cmd := exec.Command(os.Args[0], "serve")
	cmd.Env = append(scrubbedEnv(), runMainEnv+"=1",
		"LOCKBOX_LOG_FORMAT=json",
		"LOCKBOX_REDIS_URL="+redisURL,
		"LOCKBOX_JWT_JWKS_FILE="+jwks,
		"LOCKBOX_API_ADDR=127.0.0.1:0", "LOCKBOX_PROXY_ADDR=127.0.0.1:0", "LOCKBOX_METRICS_ADDR=127.0.0.1:0",
		"LOCKBOX_UPSTREAMS=exchange=http://127.0.0.1:1",
		"LOCKBOX_PROXY_SIGNING_KEY_FILE="+filepath.Join(dir, "grant.pem"),
		"LOCKBOX_SIEM_SINK=off",
	)
	errR, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	// Every line, as it comes; closed when stderr ends.
	lines := make(chan string, 1024)
	go func() {
		defer close(lines)
		sc := bufio.NewScanner(errR)
		sc.Buffer(make([]byte, 64<<10), 1<<20)
		for sc.Scan() {
			lines <- sc.Text()
		}
	}()
	stopped := false
	var all []string
	t.Cleanup(func() {
		if !stopped {
			_ = cmd.Process.Kill()
		}
		for l := range lines {
			_ = l
		}
		_ = cmd.Wait()
	})

	// next is the next line, or "", false once stderr ends or after the
	// deadline, which only bounds a failure.
	deadline := time.After(60 * time.Second)
	next := func() (string, bool) {
		select {
		case l, ok := <-lines:
			if ok {
				all = append(all, l)
			}
			return l, ok
		case <-deadline:
			return "", false
		}
	}
	// wait reads lines until one satisfies f.
	wait := func(what string, f func(map[string]any) bool) {
		t.Helper()
		for {
			l, ok := next()
			if !ok {
				t.Fatalf("no line %s within 60s; stderr:\n%s", what, strings.Join(all, "\n"))
			}
			var m map[string]any
			if json.Unmarshal([]byte(l), &m) == nil && f(m) {
				return
			}
		}
	}

	var metrics string
	wait("saying lockbox listens", func(m map[string]any) bool {
		metrics, _ = m["metrics"].(string)
		return m["msg"] == "lockbox listening"
	})

	// Redis goes away; the readiness probe asks it and go-redis fails to
	// dial it again.
	srv.Stop()
	probe := make(chan struct{})
	go func() {
		for {
			select {
			case <-probe:
				return
			case <-time.After(100 * time.Millisecond):
			}
			if resp, err := http.Get("http://" + metrics + "/readyz"); err == nil {
				io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}
	}()
	defer close(probe)
	for {
		l, ok := next()
		if !ok {
			t.Fatalf("go-redis said nothing of the dials that failed within 60s; stderr:\n%s", strings.Join(all, "\n"))
		}
		if strings.Contains(l, "failed to dial") {
			break
		}
	}

	stopped = true
	if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	for {
		if _, ok := next(); !ok {
			break
		}
	}

	redisLines := 0
	for _, l := range all {
		if strings.Contains(l, password) {
			t.Errorf("a line holds the Redis password: %s", l)
		}
		var m map[string]any
		if err := json.Unmarshal([]byte(l), &m); err != nil {
			t.Errorf("not a JSON line: %s", l)
			continue
		}
		if _, ok := m["level"].(string); !ok {
			t.Errorf("no level: %s", l)
		}
		if msg, _ := m["msg"].(string); strings.Contains(msg, "failed to dial") {
			redisLines++
			if m["component"] != "redis" || m["level"] != "WARN" {
				t.Errorf("go-redis's line is not at WARN with component=redis: %s", l)
			}
		}
	}
	if redisLines == 0 {
		t.Errorf("no JSON line of go-redis's about the failed dials; stderr:\n%s", strings.Join(all, "\n"))
	}
}
