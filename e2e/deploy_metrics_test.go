package e2e

import (
	"bufio"
	"net/http"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	// Not "deploy": proxy_test.go has a helper of that name.
	deployfiles "github.com/lockbox-oss/lockbox/deploy"
)

// TestDeployMetricsExist: every metric the Grafana dashboard and the alert
// rules in deploy/ query is one a running Lockbox exports. A renamed metric
// would otherwise leave a panel empty and an alert silent, with nothing to
// say so.
func TestDeployMetricsExist(t *testing.T) {
	refs, err := deployfiles.References("../deploy")
	if err != nil {
		t.Fatal(err)
	}
	w := start(t)

	// Enough traffic that every family has a sample: a request pending and
	// a grant active (the two timestamp gauges exist only then), decisions
	// and notifications, an allowed and a denied proxy call.
	w.assignApprover()
	r := w.create("operator")
	w.ok("manager", nil, "request", "approve", r.ID)
	w.ok("approver", nil, "request", "approve", r.ID)
	var pending struct{ ID string }
	w.ok("operator2", &pending, "request", "create", "--tenant", "contoso", "--service", "exchange",
		"--service-request", "SR-2002", "--reason", "calendar sync", "--duration", "1h")
	if status, code := w.get("operator", "/exchange/tenants/contoso/mailboxes"); status != 200 {
		t.Fatalf("allowed call: %d %s", status, code)
	}
	if status, code := w.get("operator2", "/exchange/tenants/contoso/mailboxes"); status != 403 {
		t.Fatalf("denied call: %d %s", status, code)
	}

	exported := scrape(t, "http://"+w.srv.MetricsAddr()+"/metrics")
	var missing []string
	seen := map[string]bool{}
	for _, ref := range refs {
		seen[ref.Metric] = true
		if !exported[ref.Metric] {
			missing = append(missing, ref.Metric+" (deploy/"+ref.File+": "+strings.Join(strings.Fields(ref.Expr), " ")+")")
		}
	}
	slices.Sort(missing)
	if missing = slices.Compact(missing); len(missing) > 0 {
		t.Errorf("deploy/ queries metrics that Lockbox does not export:\n  %s", strings.Join(missing, "\n  "))
	}
	// The dashboard and rules cover the proxy, policy, lifecycle, audit,
	// notifications and SIEM; far fewer names means the scan went wrong.
	if len(seen) < 12 {
		t.Errorf("only %d metrics referenced in deploy/: %v", len(seen), seen)
	}

	// And README's table of metrics has a row for every one exported.
	documented := readmeMetrics(t)
	var undocumented []string
	for name := range exported {
		family := name
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			if f, ok := strings.CutSuffix(name, suffix); ok && !documented[name] {
				family = f
			}
		}
		if strings.HasPrefix(family, "lockbox_") && !documented[family] {
			undocumented = append(undocumented, family)
		}
	}
	slices.Sort(undocumented)
	if undocumented = slices.Compact(undocumented); len(undocumented) > 0 {
		t.Errorf("README.md's metrics table has no row for %s", strings.Join(undocumented, ", "))
	}
	for name := range documented {
		if !exported[name] && !exported[name+"_count"] {
			t.Errorf("README.md's metrics table lists %s, which the scrape does not have", name)
		}
	}
}

// readmeMetrics returns the metrics README.md's table names: the
// lockbox_ names in the first cell of its rows.
func readmeMetrics(t *testing.T) map[string]bool {
	t.Helper()
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	names := map[string]bool{}
	name := regexp.MustCompile("`(lockbox_[a-z0-9_]+)`")
	for line := range strings.Lines(string(b)) {
		if !strings.HasPrefix(line, "| `lockbox_") {
			continue
		}
		first, _, _ := strings.Cut(line[1:], "|")
		for _, m := range name.FindAllStringSubmatch(first, -1) {
			names[m[1]] = true
		}
	}
	if len(names) < 12 {
		t.Fatalf("README.md's metrics table names only %v", names)
	}
	return names
}

// scrape returns the names of the samples of a Prometheus text exposition:
// a histogram's appear as name_bucket, name_sum and name_count, as queries
// name them.
func scrape(t *testing.T, url string) map[string]bool {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	names := map[string]bool{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if i := strings.IndexAny(line, "{ "); i > 0 {
			names[line[:i]] = true
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if !names["lockbox_proxy_requests_total"] {
		t.Fatalf("the scrape of %s has no Lockbox metrics", url)
	}
	return names
}
