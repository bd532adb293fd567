package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	osexec "os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lockbox-oss/lockbox/grants"
	"github.com/lockbox-oss/lockbox/grantsig"
	"github.com/lockbox-oss/lockbox/identity"
	"github.com/lockbox-oss/lockbox/internal/redistest"
	lockboxrego "github.com/lockbox-oss/lockbox/rego"
)

func exec(t *testing.T, name string, args ...string) *osexec.Cmd {
	t.Helper()
	cmd := osexec.Command(name, args...)
	cmd.Env = scrubbedEnv()
	return cmd
}

// goBuild is "go build -o out pkg" as "make build" runs it, static and
// with -trimpath: the binaries tested are the ones shipped, and "make
// test" vets with the same flags, so only their main packages are
// compiled here (Makefile, STATIC).
func goBuild(t *testing.T, out, pkg string) *osexec.Cmd {
	t.Helper()
	cmd := exec(t, "go", "build", "-trimpath", "-o", out, pkg)
	cmd.Env = append(cmd.Env, "CGO_ENABLED=0")
	return cmd
}

// scrubbedEnv is the test's environment without LOCKBOX_ settings, so a
// developer's shell can't change what the binaries do.
func scrubbedEnv(extra ...string) []string {
	var env []string
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "LOCKBOX_") {
			env = append(env, kv)
		}
	}
	return append(env, extra...)
}

func freeAddr(t *testing.T) string {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().String()
}

func waitReady(t *testing.T, url string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return
			}
		}
		time.Sleep(50 * time.Millisecond)
	}
	t.Fatalf("%s never became ready", url)
}

