package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/lockbox-oss/lockbox/api/client"
	"github.com/lockbox-oss/lockbox/api/wire"
	"github.com/lockbox-oss/lockbox/audit"
	"github.com/lockbox-oss/lockbox/grantsig"
	"github.com/lockbox-oss/lockbox/identity"
	"github.com/lockbox-oss/lockbox/internal/keys"
	"github.com/lockbox-oss/lockbox/internal/redistest"
)

// runMainEnv makes the test binary run Lockbox's main instead of the
// tests: the tests below run it as a process of its own, whose stdout and
// stderr are pipes, as "lockbox serve | forwarder" has them. (Not a
// LOCKBOX_ name: serve would warn of it as a misspelt setting.)
const runMainEnv = "RUN_LOCKBOX_MAIN"

func TestMain(m *testing.M) {
	if os.Getenv(runMainEnv) == "1" {
		main()
		return
	}
	// redistest.Run stops the cluster the tests share (SharedCluster).
	os.Exit(redistest.Run(m))
}

// serveProcess is a "lockbox serve" running main in a process of its own.
type serveProcess struct {
	cmd     *exec.Cmd
	exited  chan struct{} // closed when the process has ended; then waitErr is set
	waitErr error
	logs    *syncBuffer // what it wrote to stderr while the test read it
	stderr  *os.File    // the read end of its stderr
	api     string
	proxy   string
	metrics string
}

// startServe starts "lockbox serve" with the SIEM sink on stdout, stdout
// a pipe whose reader has gone (a log shipper that died), and stderr a
// pipe the test reads, and returns once it is listening.
func startServe(t *testing.T, dir, redisURL string) *serveProcess {
	t.Helper()
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		io.WriteString(w, "{}")
	}))
	t.Cleanup(upstream.Close)

	outR, outW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	outR.Close() // nobody reads stdout: a write to it finds a broken pipe
	errR, errW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(os.Args[0], "serve")
	cmd.Env = append(scrubbedEnv(), runMainEnv+"=1",
		"LOCKBOX_REDIS_URL="+redisURL,
		"LOCKBOX_JWT_JWKS_FILE="+filepath.Join(dir, identity.DevJWKSFile),
		"LOCKBOX_API_ADDR=127.0.0.1:0", "LOCKBOX_PROXY_ADDR=127.0.0.1:0", "LOCKBOX_METRICS_ADDR=127.0.0.1:0",
		"LOCKBOX_UPSTREAMS=exchange="+upstream.URL,
		"LOCKBOX_PROXY_SIGNING_KEY_FILE="+filepath.Join(dir, "grant.pem"),
		"LOCKBOX_SIEM_SINK=stdout",
		"LOCKBOX_SIEM_CONSUMER=replica-1",
	)
	cmd.Stdout, cmd.Stderr = outW, errW
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	outW.Close()
	errW.Close()
	p := &serveProcess{cmd: cmd, exited: make(chan struct{}), logs: &syncBuffer{}, stderr: errR}
	go func() {
		p.waitErr = cmd.Wait()
		close(p.exited)
	}()
	go io.Copy(p.logs, errR) // until the process ends or the test closes errR
	t.Cleanup(func() {
		select {
		case <-p.exited:
			return // the test failed already
		default:
		}
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.exited:
			if p.waitErr != nil {
				t.Errorf("lockbox serve did not stop cleanly: %v\n%s", p.waitErr, p.logs.String())
			}
		case <-time.After(30 * time.Second):
			_ = cmd.Process.Kill()
			<-p.exited
			t.Errorf("lockbox serve did not stop within 30s of SIGTERM\n%s", p.logs.String())
		}
		errR.Close()
	})

	listening := regexp.MustCompile(`msg="lockbox listening" .*api=(\S+) proxy=(\S+) metrics=(\S+)`)
	deadline := time.After(30 * time.Second)
	for {
		if m := listening.FindStringSubmatch(p.logs.String()); m != nil {
			p.api, p.proxy, p.metrics = "http://"+m[1], "http://"+m[2], "http://"+m[3]
			return p
		}
		select {
		case <-p.exited:
			t.Fatalf("lockbox serve ended before listening: %v\n%s", p.waitErr, p.logs.String())
		case <-deadline:
			t.Fatalf("lockbox serve not listening after 30s\n%s", p.logs.String())
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// scrubbedEnv is the test's environment without LOCKBOX_ settings, so a
// developer's shell can't change what the process does.
func scrubbedEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "LOCKBOX_") && !strings.HasPrefix(kv, runMainEnv+"=") {
			env = append(env, kv)
		}
	}
	return env
}

// siemFailed reads lockbox_siem_records_total{result="failed"} from the
// metrics address.
func siemFailed(metrics string) (float64, error) {
	resp, err := http.Get(metrics + "/metrics")
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), `lockbox_siem_records_total{result="failed"} `); ok {
			return strconv.ParseFloat(v, 64)
		}
	}
	return 0, errors.Join(sc.Err(), errors.New("no lockbox_siem_records_total{result=\"failed\"}"))
}

