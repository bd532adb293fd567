package e2e

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"net/http"
	"os"
	osexec "os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/lockbox-oss/lockbox/grants"
)

// readmeWalkSections are README.md's sections whose shell examples a
// newcomer runs, in this order, against "make run": they are run here as
// written, one script, against a real "lockbox dev".
var readmeWalkSections = []string{
	"## The workflow, walked through with `lockboxctl`",
	"### Tenants are onboarded",
	"### Settings changes don't undo each other",
	"### Registry changes don't undo each other",
	"## Auditing",
	"## The enforcement proxy",
}

// readmeShellBlocks returns the ```sh blocks of README's section that
// starts with the heading line, up to the next heading of any level (a
// line starting with "#" outside a code block: a shell comment inside one
// is no heading).
func readmeShellBlocks(t *testing.T, readme, heading string) []string {
	t.Helper()
	_, section, ok := strings.Cut(readme, "\n"+heading+"\n")
	if !ok {
		t.Fatalf("README.md has no heading %q", heading)
	}
	var blocks []string
	var block *strings.Builder // the ```sh block being read, if any
	fenced := false
	for line := range strings.Lines(section) {
		switch {
		case strings.HasPrefix(line, "```"):
			if fenced && block != nil {
				blocks = append(blocks, block.String())
			}
			block = nil
			if !fenced && strings.TrimSpace(line) == "```sh" {
				block = &strings.Builder{}
			}
			fenced = !fenced
		case fenced && block != nil:
			block.WriteString(line)
		case !fenced && strings.HasPrefix(line, "#"):
			return blocks
		}
	}
	if fenced {
		t.Fatalf("README.md's section %q ends inside a code block", heading)
	}
	return blocks
}