func runBinaries(t *testing.T, lockbox, ctl string) {
	t.Run("serve", func(t *testing.T) {
		dir := t.TempDir()
		key, _ := identity.GenerateDevKey()
		if _, _, err := identity.WriteDevKeys(dir, key); err != nil {
			t.Fatal(err)
		}
		if _, err := grantsig.EnsureKeyFiles(filepath.Join(dir, "grant.pem"), filepath.Join(dir, "grant.pub.pem")); err != nil {
			t.Fatal(err)
		}
		api, metrics := freeAddr(t), freeAddr(t)
		env := scrubbedEnv(
			"LOCKBOX_REDIS_URL="+redistest.URL(t),
			"LOCKBOX_JWT_JWKS_FILE="+filepath.Join(dir, identity.DevJWKSFile),
			"LOCKBOX_API_ADDR="+api, "LOCKBOX_METRICS_ADDR="+metrics,
			"LOCKBOX_PROXY_ADDR="+freeAddr(t),
			"LOCKBOX_DEV_DIR="+dir,
			"LOCKBOX_UPSTREAMS=exchange=http://127.0.0.1:1",
			"LOCKBOX_PROXY_SIGNING_KEY_FILE="+filepath.Join(dir, "grant.pem"),
		)
		var logs bytes.Buffer
		srv := osexec.Command(lockbox, "serve")
		srv.Env, srv.Stdout, srv.Stderr = env, &logs, &logs
		if err := srv.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() {
			_ = srv.Process.Signal(syscall.SIGTERM)
			if err := srv.Wait(); err != nil {
				t.Errorf("lockbox serve did not stop cleanly: %v\n%s", err, logs.String())
			}
		}()
		waitReady(t, "http://"+metrics+"/readyz")

		token := func(args ...string) string {
			cmd := osexec.Command(lockbox, append([]string{"dev", "token"}, args...)...)
			cmd.Env = env
			out, err := cmd.Output()
			if err != nil {
				t.Fatalf("lockbox dev token %v: %v", args, err)
			}
			return strings.TrimSpace(string(out))
		}
		tokens := map[string]string{
			"operator":      token("--sub", "alice@provider.example", "--roles", "operator"),
			"manager":       token("--sub", "mary@provider.example", "--roles", "support-manager"),
			"admin":         token("--sub", "gina@contoso.example", "--roles", "global-admin", "--tid", "contoso"),
			"lockbox-admin": token("--sub", "lara@provider.example", "--roles", "lockbox-admin"),
		}
		run := func(user string, args ...string) (int, string, string) {
			cmd := osexec.Command(ctl, args...)
			cmd.Env = append(env, "LOCKBOX_ADDR=http://"+api, "LOCKBOX_TOKEN="+tokens[user])
			var out, errb bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &errb
			err := cmd.Run()
			code := 0
			if ee, ok := err.(*osexec.ExitError); ok {
				code = ee.ExitCode()
			} else if err != nil {
				t.Fatal(err)
			}
			return code, out.String(), errb.String()
		}
		if code, _, errs := run("lockbox-admin", "tenant", "onboard", "contoso", "--name", "Contoso Ltd", "--domain", "contoso.example"); code != 0 {
			t.Fatalf("onboard: %s", errs)
		}
		code, out, errs := run("operator", "-o", "json", "request", "create", "--tenant", "contoso", "--service", "exchange",
			"--service-request", "SR-1", "--reason", "repair", "--duration", "1h")
		var r grants.Request
		if code != 0 || json.Unmarshal([]byte(out), &r) != nil {
			t.Fatalf("create: %d %s %s", code, out, errs)
		}
		if code, _, errs := run("operator", "request", "approve", r.ID); code == 0 || !strings.Contains(errs, "only a support manager") {
			t.Fatalf("operator approved: %d %s", code, errs)
		}
		for _, user := range []string{"manager", "admin"} {
			if code, _, errs := run(user, "request", "approve", r.ID, "--comment", "ok"); code != 0 {
				t.Fatalf("%s approve: %s", user, errs)
			}
		}
		code, out, _ = run("admin", "request", "show", r.ID)
		if code != 0 || !strings.Contains(out, "approved") {
			t.Fatalf("show: %d %s", code, out)
		}
		code, out, _ = run("admin", "audit", "search", "--tenant", "contoso")
		if code != 0 || !strings.Contains(out, "Set-AccessToCustomerDataRequest") {
			t.Fatalf("audit: %d %s", code, out)
		}
		// Metrics count the transitions.
		resp, err := http.Get("http://" + metrics + "/metrics")
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if !strings.Contains(string(body), `lockbox_request_transitions_total{action="approve",state="approved"} 1`) {
			t.Fatalf("metrics lack the approval:\n%s", body)
		}
	})

	t.Run("serve refuses bad configuration", func(t *testing.T) {
		cmd := osexec.Command(lockbox, "serve")
		cmd.Env = scrubbedEnv("LOCKBOX_REDIS_TIMEOUT=soon")
		out, err := cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(out), "LOCKBOX_REDIS_TIMEOUT") {
			t.Fatalf("bad config: %v %s", err, out)
		}
		cmd = osexec.Command(lockbox, "serve")
		cmd.Env = scrubbedEnv()
		out, err = cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(out), "LOCKBOX_REDIS_URL") {
			t.Fatalf("missing Redis: %v %s", err, out)
		}
		// A broken policy at start-up stops the program with the
		// compiler's message, naming the file.
		policyDir := t.TempDir()
		if err := os.CopyFS(policyDir, lockboxrego.FS); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(policyDir, "lockbox", "authz", "authz.rego"), []byte("package lockbox.authz\n\ndecision := {\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		cmd = osexec.Command(lockbox, "dev")
		// A directory dev makes itself: t.TempDir's second and later ones
		// are 0755, which dev refuses for the keys and tokens it holds.
		cmd.Env = scrubbedEnv("LOCKBOX_POLICY_DIR="+policyDir, "LOCKBOX_DEV_DIR="+filepath.Join(t.TempDir(), "dev"),
			"LOCKBOX_API_ADDR=127.0.0.1:0", "LOCKBOX_PROXY_ADDR=127.0.0.1:0", "LOCKBOX_METRICS_ADDR=127.0.0.1:0")
		out, err = cmd.CombinedOutput()
		if err == nil || !strings.Contains(string(out), "LOCKBOX_POLICY_DIR") || !strings.Contains(string(out), "authz.rego:") {
			t.Fatalf("broken policy at start-up: %v %s", err, out)
		}
	})

	t.Run("dev", func(t *testing.T) {
		dir := filepath.Join(t.TempDir(), "dev")
		ctx, cancel := context.WithCancel(context.Background())
		defer cancel()
		cmd := osexec.CommandContext(ctx, lockbox, "dev")
		cmd.Env = scrubbedEnv("LOCKBOX_DEV_DIR="+dir, "LOCKBOX_API_ADDR=127.0.0.1:0",
			"LOCKBOX_METRICS_ADDR=127.0.0.1:0", "LOCKBOX_PROXY_ADDR=127.0.0.1:0")
		cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGTERM) }
		stdout, _ := cmd.StdoutPipe()
		var logs bytes.Buffer
		cmd.Stderr = &logs
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		apiRE := regexp.MustCompile(`API\s+(http://127\.0\.0\.1:\d+)/v1`)
		var addr string
		var printed strings.Builder
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			printed.WriteString(sc.Text() + "\n")
			if m := apiRE.FindStringSubmatch(sc.Text()); m != nil {
				addr = m[1]
			}
			if strings.HasPrefix(strings.TrimSpace(sc.Text()), "metrics") {
				break // the proxy line comes before it
			}
		}
		go io.Copy(io.Discard, stdout)
		if addr == "" {
			t.Fatalf("lockbox dev printed no API address; logs:\n%s", logs.String())
		}
		for _, f := range []string{"operator.jwt", "operator2.jwt", "manager.jwt", "admin.jwt", "approver.jwt", "auditor.jwt", "env", "jwks.json"} {
			if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
				t.Fatalf("lockbox dev did not write %s: %v", f, err)
			}
		}
		// The grant assertion keys: a JWKS file beside the key, the same
		// as GET /v1/keys serves.
		jwksFile, err := os.ReadFile(filepath.Join(dir, "grant-jwks.json"))
		if err != nil || !bytes.Contains(jwksFile, []byte(`"alg": "EdDSA"`)) {
			t.Fatalf("grant-jwks.json: %v %s", err, jwksFile)
		}
		if resp, err := http.Get(addr + "/v1/keys"); err != nil {
			t.Fatal(err)
		} else {
			served, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if !bytes.Equal(served, jwksFile) {
				t.Fatalf("GET /v1/keys serves %s, the file holds %s", served, jwksFile)
			}
		}
		envFile, _ := os.ReadFile(filepath.Join(dir, "env"))
		if !strings.Contains(string(envFile), "export LOCKBOX_ADDR="+addr) || !strings.Contains(string(envFile), "LOCKBOX_APPROVER_TOKEN=") {
			t.Fatalf("env file:\n%s", envFile)
		}
		// Asking for help beside a running dev prints help and leaves its
		// files alone: it used to start a second dev server, which pointed
		// the env file and tokens at itself.
		helpCtx, helpDone := context.WithTimeout(ctx, 20*time.Second)
		defer helpDone()
		helpCmd := osexec.CommandContext(helpCtx, lockbox, "dev", "--help")
		helpCmd.Env = scrubbedEnv("LOCKBOX_DEV_DIR="+dir, "LOCKBOX_API_ADDR=127.0.0.1:0",
			"LOCKBOX_METRICS_ADDR=127.0.0.1:0", "LOCKBOX_PROXY_ADDR=127.0.0.1:0")
		if out, err := helpCmd.Output(); err != nil || !strings.HasPrefix(string(out), "usage: lockbox dev\n") {
			t.Fatalf("lockbox dev --help: %v %s", err, out)
		}
		if after, _ := os.ReadFile(filepath.Join(dir, "env")); !bytes.Equal(after, envFile) {
			t.Fatalf("lockbox dev --help rewrote the env file:\n%s", after)
		}
		// The proxy is up in front of the demo services, and refuses an
		// operator without a grant.
		proxyRE := regexp.MustCompile(`proxy\s+(http://127\.0\.0\.1:\d+)/`)
		m := proxyRE.FindStringSubmatch(printed.String())
		if m == nil {
			t.Fatalf("lockbox dev printed no proxy address:\n%s", printed.String())
		}
		opTok, _ := os.ReadFile(filepath.Join(dir, "operator.jwt"))
		req, _ := http.NewRequest("GET", m[1]+"/exchange/tenants/contoso/mailboxes", nil)
		req.Header.Set("Authorization", "Bearer "+strings.TrimSpace(string(opTok)))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 403 || !strings.Contains(string(body), `"no_grant"`) {
			t.Fatalf("proxy without a grant: %d %s", resp.StatusCode, body)
		}
		// The admin center offers the dev identities, and signing in as one
		// lands on the requests page.
		resp, err = http.Get(addr + "/console/signin")
		if err != nil {
			t.Fatal(err)
		}
		body, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || !strings.Contains(string(body), `value="gina@contoso.example"`) {
			t.Fatalf("console sign-in page: %d %s", resp.StatusCode, body)
		}
		jar, _ := cookiejar.New(nil)
		browser := &http.Client{Jar: jar}
		resp, err = browser.PostForm(addr+"/console/signin/dev", url.Values{"subject": {"gina@contoso.example"}})
		if err != nil {
			t.Fatal(err)
		}
		body, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != 200 || resp.Request.URL.Path != "/console/requests" || !strings.Contains(string(body), "Global administrator") {
			t.Fatalf("console dev sign-in: %d %s %s", resp.StatusCode, resp.Request.URL, body)
		}
		// The demo approver is assigned, and the token files work.
		ctlCmd := osexec.Command(ctl, "--token-file", filepath.Join(dir, "approver.jwt"), "approver", "list", "contoso")
		ctlCmd.Env = scrubbedEnv("LOCKBOX_ADDR=" + addr)
		out, err := ctlCmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "adam@contoso.example") {
			t.Fatalf("approver list with the dev approver token: %v %s", err, out)
		}
		// The proxy's address given for the API's (8081 for 8080): the
		// proxy's refusal is no answer about the request, so exit 1 (not
		// 3, "no such request") and a line naming the mix-up.
		proxyCmd := osexec.Command(ctl, "--token-file", filepath.Join(dir, "admin.jwt"), "--addr", m[1], "describe", "request", "01a23f06-5f48-74d5-9e38-ff65ba5cb1e1")
		proxyCmd.Env = scrubbedEnv()
		out, err = proxyCmd.CombinedOutput()
		if ee, ok := err.(*osexec.ExitError); !ok || ee.ExitCode() != 1 || !strings.Contains(string(out), "from Lockbox's enforcement proxy, not its API") {
			t.Fatalf("lockboxctl --addr <the proxy's>: %v\n%s", err, out)
		}
		// A request filed and approved by the manager is mailed, as .eml
		// files, to the dev manager and then to contoso's global admin.
		ctlAs := func(token string, args ...string) string {
			cmd := osexec.Command(ctl, append([]string{"--token-file", filepath.Join(dir, token)}, args...)...)
			cmd.Env = scrubbedEnv("LOCKBOX_ADDR=" + addr)
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("lockboxctl %v: %v %s", args, err, out)
			}
			return string(out)
		}
		var r grants.Request
		if err := json.Unmarshal([]byte(ctlAs("operator.jwt", "-o", "json", "request", "create", "--tenant", "contoso",
			"--service", "exchange", "--service-request", "SR-1", "--reason", "repair", "--duration", "1h")), &r); err != nil {
			t.Fatal(err)
		}
		mailTo(t, filepath.Join(dir, "mail"), "mary@provider.example", r.ID, "awaits a support manager")
		ctlAs("manager.jwt", "request", "approve", r.ID)
		mail := mailTo(t, filepath.Join(dir, "mail"), "gina@contoso.example", r.ID, "awaits your decision", "Requested duration:      1h\r\n")
		if strings.Contains(mail, "provider.example") {
			t.Errorf("gina's e-mail names provider staff:\n%s", mail)
		}
		cancel()
		if err := cmd.Wait(); err != nil && ctx.Err() == nil {
			t.Fatalf("lockbox dev: %v", err)
		}
		fmt.Fprint(io.Discard, logs.String())
	})
}