// With LOCKBOX_SIEM_SINK=stdout and the reader of stdout gone, the first
// SIEM line written killed the whole process with SIGPIPE, proxy and all:
// the Go runtime ends a program that writes to a broken pipe on fd 1 or 2
// unless it asked for SIGPIPE. Now the write fails (EPIPE) like any sink
// error: the record stays pending in the tenant's SIEM group for the next
// pass, the failure is counted and logged, and the proxy goes on serving.
// The same holds when stderr, where the logs go, is a broken pipe too.
func TestServeSurvivesBrokenStdoutPipe(t *testing.T) {
	for _, tc := range []struct {
		name         string
		brokenStderr bool
	}{
		{"stdout", false},
		{"stdout and stderr", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			key, err := identity.GenerateDevKey()
			if err != nil {
				t.Fatal(err)
			}
			if _, _, err := identity.WriteDevKeys(dir, key); err != nil {
				t.Fatal(err)
			}
			if _, err := grantsig.EnsureKeyFiles(filepath.Join(dir, "grant.pem"), filepath.Join(dir, "grant.pub.pem")); err != nil {
				t.Fatal(err)
			}
			token := func(sub string, role identity.Role) string {
				tok, err := identity.Mint(key, "lockbox", "lockbox", identity.Claims{Subject: sub, Roles: []identity.Role{role}}, time.Now())
				if err != nil {
					t.Fatal(err)
				}
				return tok
			}
			redisURL := redistest.URL(t)
			opts, err := redis.ParseURL(redisURL)
			if err != nil {
				t.Fatal(err)
			}
			rdb := redis.NewClient(opts)
			t.Cleanup(func() { rdb.Close() })

			p := startServe(t, dir, redisURL)
			if tc.brokenStderr {
				p.stderr.Close() // the log shipper reading stderr is gone too
			}
			ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
			defer cancel()

			// An audited action: its record is forwarded to stdout.
			admin, err := client.New(p.api, token("lara@provider.example", identity.RoleLockboxAdmin))
			if err != nil {
				t.Fatal(err)
			}
			if _, err := admin.Onboard(ctx, wire.Onboarding{ID: "contoso", DisplayName: "Contoso Ltd", Domains: []string{"contoso.example"}}); err != nil {
				t.Fatalf("onboard: %v\n%s", err, p.logs.String())
			}

			// The forwarder tries to write the record, and fails.
			deadline := time.After(30 * time.Second)
			for {
				n, err := siemFailed(p.metrics)
				if err == nil && n >= 1 {
					break
				}
				select {
				case <-p.exited:
					t.Fatalf("lockbox serve died writing the SIEM line to a broken stdout: %v\n%s", p.waitErr, p.logs.String())
				case <-deadline:
					t.Fatalf("no failed SIEM write counted after 30s (last: %v %v)\n%s", n, err, p.logs.String())
				case <-time.After(50 * time.Millisecond):
				}
			}

			// The record is not acknowledged: it waits in the group.
			stream := keys.Audit("contoso")
			pending, err := rdb.XPending(ctx, stream, audit.SIEMGroup).Result()
			if err != nil {
				t.Fatal(err)
			}
			written, err := rdb.XLen(ctx, stream).Result()
			if err != nil {
				t.Fatal(err)
			}
			if written == 0 || pending.Count != written {
				t.Errorf("%d of the tenant's %d records pending in the SIEM group, want all", pending.Count, written)
			}

			// The proxy still answers (here, with its refusal of a call
			// without a grant).
			req, _ := http.NewRequestWithContext(ctx, "GET", p.proxy+"/exchange/tenants/contoso/mailboxes", nil)
			req.Header.Set("Authorization", "Bearer "+token("alice@provider.example", identity.RoleOperator))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatalf("proxy: %v\n%s", err, p.logs.String())
			}
			var body struct {
				Error struct{ Code string } `json:"error"`
			}
			err = json.NewDecoder(resp.Body).Decode(&body)
			resp.Body.Close()
			if resp.StatusCode != http.StatusForbidden || err != nil || body.Error.Code != "no_grant" {
				t.Errorf("proxy answered %d %+v (%v), want 403 no_grant", resp.StatusCode, body, err)
			}

			if !tc.brokenStderr {
				// Logged, with the reason.
				logWait := time.After(30 * time.Second)
				for !strings.Contains(p.logs.String(), `msg="siem forwarding failed; retrying"`) {
					select {
					case <-logWait:
						t.Fatalf("the failure was not logged:\n%s", p.logs.String())
					case <-time.After(20 * time.Millisecond):
					}
				}
				if !strings.Contains(p.logs.String(), "broken pipe") {
					t.Errorf("the log does not say the pipe is broken:\n%s", p.logs.String())
				}
			}
			select {
			case <-p.exited:
				t.Fatalf("lockbox serve ended: %v\n%s", p.waitErr, p.logs.String())
			default:
			}
		})
	}
}

// Only the servers outlive a broken pipe: a command that prints and ends
// ("lockbox policy test -v | head") ends quietly with SIGPIPE when its
// reader is gone, as command-line programs do, rather than carry on and
// report "broken pipe".
func TestCommandsEndOnBrokenStdoutPipe(t *testing.T) {
	outR, outW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	outR.Close()
	cmd := exec.Command(os.Args[0], "version")
	cmd.Env = append(scrubbedEnv(), runMainEnv+"=1")
	cmd.Stdout = outW
	var errb syncBuffer
	cmd.Stderr = &errb
	err = cmd.Run()
	outW.Close()
	ee, ok := err.(*exec.ExitError)
	if !ok {
		t.Fatalf("lockbox version on a broken stdout: %v, want it ended by SIGPIPE\n%s", err, errb.String())
	}
	if ws, ok := ee.Sys().(syscall.WaitStatus); !ok || !ws.Signaled() || ws.Signal() != syscall.SIGPIPE {
		t.Fatalf("lockbox version on a broken stdout: %v, want it ended by SIGPIPE\n%s", err, errb.String())
	}
}