// TestREADMEWalkthrough runs README's shell examples for lockbox dev (the
// lockboxctl walkthrough, onboarding, settings and registry changes with
// curl, auditing, a call through the proxy) as a newcomer types them, in
// a directory where "lockbox dev" runs and bin/ holds the binaries "make
// build" writes. lockbox dev listens on free ports here, not on README's
// 8080 and 8081, which its env file names: README's examples call
// $LOCKBOX_ADDR and $LOCKBOX_PROXY_URL and run unchanged. A command README shows that
// fails stops the script and fails the test; what the examples say they
// print or leave behind is checked afterwards.
//
// The newcomer first tries the workflow lockbox dev's banner offers, as it
// invites them to, and only then README's. The banner's walk left its
// request approved, so README's first command, filing a request for the
// same engineer, tenant and service, was refused (409
// open_request_exists) and the walkthrough stopped there.
func TestREADMEWalkthrough(t *testing.T) {
	if testing.Short() {
		t.Skip("builds binaries")
	}
	if _, err := osexec.LookPath("curl"); err != nil {
		t.Fatal("README's examples call the API and the proxy with curl, which is not installed: install curl")
	}
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	var script strings.Builder
	script.WriteString("set -eu\n")
	// found passes a search's table through and fails the script when it
	// holds no record, its header alone: README's Search-UnifiedAuditLog
	// examples searched fixed dates, which found nothing in a fresh
	// lockbox dev's log, and exited 0.
	script.WriteString(`found() { n=0; while IFS= read -r l; do printf '%s\n' "$l"; n=$((n+1)); done; [ "$n" -gt 1 ] || { echo "README's search found no records: $1" >&2; return 1; }; }` + "\n")
	for _, heading := range readmeWalkSections {
		for _, block := range readmeShellBlocks(t, string(b), heading) {
			if strings.Contains(block, "lockboxctl login") {
				continue // needs an identity provider, which lockbox dev does not have
			}
			for line := range strings.Lines(block) {
				// bin/ already holds what "make build" writes.
				if strings.HasPrefix(line, "make build") {
					continue
				}
				// lockbox dev on free ports names them in its env file,
				// which README's walkthrough sources: an example that
				// calls 127.0.0.1:8080 or 8081 reaches nothing there.
				for _, port := range []string{"127.0.0.1:8080", "127.0.0.1:8081"} {
					if code, _, _ := strings.Cut(line, "#"); strings.Contains(code, port) {
						t.Errorf("README's %s calls %s, where lockbox dev on other ports does not listen: use $LOCKBOX_ADDR or $LOCKBOX_PROXY_URL, which .lockbox-dev/env sets\n%s", heading, port, line)
					}
				}
				if cmd := strings.TrimSpace(line); strings.HasPrefix(cmd, "lockboxctl Search-UnifiedAuditLog ") && !strings.HasSuffix(cmd, "\\") && !strings.Contains(cmd, "#") {
					script.WriteString(cmd + " | found '" + strings.ReplaceAll(cmd, "'", `'\''`) + "'\n")
					continue
				}
				script.WriteString(line)
			}
		}
	}
	script.WriteString("echo \"walked request: $ID\"\n")

	work := t.TempDir()
	bin := filepath.Join(work, "bin")
	if err := os.Mkdir(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(lockboxBinary(t), filepath.Join(bin, "lockbox")); err != nil {
		t.Fatal(err)
	}
	if out, err := goBuild(t, filepath.Join(bin, "lockboxctl"), "../cmd/lockboxctl").CombinedOutput(); err != nil {
		t.Fatalf("go build lockboxctl: %v\n%s", err, out)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	dev := osexec.CommandContext(ctx, filepath.Join(bin, "lockbox"), "dev")
	dev.Dir = work
	dev.Env = scrubbedEnv("LOCKBOX_API_ADDR=127.0.0.1:0", "LOCKBOX_PROXY_ADDR=127.0.0.1:0", "LOCKBOX_METRICS_ADDR=127.0.0.1:0")
	dev.Cancel = func() error { return dev.Process.Signal(syscall.SIGTERM) }
	stdout, err := dev.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	dev.Stderr = &logs
	if err := dev.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		cancel()
		_ = dev.Wait()
	}()

	// lockbox dev prints its addresses once it listens on them, and the
	// workflow to try, which ends its banner.
	type banner struct {
		api, proxy string
		walk       strings.Builder // the banner's workflow, as a script
	}
	printed := make(chan *banner, 1)
	go func() {
		apiRE := regexp.MustCompile(`^\s*API\s+(http://127\.0\.0\.1:\d+)/v1`)
		proxyRE := regexp.MustCompile(`^\s*proxy\s+(http://127\.0\.0\.1:\d+)/`)
		b := &banner{}
		walking := false
		sc := bufio.NewScanner(stdout)
		for sc.Scan() {
			line := sc.Text()
			if m := apiRE.FindStringSubmatch(line); m != nil {
				b.api = m[1]
			}
			if m := proxyRE.FindStringSubmatch(line); m != nil {
				b.proxy = m[1]
			}
			switch {
			case strings.HasPrefix(line, "Try the whole workflow"):
				walking = true
			case walking && strings.TrimSpace(line) == "":
				walking = false
			case walking:
				// bin/ already holds what "make build" writes.
				b.walk.WriteString(strings.TrimPrefix(strings.TrimSpace(line), "make build && ") + "\n")
			}
			if line == "Stop with Ctrl-C." {
				printed <- b
				break
			}
		}
		for sc.Scan() {
		}
	}()
	var a *banner
	select {
	case a = <-printed:
	case <-time.After(60 * time.Second):
		t.Fatalf("lockbox dev printed no whole banner; logs:\n%s", logs.String())
	}
	if a.api == "" || a.proxy == "" || a.walk.Len() == 0 {
		t.Fatalf("lockbox dev's banner names no API or proxy address, or no workflow to try: %q %q %q", a.api, a.proxy, a.walk.String())
	}

	text := "set -eu\n" + a.walk.String() + script.String()
	sh := osexec.CommandContext(ctx, "sh", "-c", text)
	sh.Dir = work
	sh.Env = scrubbedEnv("LOCKBOX_CONFIG_DIR=" + filepath.Join(work, "config"))
	out, err := sh.CombinedOutput()
	if err != nil {
		t.Fatalf("README's examples fail: %v\n--- script\n%s\n--- output\n%s\n--- lockbox dev\n%s", err, text, out, logs.String())
	}
	m := regexp.MustCompile(`walked request: (\S+)`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("the script set no $ID:\n%s", out)
	}
	id := string(m[1])

	// What the examples' comments say they print.
	for _, want := range []string{
		`{"mailboxes":[`, // the banner's call through the proxy, once approved
		`Etag: "1"`,      // curl -si of the settings, then of the registry entry
		`"notification_addresses":["soc@contoso.example"]`, // the settings PUT
		`"domains":["contoso.com","contoso.example"]`,      // the registry PATCH
		"audit chain of contoso: intact",                   // audit verify
		"SIEM copy of contoso's audit log: intact",         // audit check-siem
		`{"error":{"code":"no_grant"`,                      // the proxy, once the request was revoked
	} {
		if !bytes.Contains(out, []byte(want)) {
			t.Errorf("README's examples did not print %s:\n%s", want, out)
		}
	}
	// The search's CSV (the only one printed; the export goes to a file)
	// lists the walked request's filing, by the engineer: a search whose
	// bounds miss lockbox dev's fresh records prints its header alone.
	if _, rows, ok := bytes.Cut(out, []byte("CreationDate,UserIds,Operations,AuditData\n")); !ok {
		t.Errorf("README's audit search printed no CSV:\n%s", out)
	} else if first, _, _ := bytes.Cut(rows, []byte("\n")); !bytes.Contains(first, []byte(",Microsoft Operator,")) {
		t.Errorf("README's audit search printed no record of the engineer's after its header, but %q", first)
	}
	if csv, err := os.ReadFile(filepath.Join(work, "contoso-audit.csv")); err != nil || !bytes.HasPrefix(csv, []byte("CreationDate,UserIds,Operations,AuditData\n")) {
		t.Errorf("audit export --out contoso-audit.csv: %v %.200q", err, csv)
	}

	// And what they say they leave behind: the walked request went through
	// both approvals, then the tenant revoked it; the grant was for
	// exactly the 2h asked, from the approval.
	token := func(file string) string {
		b, err := os.ReadFile(filepath.Join(work, ".lockbox-dev", file))
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(b))
	}
	get := func(file, path string, v any) {
		t.Helper()
		req, _ := http.NewRequestWithContext(ctx, "GET", a.api+path, nil)
		req.Header.Set("Authorization", "Bearer "+token(file))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("GET %s: %s", path, resp.Status)
		}
		if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
			t.Fatalf("GET %s: %v", path, err)
		}
	}
	var r grants.Request
	get("manager.jwt", "/v1/requests/"+id, &r)
	var actions []string
	for _, h := range r.History {
		actions = append(actions, string(h.Action)+">"+string(h.To))
	}
	if want := []string{"create>pending_manager", "approve>pending_customer", "approve>approved", "revoke>revoked"}; !slices.Equal(actions, want) {
		t.Errorf("walked request's history = %v, want %v", actions, want)
	}
	if r.ApprovedAt == nil || r.ExpiresAt == nil || r.ExpiresAt.Sub(*r.ApprovedAt) != 2*time.Hour {
		t.Errorf("walked request's grant: approved %v, expires %v; want 2h from the approval", r.ApprovedAt, r.ExpiresAt)
	}
	var northwind struct{ Domains []string }
	get("lockbox-admin.jwt", "/v1/tenants/northwind", &northwind)
	if want := []string{"northwind.com", "northwind.example"}; !slices.Equal(northwind.Domains, want) {
		t.Errorf("northwind's domains = %v, want %v", northwind.Domains, want)
	}
}
