package main

import (
	"bytes"
	"context"
	"errors"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/lockbox-oss/lockbox/internal/redistest"
)

// A configuration serve refuses exits 78 (EX_CONFIG), which the systemd
// unit's RestartPreventExitStatus keeps from being started again every
// RestartSec; a failure that may pass by itself exits 1, which it retries.
// Both exited 1, and a bad setting was restarted until systemd gave up.
func TestServeExitStatusTellsConfigurationFromFailure(t *testing.T) {
	brokenPolicy := t.TempDir()
	if err := os.WriteFile(filepath.Join(brokenPolicy, "authz.rego"), []byte("package lockbox.authz\n\nallow if {\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	badKey := filepath.Join(t.TempDir(), "grant.pem")
	if err := os.WriteFile(badKey, []byte("not a key\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// A regular file where a directory should be, and a directory where
	// a file should be.
	notDir := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(notDir, []byte("x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	aDir := t.TempDir()
	secret := filepath.Join(t.TempDir(), "webhook-secret")
	if err := os.WriteFile(secret, []byte("k\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	// An address another process holds: Listen fails after Redis answered.
	taken, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer taken.Close()
	tests := []struct {
		name     string
		redis    bool // a Redis that answers, else a closed port
		set      map[string]string
		wantCode int
		wantLine string // a line of stderr starts with it
	}{
		{"a variable that does not parse", false, map[string]string{"LOCKBOX_REDIS_TIMEOUT": "5"}, 78, "lockbox: LOCKBOX_REDIS_TIMEOUT: "},
		{"a required variable unset", false, map[string]string{"LOCKBOX_UPSTREAMS": ""}, 78, "lockbox: LOCKBOX_UPSTREAMS: "},
		{"a deadline past its bound", false, map[string]string{"LOCKBOX_AUDIT_TIMEOUT": "1h"}, 78, "lockbox: LOCKBOX_AUDIT_TIMEOUT: must be at most 10s"},
		{"an interval under its floor", false, map[string]string{"LOCKBOX_SWEEP_INTERVAL": "1ms"}, 78, "lockbox: LOCKBOX_SWEEP_INTERVAL: must be at least 1s, got 1ms"},
		{"a policy directory that does not compile", true, map[string]string{"LOCKBOX_POLICY_DIR": brokenPolicy}, 78, "lockbox: LOCKBOX_POLICY_DIR: "},
		{"a policy directory that does not exist", true, map[string]string{"LOCKBOX_POLICY_DIR": filepath.Join(brokenPolicy, "nowhere")}, 78, "lockbox: LOCKBOX_POLICY_DIR: "},
		{"a signing key file that holds no key", true, map[string]string{"LOCKBOX_PROXY_SIGNING_KEY_FILE": badKey}, 78, "lockbox: LOCKBOX_PROXY_SIGNING_KEY_FILE: "},
		{"a signing key file that does not exist", true, map[string]string{"LOCKBOX_PROXY_SIGNING_KEY_FILE": badKey + ".missing"}, 78, "lockbox: LOCKBOX_PROXY_SIGNING_KEY_FILE: "},
		{"a SIEM file in a directory that does not exist", true, map[string]string{"LOCKBOX_SIEM_SINK": "file:" + filepath.Join(aDir, "missing", "siem.jsonl")}, 78, "lockbox: LOCKBOX_SIEM_SINK: "},
		{"a SIEM file that is a directory", true, map[string]string{"LOCKBOX_SIEM_SINK": "file:" + aDir}, 78, "lockbox: LOCKBOX_SIEM_SINK: "},
		{"a SIEM file beneath a file", true, map[string]string{"LOCKBOX_SIEM_SINK": "file:" + filepath.Join(notDir, "siem.jsonl")}, 78, "lockbox: LOCKBOX_SIEM_SINK: "},
		{"a grant JWKS file in a directory that does not exist", false, map[string]string{"LOCKBOX_PROXY_JWKS_FILE": filepath.Join(aDir, "missing", "jwks.json")}, 78, "lockbox: LOCKBOX_PROXY_JWKS_FILE: "},
		{"a grant JWKS file that is a directory", false, map[string]string{"LOCKBOX_PROXY_JWKS_FILE": aDir}, 78, "lockbox: LOCKBOX_PROXY_JWKS_FILE: "},
		{"an SMTP address without a host", false, map[string]string{"LOCKBOX_SMTP_ADDR": ":25", "LOCKBOX_SMTP_FROM": "lockbox@provider.example"}, 78, "lockbox: LOCKBOX_SMTP_ADDR: "},
		{"an SMTP address on port 0", false, map[string]string{"LOCKBOX_SMTP_ADDR": "mail.example:0", "LOCKBOX_SMTP_FROM": "lockbox@provider.example"}, 78, "lockbox: LOCKBOX_SMTP_ADDR: "},
		{"a webhook URL with its scheme in capitals", false, map[string]string{"LOCKBOX_WEBHOOK_URLS": "HTTPS://hooks.example/lockbox", "LOCKBOX_WEBHOOK_SECRET_FILE": secret}, 78, "lockbox: LOCKBOX_WEBHOOK_URLS: "},
		{"Redis does not answer", false, nil, 1, "lockbox: LOCKBOX_REDIS_URL: "},
		{"an address in use", true, map[string]string{"LOCKBOX_API_ADDR": taken.Addr().String()}, 1, "lockbox: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			// Port 1 is closed: the dial is refused at once, and
			// LOCKBOX_REDIS_TIMEOUT bounds it should it not be.
			url := "redis://127.0.0.1:1"
			if tt.redis {
				url = redistest.URL(t)
			}
			env := serveEnv(t, url)
			env["LOCKBOX_REDIS_TIMEOUT"] = "2s"
			for k, v := range tt.set {
				env[k] = v
			}
			var out, errb bytes.Buffer
			code := run(context.Background(), []string{"serve"}, env, &out, &errb)
			if code != tt.wantCode {
				t.Fatalf("exit %d, want %d\n%s", code, tt.wantCode, errb.String())
			}
			found := false
			for line := range strings.Lines(errb.String()) {
				found = found || strings.HasPrefix(line, tt.wantLine)
			}
			if !found {
				t.Errorf("no line starts with %q:\n%s", tt.wantLine, errb.String())
			}
		})
	}
}

// The status reaches the process's exit, which is what systemd reads.
func TestServeProcessExitsWithConfigStatus(t *testing.T) {
	tests := []struct {
		name     string
		set      []string
		wantCode int
	}{
		{"a bad variable", []string{"LOCKBOX_API_ADDR=bogus"}, 78},
		{"Redis does not answer", nil, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd := exec.Command(os.Args[0], "serve")
			cmd.Env = append(scrubbedEnv(), runMainEnv+"=1")
			for k, v := range serveEnv(t, "redis://127.0.0.1:1") {
				cmd.Env = append(cmd.Env, k+"="+v)
			}
			cmd.Env = append(cmd.Env, "LOCKBOX_REDIS_TIMEOUT=2s")
			cmd.Env = append(cmd.Env, tt.set...)
			var errb bytes.Buffer
			cmd.Stderr = &errb
			err := cmd.Run()
			var ee *exec.ExitError
			if !errors.As(err, &ee) {
				t.Fatalf("lockbox serve: %v, want exit %d\n%s", err, tt.wantCode, errb.String())
			}
			if got := ee.ExitCode(); got != tt.wantCode {
				t.Errorf("exit %d, want %d\n%s", got, tt.wantCode, errb.String())
			}
		})
	}
}

// "lockbox dev" refuses a configuration with the same status as serve;
// "lockbox dev token", which prints and ends, keeps 1.
func TestDevExitStatusForAConfigurationRefused(t *testing.T) {
	env := devEnv(filepath.Join(t.TempDir(), "dev"))
	env["LOCKBOX_REDIS_TIMEOUT"] = "5"
	for _, tt := range []struct {
		args     []string
		wantCode int
	}{
		{[]string{"dev"}, 78},
		{[]string{"dev", "token", "--sub", "a@provider.example", "--roles", "operator"}, 1},
	} {
		var out, errb bytes.Buffer
		if code := run(context.Background(), tt.args, env, &out, &errb); code != tt.wantCode || !strings.Contains(errb.String(), "lockbox: LOCKBOX_REDIS_TIMEOUT: ") {
			t.Errorf("%s: exit %d, want %d naming LOCKBOX_REDIS_TIMEOUT:\n%s", strings.Join(tt.args, " "), code, tt.wantCode, errb.String())
		}
	}

	// A LOCKBOX_DEV_DIR beneath a regular file can't be made: dev
	// exited 1, as for a failure that may pass.
	notDir := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(notDir, []byte("x\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"dev"}, devEnv(filepath.Join(notDir, "dev")), &out, &errb); code != exitConfig ||
		!strings.Contains(errb.String(), "lockbox: LOCKBOX_DEV_DIR: ") {
		t.Errorf("dev with LOCKBOX_DEV_DIR beneath a file: exit %d, want %d naming LOCKBOX_DEV_DIR:\n%s", code, exitConfig, errb.String())
	}
}

// What a Redis that answers refuses of the settings is the configuration's
// too: Lockbox's credentials (WRONGPASS, NOAUTH) and LOCKBOX_AUDIT_AOF's
// WAITAOF (a Redis before 7.2, or without appendonly) are refused again on
// every start until the operator changes a setting, so they exit 78 with a
// line naming it. They exited 1, and systemd started Lockbox again every
// RestartSec on a password that stayed wrong. A Redis that is loading its
// data set answers with an error too, and passes by itself: 1.
func TestServeExitStatusForWhatRedisRefuses(t *testing.T) {
	const password = "the-right-password"
	srv := redistest.StartServer(t)
	// Set once the server is up: redistest's readiness check speaks no
	// AUTH.
	admin := redis.NewClient(&redis.Options{Addr: srv.Addr})
	// Users Lockbox's start-up needs more of than they are granted
	// (NOPERM): one that may not PING, one that may touch no key of
	// Lockbox's.
	for _, user := range [][]any{
		{"ACL", "SETUSER", "noping", "on", ">" + password, "~*", "&*", "+@all", "-ping"},
		{"ACL", "SETUSER", "otherkeys", "on", ">" + password, "~other:*", "&*", "+@all"},
	} {
		if err := admin.Do(context.Background(), user...).Err(); err != nil {
			t.Fatal(err)
		}
	}
	err := admin.ConfigSet(context.Background(), "requirepass", password).Err()
	admin.Close()
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	rightFile, wrongFile := filepath.Join(dir, "right"), filepath.Join(dir, "wrong")
	if err := os.WriteFile(rightFile, []byte(password+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(wrongFile, []byte("a-wrong-password\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	loading := loadingRedis(t)
	// A Redis whose default user, the one Lockbox is when no user is
	// set, may not PING.
	defaultNoPing := redistest.StartServer(t)
	admin = redis.NewClient(&redis.Options{Addr: defaultNoPing.Addr})
	err = admin.Do(context.Background(), "ACL", "SETUSER", "default", "-ping").Err()
	admin.Close()
	if err != nil {
		t.Fatal(err)
	}

	bare := "redis://" + srv.Addr + "/0"
	tests := []struct {
		name     string
		url      string
		set      map[string]string
		wantCode int
		wantLine string // a line of stderr starts with it
		wantToo  string // and holds this
	}{
		{"a wrong password in LOCKBOX_REDIS_URL", "redis://:a-wrong-password@" + srv.Addr + "/0", nil, 78, "lockbox: LOCKBOX_REDIS_URL: ", "WRONGPASS"},
		{"a wrong password in LOCKBOX_REDIS_PASSWORD_FILE", bare, map[string]string{"LOCKBOX_REDIS_PASSWORD_FILE": wrongFile}, 78, "lockbox: LOCKBOX_REDIS_PASSWORD_FILE: ", "WRONGPASS"},
		{"a user Redis does not know", bare, map[string]string{"LOCKBOX_REDIS_USERNAME": "nobody", "LOCKBOX_REDIS_PASSWORD_FILE": rightFile}, 78, "lockbox: LOCKBOX_REDIS_PASSWORD_FILE: ", "LOCKBOX_REDIS_USERNAME"},
		{"no password for a Redis that asks for one", bare, nil, 78, "lockbox: LOCKBOX_REDIS_PASSWORD_FILE: ", "NOAUTH"},
		// The right password passes: WAITAOF is what is refused then.
		{"LOCKBOX_AUDIT_AOF with a Redis that can't confirm fsyncs", bare, map[string]string{"LOCKBOX_REDIS_PASSWORD_FILE": rightFile, "LOCKBOX_AUDIT_AOF": "true"}, 78, "lockbox: LOCKBOX_AUDIT_AOF: ", "WAITAOF"},
		{"a user of LOCKBOX_REDIS_USERNAME that may not PING", bare, map[string]string{"LOCKBOX_REDIS_USERNAME": "noping", "LOCKBOX_REDIS_PASSWORD_FILE": rightFile}, 78, "lockbox: LOCKBOX_REDIS_USERNAME: ", "PING"},
		{"a user of LOCKBOX_REDIS_URL that may not PING", "redis://noping:" + password + "@" + srv.Addr + "/0", nil, 78, "lockbox: LOCKBOX_REDIS_URL: ", "PING"},
		{"Redis's default user that may not PING", "redis://" + defaultNoPing.Addr + "/0", nil, 78, "lockbox: LOCKBOX_REDIS_USERNAME: ", "default user"},
		{"a user that may touch none of Lockbox's keys", bare, map[string]string{"LOCKBOX_REDIS_USERNAME": "otherkeys", "LOCKBOX_REDIS_PASSWORD_FILE": rightFile}, 78, "lockbox: LOCKBOX_REDIS_USERNAME: ", "NOPERM"},
		{"a Redis loading its data set", loading, nil, 1, "lockbox: LOCKBOX_REDIS_URL: ", "LOADING"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := serveEnv(t, tt.url)
			env["LOCKBOX_REDIS_TIMEOUT"] = "5s"
			for k, v := range tt.set {
				env[k] = v
			}
			var out, errb bytes.Buffer
			code := run(context.Background(), []string{"serve"}, env, &out, &errb)
			if code != tt.wantCode {
				t.Fatalf("exit %d, want %d\n%s", code, tt.wantCode, errb.String())
			}
			found := false
			for line := range strings.Lines(errb.String()) {
				found = found || strings.HasPrefix(line, tt.wantLine) && strings.Contains(line, tt.wantToo)
			}
			if !found {
				t.Errorf("no line starts with %q and holds %q:\n%s", tt.wantLine, tt.wantToo, errb.String())
			}
			if strings.Contains(errb.String(), password) {
				t.Errorf("stderr holds the password:\n%s", errb.String())
			}
		})
	}
}

// loadingRedis is the URL of a Redis of t's own that stays busy loading
// its data set (DEBUG RELOAD, each key's load slowed down well past the
// test's end), answering LOADING as a Redis does after a restart.
func loadingRedis(t *testing.T) string {
	t.Helper()
	srv := redistest.StartServer(t, "--enable-debug-command", "local")
	ctx := context.Background()
	c := redis.NewClient(&redis.Options{Addr: srv.Addr, MaxRetries: -1})
	defer c.Close()
	for _, cmd := range [][]any{
		{"DEBUG", "POPULATE", 100_000},
		// 1 ms a key: 100 s, answering between keys every 1 KiB read.
		{"CONFIG", "SET", "key-load-delay", 1000},
		{"CONFIG", "SET", "loading-process-events-interval-bytes", 1024},
	} {
		if err := c.Do(ctx, cmd...).Err(); err != nil {
			t.Fatalf("%v: %v", cmd, err)
		}
	}
	// DEBUG RELOAD answers once the load is over: send it on a
	// connection of its own and leave it.
	reload := redis.NewClient(&redis.Options{Addr: srv.Addr, MaxRetries: -1, ReadTimeout: -1})
	t.Cleanup(func() { reload.Close() })
	go reload.Do(context.Background(), "DEBUG", "RELOAD")
	// The reload saves first, then loads: wait for the first LOADING.
	deadline := time.Now().Add(30 * time.Second)
	for {
		err := c.Ping(ctx).Err()
		if redis.IsLoadingError(err) {
			return "redis://" + srv.Addr + "/0"
		}
		if time.Now().After(deadline) {
			t.Fatalf("the Redis at %s never answered LOADING after DEBUG RELOAD: %v", srv.Addr, err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// A port below net.ipv4.ip_unprivileged_port_start needs
// CAP_NET_BIND_SERVICE, which the systemd unit grants no one: the bind is
// refused (EACCES) on every start until the address changes, so it exits
// 78 naming the variable. It exited 1, and was restarted every RestartSec.
func TestServeExitStatusForAPortItMayNotBind(t *testing.T) {
	raw, err := os.ReadFile("/proc/sys/net/ipv4/ip_unprivileged_port_start")
	if err != nil {
		t.Fatal(err)
	}
	first, err := strconv.Atoi(strings.TrimSpace(string(raw)))
	if err != nil {
		t.Fatal(err)
	}
	if first <= 1 {
		t.Skipf("net.ipv4.ip_unprivileged_port_start is %d: no port needs a privilege to bind here", first)
	}
	env := serveEnv(t, redistest.URL(t))
	env["LOCKBOX_PROXY_ADDR"] = "127.0.0.1:1"
	// The deadline only bounds a failure: a bind that passed would serve.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, os.Args[0], "serve")
	if os.Geteuid() == 0 {
		// Root may bind it: run Lockbox as the unit does, without the
		// capability.
		setpriv, err := exec.LookPath("setpriv")
		if err != nil {
			t.Fatalf("running as root, the test drops CAP_NET_BIND_SERVICE with setpriv (util-linux): %v", err)
		}
		cmd = exec.CommandContext(ctx, setpriv, "--bounding-set", "-net_bind_service", "--", os.Args[0], "serve")
	}
	cmd.Env = append(scrubbedEnv(), runMainEnv+"=1")
	for k, v := range env {
		cmd.Env = append(cmd.Env, k+"="+v)
	}
	var errb bytes.Buffer
	cmd.Stderr = &errb
	err = cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != exitConfig {
		t.Fatalf("lockbox serve: %v, want exit %d\n%s", err, exitConfig, errb.String())
	}
	found := false
	for line := range strings.Lines(errb.String()) {
		found = found || strings.HasPrefix(line, "lockbox: LOCKBOX_PROXY_ADDR: ") && strings.Contains(line, "permission denied")
	}
	if !found {
		t.Errorf("no line names LOCKBOX_PROXY_ADDR and the refusal:\n%s", errb.String())
	}
}

// Sentinels that refuse Lockbox's password for them refuse it with the
// same WRONGPASS or NOAUTH as the master refusing its own, and go-redis's
// error does not say which spoke: the line names the sentinels' variable,
// LOCKBOX_REDIS_SENTINEL_PASSWORD_FILE, not the master's.
func TestServeExitStatusForSentinelsRefusingTheirPassword(t *testing.T) {
	s := redistest.StartSentinel(t)
	for _, sn := range s.Sentinels {
		c := redis.NewClient(&redis.Options{Addr: sn.Addr})
		err := c.Do(context.Background(), "ACL", "SETUSER", "default", "on", ">the-sentinels-password").Err()
		c.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
	wrong := filepath.Join(t.TempDir(), "wrong")
	if err := os.WriteFile(wrong, []byte("a-wrong-password\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name, file, want string
	}{
		{"no password for the sentinels", "", "NOAUTH"},
		{"a wrong password for the sentinels", wrong, "WRONGPASS"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			env := serveEnv(t, "")
			delete(env, "LOCKBOX_REDIS_URL")
			env["LOCKBOX_REDIS_SENTINEL_ADDRS"] = s.Seeds()
			env["LOCKBOX_REDIS_SENTINEL_MASTER"] = redistest.SentinelMaster
			env["LOCKBOX_REDIS_TIMEOUT"] = "5s"
			if tt.file != "" {
				env["LOCKBOX_REDIS_SENTINEL_PASSWORD_FILE"] = tt.file
			}
			var out, errb bytes.Buffer
			if code := run(context.Background(), []string{"serve"}, env, &out, &errb); code != exitConfig {
				t.Fatalf("exit %d, want %d\n%s", code, exitConfig, errb.String())
			}
			found := false
			for line := range strings.Lines(errb.String()) {
				found = found || strings.HasPrefix(line, "lockbox: LOCKBOX_REDIS_SENTINEL_PASSWORD_FILE: ") && strings.Contains(line, tt.want)
			}
			if !found {
				t.Errorf("no line starts with LOCKBOX_REDIS_SENTINEL_PASSWORD_FILE and holds %s:\n%s", tt.want, errb.String())
			}
		})
	}
}

// A listen address no interface of this host has is refused
// (EADDRNOTAVAIL) on every start until the setting changes: exit 78 with
// a line naming the variable. It exited 1, and was restarted every
// RestartSec.
func TestServeExitStatusForAnAddressNotOnThisHost(t *testing.T) {
	if raw, err := os.ReadFile("/proc/sys/net/ipv4/ip_nonlocal_bind"); err == nil && strings.TrimSpace(string(raw)) != "0" {
		t.Skip("net.ipv4.ip_nonlocal_bind is set: this host binds any address")
	}
	addr := addressNotOnThisHost(t)
	env := serveEnv(t, redistest.URL(t))
	env["LOCKBOX_API_ADDR"] = net.JoinHostPort(addr, "8080")
	var out, errb bytes.Buffer
	if code := run(context.Background(), []string{"serve"}, env, &out, &errb); code != exitConfig {
		t.Fatalf("exit %d, want %d\n%s", code, exitConfig, errb.String())
	}
	found := false
	for line := range strings.Lines(errb.String()) {
		found = found || strings.HasPrefix(line, "lockbox: LOCKBOX_API_ADDR: ") && strings.Contains(line, addr)
	}
	if !found {
		t.Errorf("no line starts with LOCKBOX_API_ADDR and names %s:\n%s", addr, errb.String())
	}
}

// addressNotOnThisHost is an address of the documentation ranges (RFC
// 5737) that no interface of this host has.
func addressNotOnThisHost(t *testing.T) string {
	t.Helper()
	have, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, candidate := range []string{"192.0.2.1", "198.51.100.1", "203.0.113.1"} {
		ip := net.ParseIP(candidate)
		mine := false
		for _, a := range have {
			if n, ok := a.(*net.IPNet); ok && n.IP.Equal(ip) {
				mine = true
			}
		}
		if !mine {
			return candidate
		}
	}
	t.Fatal("this host has every documentation address the test would try")
	return ""
}

// A Redis in protected mode (protected-mode yes, no password for its
// default user) refuses every client outside its loopback interface with
// DENIED until it gets a password or Lockbox another address: exit 78
// naming LOCKBOX_REDIS_URL. go-redis took the DENIED for an answer to
// HELLO from an older Redis, and Lockbox saw a broken pipe: "does not
// answer", exit 1.
func TestServeExitStatusForARedisInProtectedMode(t *testing.T) {
	ip := nonLoopbackAddress(t)
	srv := redistest.StartServer(t, "--bind", "127.0.0.1", ip, "--protected-mode", "yes")
	env := serveEnv(t, "redis://"+net.JoinHostPort(ip, strconv.Itoa(srv.Port))+"/0")
	env["LOCKBOX_REDIS_TIMEOUT"] = "5s"
	serveRefusesInOneLine(t, context.Background(), env, "LOCKBOX_REDIS_URL", "DENIED", "protected mode")
}

// serveRefusesInOneLine runs "lockbox serve" with env and wants exit 78
// and a line on stderr naming variable and holding every one of words.
func serveRefusesInOneLine(t *testing.T, ctx context.Context, env map[string]string, variable string, words ...string) {
	t.Helper()
	var out, errb bytes.Buffer
	if code := run(ctx, []string{"serve"}, env, &out, &errb); code != exitConfig {
		t.Fatalf("exit %d, want %d\n%s", code, exitConfig, errb.String())
	}
	for line := range strings.Lines(errb.String()) {
		if strings.HasPrefix(line, "lockbox: "+variable+": ") && !slices.ContainsFunc(words, func(w string) bool { return !strings.Contains(line, w) }) {
			return
		}
	}
	t.Errorf("no line starts with %s and holds %q:\n%s", variable, words, errb.String())
}

// nonLoopbackAddress is an IPv4 address of this host outside the loopback
// interface, from which Redis's protected mode refuses clients.
func nonLoopbackAddress(t *testing.T) string {
	t.Helper()
	have, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range have {
		if n, ok := a.(*net.IPNet); ok && n.IP.To4() != nil && !n.IP.IsLoopback() && !n.IP.IsLinkLocalUnicast() {
			return n.IP.String()
		}
	}
	t.Skip("this host has no IPv4 address outside its loopback interface: no client of it meets Redis's protected mode")
	return ""
}

// The master the sentinels name is no address of Lockbox's settings:
// Lockbox dials it only once a sentinel named it. In protected mode it
// refused Lockbox with DENIED all the same, and start-up, which asked
// only the sentinels, said the master "does not answer": exit 1,
// restarted every RestartSec. It exits 78 naming the master's address.
func TestServeExitStatusForASentinelMasterInProtectedMode(t *testing.T) {
	ip := nonLoopbackAddress(t)
	s := redistest.StartSentinel(t)
	ctx := context.Background()
	master := redis.NewClient(&redis.Options{Addr: s.Master.Addr})
	err := master.ConfigSet(ctx, "bind", "127.0.0.1 "+ip).Err()
	master.Close()
	if err != nil {
		t.Fatal(err)
	}
	// The sentinels name the master at the address they monitor: from
	// now on, one outside the loopback interface.
	named := net.JoinHostPort(ip, strconv.Itoa(s.Master.Port))
	for _, sn := range s.Sentinels {
		c := redis.NewSentinelClient(&redis.Options{Addr: sn.Addr})
		err := c.Remove(ctx, redistest.SentinelMaster).Err()
		if err == nil {
			err = c.Monitor(ctx, redistest.SentinelMaster, ip, strconv.Itoa(s.Master.Port), "2").Err()
		}
		c.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
	env := serveEnv(t, "")
	delete(env, "LOCKBOX_REDIS_URL")
	env["LOCKBOX_REDIS_SENTINEL_ADDRS"] = s.Seeds()
	env["LOCKBOX_REDIS_SENTINEL_MASTER"] = redistest.SentinelMaster
	env["LOCKBOX_REDIS_TIMEOUT"] = "5s"
	serveRefusesInOneLine(t, ctx, env, "LOCKBOX_REDIS_SENTINEL_ADDRS", named, "DENIED")
}

// A Redis Cluster names its nodes to Lockbox (CLUSTER SLOTS): a node in
// protected mode at an address outside its loopback interface refused
// Lockbox with DENIED though every seed answered. Start-up asked only the
// seeds, and passed or failed on which node its PING reached; the calls
// for the refusing node's slots failed for as long as Lockbox ran. It
// exits 78 naming the node.
func TestServeExitStatusForAClusterNodeInProtectedMode(t *testing.T) {
	ip := nonLoopbackAddress(t)
	c := redistest.StartOwnCluster(t, 3, 0)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	// The node tells clients it is at ip (cluster-announce-hostname,
	// which leaves the cluster bus on the loopback interface); the others
	// at the loopback address they listen on.
	refusing := c.Nodes[1]
	named := net.JoinHostPort(ip, strconv.Itoa(refusing.Port))
	for _, n := range c.Nodes {
		host := "127.0.0.1"
		sets := [][2]string{{"cluster-preferred-endpoint-type", "hostname"}}
		if n == refusing {
			host = ip
			sets = append(sets, [2]string{"bind", "127.0.0.1 " + ip})
		}
		sets = append(sets, [2]string{"cluster-announce-hostname", host})
		rdb := redis.NewClient(&redis.Options{Addr: n.Addr})
		for _, kv := range sets {
			if err := rdb.ConfigSet(ctx, kv[0], kv[1]).Err(); err != nil {
				t.Fatalf("%s: CONFIG SET %s: %v", n.Addr, kv[0], err)
			}
		}
		rdb.Close()
	}
	// Every node names it at ip before Lockbox asks any.
	for _, n := range c.Nodes {
		for {
			rdb := redis.NewClient(&redis.Options{Addr: n.Addr})
			slots, err := rdb.ClusterSlots(ctx).Result()
			rdb.Close()
			if err != nil {
				t.Fatal(err)
			}
			names := false
			for _, s := range slots {
				for _, sn := range s.Nodes {
					names = names || sn.Addr == named
				}
			}
			if names {
				break
			}
			select {
			case <-ctx.Done():
				t.Fatalf("%s never named the node at %s: %v", n.Addr, named, slots)
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	env := serveEnv(t, "")
	delete(env, "LOCKBOX_REDIS_URL")
	env["LOCKBOX_REDIS_CLUSTER_ADDRS"] = c.Seeds()
	env["LOCKBOX_REDIS_TIMEOUT"] = "5s"
	serveRefusesInOneLine(t, ctx, env, "LOCKBOX_REDIS_CLUSTER_ADDRS", named, "DENIED")
}

// A topology setting that names the wrong kind of Redis is refused on
// every start until it changes: LOCKBOX_REDIS_CLUSTER_ADDRS naming a
// Redis with cluster support disabled, or sentinels, whose every CLUSTER
// SLOTS fails; LOCKBOX_REDIS_URL naming one node of a Redis Cluster,
// which answers MOVED for the keys of every slot it does not serve, or a
// sentinel, which knows no data command. Each exited 1 (as a Redis that
// "does not answer", or on start-up's first write), and was restarted
// every RestartSec; each exits 78 with a line naming the variable and the
// variable to use instead.
func TestServeExitStatusForTheWrongRedisTopology(t *testing.T) {
	plain := redistest.StartServer(t)
	cluster := redistest.SharedCluster(t)
	sentinels := redistest.StartSentinel(t)
	tests := []struct {
		name     string
		set      map[string]string
		wantLine string // a line of stderr starts with it
		wantToo  string // and holds this
	}{
		{"cluster addresses naming a Redis without cluster support", map[string]string{"LOCKBOX_REDIS_CLUSTER_ADDRS": plain.Addr}, "lockbox: LOCKBOX_REDIS_CLUSTER_ADDRS: ", "LOCKBOX_REDIS_URL"},
		{"a URL naming a node of a Redis Cluster", map[string]string{"LOCKBOX_REDIS_URL": "redis://" + cluster.Nodes[0].Addr + "/0"}, "lockbox: LOCKBOX_REDIS_URL: ", "LOCKBOX_REDIS_CLUSTER_ADDRS"},
		{"a URL naming a sentinel", map[string]string{"LOCKBOX_REDIS_URL": "redis://" + sentinels.Sentinels[0].Addr + "/0"}, "lockbox: LOCKBOX_REDIS_URL: ", "LOCKBOX_REDIS_SENTINEL_ADDRS"},
		{"cluster addresses naming sentinels", map[string]string{"LOCKBOX_REDIS_CLUSTER_ADDRS": sentinels.Seeds()}, "lockbox: LOCKBOX_REDIS_CLUSTER_ADDRS: ", "LOCKBOX_REDIS_SENTINEL_ADDRS"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := serveEnv(t, "")
			delete(env, "LOCKBOX_REDIS_URL")
			env["LOCKBOX_REDIS_TIMEOUT"] = "5s"
			for k, v := range tt.set {
				env[k] = v
			}
			var out, errb bytes.Buffer
			if code := run(context.Background(), []string{"serve"}, env, &out, &errb); code != exitConfig {
				t.Fatalf("exit %d, want %d\n%s", code, exitConfig, errb.String())
			}
			found := false
			for line := range strings.Lines(errb.String()) {
				found = found || strings.HasPrefix(line, tt.wantLine) && strings.Contains(line, tt.wantToo)
			}
			if !found {
				t.Errorf("no line starts with %q and holds %q:\n%s", tt.wantLine, tt.wantToo, errb.String())
			}
		})
	}
}

// Sentinels that answer, and answer that they know no master of
// LOCKBOX_REDIS_SENTINEL_MASTER's name (a typo, another deployment's
// sentinels), or servers that answer and are no sentinels, are asked again
// on every start to the same effect: exit 78 with a line naming the
// variable to mend. go-redis folded either into "all sentinels specified
// in configuration are unreachable", exit 1, and systemd restarted it
// every RestartSec.
func TestServeExitStatusForSentinelsThatCanNotNameTheMaster(t *testing.T) {
	s := redistest.StartSentinel(t)
	plain := redistest.StartServer(t)
	tests := []struct {
		name, addrs, master string
		wantLine, wantToo   string
	}{
		{"a master name the sentinels do not know", s.Seeds(), "no-such-master", "lockbox: LOCKBOX_REDIS_SENTINEL_MASTER: ", "no-such-master"},
		{"sentinel addresses naming a Redis that is no sentinel", plain.Addr, redistest.SentinelMaster, "lockbox: LOCKBOX_REDIS_SENTINEL_ADDRS: ", plain.Addr},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := serveEnv(t, "")
			delete(env, "LOCKBOX_REDIS_URL")
			env["LOCKBOX_REDIS_SENTINEL_ADDRS"] = tt.addrs
			env["LOCKBOX_REDIS_SENTINEL_MASTER"] = tt.master
			env["LOCKBOX_REDIS_TIMEOUT"] = "5s"
			var out, errb bytes.Buffer
			if code := run(context.Background(), []string{"serve"}, env, &out, &errb); code != exitConfig {
				t.Fatalf("exit %d, want %d\n%s", code, exitConfig, errb.String())
			}
			found := false
			for line := range strings.Lines(errb.String()) {
				found = found || strings.HasPrefix(line, tt.wantLine) && strings.Contains(line, tt.wantToo)
			}
			if !found {
				t.Errorf("no line starts with %q and holds %q:\n%s", tt.wantLine, tt.wantToo, errb.String())
			}
		})
	}
}
