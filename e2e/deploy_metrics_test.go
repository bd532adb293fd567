package e2e

import (
	"bufio"
	"fmt"
	"net/http"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	// Not "deploy": proxy_test.go has a helper of that name.
	deployfiles "github.com/lockbox-oss/lockbox/deploy"
)

// TestDeployMetricsExist: every metric the Grafana dashboard and the alert
// rules in deploy/ query is one a running Lockbox exports. A renamed metric
// would otherwise leave a panel empty and an alert silent, with nothing to
// say so. README.md's table of metrics names each exported one with its
// labels, and says which are histograms.
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

	exported, exportedLabels := scrape(t, "http://"+w.srv.MetricsAddr()+"/metrics")
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
	// Every label a query names is one a metric it reads has (or one
	// Prometheus gives every target), so no by() groups on nothing and no
	// matcher selects nothing.
	readBy := map[string][]string{} // expression → the metrics it reads
	for _, ref := range refs {
		readBy[ref.Expr] = append(readBy[ref.Expr], ref.Metric)
	}
	var wrongLabels []string
	for expr, metrics := range readBy {
		used, err := deployfiles.ExprLabels(expr)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range used {
			if targetLabels[l] || slices.ContainsFunc(metrics, func(m string) bool { return exportedLabels[m][l] != nil }) {
				continue
			}
			wrongLabels = append(wrongLabels, fmt.Sprintf("%s, which none of %s has (%s)", l, strings.Join(metrics, ", "), strings.Join(strings.Fields(expr), " ")))
		}
	}
	slices.Sort(wrongLabels)
	if len(wrongLabels) > 0 {
		t.Errorf("deploy/ queries name labels that Lockbox does not export:\n  %s", strings.Join(wrongLabels, "\n  "))
	}
	// And every value a matcher names is one its metric is exported with:
	// Lockbox creates each series of a label's closed set at start-up, at
	// zero, so the scrape holds every value. A misspelt one selects nothing
	// (=, =~) or everything (!=, !~), and promtool can't tell. A pattern
	// that is not a list of values (a|b) names none to check, nor does a
	// Grafana variable.
	var wrongValues []string
	for expr := range readBy {
		matchers, err := deployfiles.ExprMatchers(expr)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range matchers {
			if m.Metric == "" || targetLabels[m.Label] || strings.Contains(m.Value, "$") {
				continue
			}
			values := []string{m.Value}
			if m.Op == "=~" || m.Op == "!~" {
				if !valueList.MatchString(m.Value) {
					continue
				}
				values = strings.Split(m.Value, "|")
			}
			for _, v := range values {
				if !exportedLabels[m.Metric][m.Label][v] {
					wrongValues = append(wrongValues, fmt.Sprintf("%s{%s=%q}, which the scrape has not (%s)", m.Metric, m.Label, v, strings.Join(strings.Fields(expr), " ")))
				}
			}
		}
	}
	slices.Sort(wrongValues)
	if len(wrongValues) > 0 {
		t.Errorf("deploy/ queries name label values that Lockbox does not export:\n  %s", strings.Join(wrongValues, "\n  "))
	}

	// The dashboard and rules cover the proxy, policy, lifecycle, audit,
	// notifications and SIEM; far fewer names means the scan went wrong.
	if len(seen) < 12 {
		t.Errorf("only %d metrics referenced in deploy/: %v", len(seen), seen)
	}

	// And README's table of metrics has a row for every one exported.
	documented := readmeMetrics(t)
	isDocumented := func(name string) bool { _, ok := documented[name]; return ok }
	var undocumented []string
	for name := range exported {
		family := name
		for _, suffix := range []string{"_bucket", "_sum", "_count"} {
			if f, ok := strings.CutSuffix(name, suffix); ok && !isDocumented(name) {
				family = f
			}
		}
		if strings.HasPrefix(family, "lockbox_") && !isDocumented(family) {
			undocumented = append(undocumented, family)
		}
	}
	slices.Sort(undocumented)
	if undocumented = slices.Compact(undocumented); len(undocumented) > 0 {
		t.Errorf("README.md's metrics table has no row for %s", strings.Join(undocumented, ", "))
	}
	for name, labels := range documented {
		sample := name
		if !exported[sample] {
			sample = name + "_count" // a histogram's
		}
		if !exported[sample] {
			t.Errorf("README.md's metrics table lists %s, which the scrape does not have", name)
			continue
		}
		var got []string
		for l := range exportedLabels[sample] {
			got = append(got, l)
		}
		slices.Sort(got)
		if !slices.Equal(got, labels) {
			t.Errorf("README.md's metrics table gives %s the labels %q; it is exported with %q", name, labels, got)
		}
	}
	// A histogram is queried by its _bucket, _sum and _count series, not
	// its name: its row says "histogram", and only a histogram's does.
	types := scrapeTypes(t, "http://"+w.srv.MetricsAddr()+"/metrics")
	histogram := readmeHistograms(t)
	for name := range documented {
		if got := types[name]; (got == "histogram") != histogram[name] {
			t.Errorf("README.md's metrics table says %s is a histogram: %v; it is exported as a %s", name, histogram[name], got)
		}
	}
	// A label whose values the table lists, a closed set whose every series
	// exists from start-up, is exported with exactly those: a value the
	// code added or renamed would otherwise go unexplained, and a query
	// written from the table would select nothing.
	for name, labels := range readmeLabelValues(t) {
		sample := name
		if !exported[sample] {
			sample = name + "_count"
		}
		for label, want := range labels {
			var got []string
			for v := range exportedLabels[sample][label] {
				got = append(got, v)
			}
			slices.Sort(got)
			if !slices.Equal(got, want) {
				t.Errorf("README.md's metrics table gives %s{%s} the values %q; it is exported with %q", name, label, want, got)
			}
		}
	}
}

// readmeLabelValues returns, for each metric of README.md's table, the
// values its second cell lists for a label, sorted: the `code` words in
// the parentheses right after the label that begin one of its items (the
// first, or one after ",", ";", "or" or "and"), not those a value's own
// explanation names.
func readmeLabelValues(t *testing.T) map[string]map[string][]string {
	t.Helper()
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	name := regexp.MustCompile("`(lockbox_[a-z0-9_]+)`")
	out := map[string]map[string][]string{}
	for line := range strings.Lines(string(b)) {
		if !strings.HasPrefix(line, "| `lockbox_") {
			continue
		}
		first, rest, _ := strings.Cut(line[1:], "|")
		second, _, _ := strings.Cut(rest, "|")
		values := cellLabelValues(second)
		if len(values) == 0 {
			continue
		}
		for _, m := range name.FindAllStringSubmatch(first, -1) {
			out[m[1]] = values
		}
	}
	if len(out) < 5 {
		t.Fatalf("README.md's metrics table lists the values of labels of only %v", out)
	}
	return out
}

// cellLabelValues parses a cell such as "`decision` (`allowed`, `denied`),
// `reason`": each label outside parentheses, up to the first ":" or ";"
// there, with the values listed in the parentheses that follow it.
func cellLabelValues(cell string) map[string][]string {
	out := map[string][]string{}
	label := "" // the label the next parentheses list values of
	item := ""  // the text of the current item before a code word
	depth := 0
	for i := 0; i < len(cell); i++ {
		c := cell[i]
		switch {
		case c == '`':
			end := strings.IndexByte(cell[i+1:], '`')
			if end < 0 {
				return out
			}
			word := cell[i+1 : i+1+end]
			i += end + 1
			switch w := strings.TrimSpace(item); {
			case depth == 0:
				label = word
			case depth == 1 && label != "" && (w == "" || w == "or" || w == "and"):
				out[label] = append(out[label], word)
			}
			item += "x" // what follows a code word is its explanation
		case c == '(':
			depth++
			item = ""
		case c == ')':
			depth--
			if depth == 0 {
				if vs := out[label]; vs != nil {
					slices.Sort(vs)
				}
				label = ""
			}
		case depth == 0 && (c == ':' || c == ';'):
			return out
		case depth == 1 && (c == ',' || c == ';'):
			item = ""
		default:
			item += string(c)
		}
	}
	return out
}

// valueList is a regular expression that only lists values: a|b|c.
var valueList = regexp.MustCompile(`^[a-zA-Z0-9_]+(?:\|[a-zA-Z0-9_]+)*$`)

// targetLabels are the labels Prometheus gives every series of a target.
var targetLabels = map[string]bool{"instance": true, "job": true}

// readmeMetrics returns the metrics README.md's table names, the lockbox_
// names in the first cell of its rows, each with the labels its second
// cell gives, sorted: the names in `code` outside parentheses and before
// any ":" or ";" (what follows them describes the values, or where the
// metric is exported).
func readmeMetrics(t *testing.T) map[string][]string {
	t.Helper()
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	names := map[string][]string{}
	name := regexp.MustCompile("`(lockbox_[a-z0-9_]+)`")
	label := regexp.MustCompile("`([a-z_]+)`")
	for line := range strings.Lines(string(b)) {
		if !strings.HasPrefix(line, "| `lockbox_") {
			continue
		}
		first, rest, _ := strings.Cut(line[1:], "|")
		second, _, _ := strings.Cut(rest, "|")
		var labels []string
		for _, m := range label.FindAllStringSubmatch(outsideParentheses(second), -1) {
			labels = append(labels, m[1])
		}
		slices.Sort(labels)
		for _, m := range name.FindAllStringSubmatch(first, -1) {
			names[m[1]] = labels
		}
	}
	if len(names) < 12 {
		t.Fatalf("README.md's metrics table names only %v", names)
	}
	return names
}

// readmeHistograms returns the metrics of README.md's table whose second
// cell says "histogram".
func readmeHistograms(t *testing.T) map[string]bool {
	t.Helper()
	b, err := os.ReadFile("../README.md")
	if err != nil {
		t.Fatal(err)
	}
	name := regexp.MustCompile("`(lockbox_[a-z0-9_]+)`")
	out := map[string]bool{}
	for line := range strings.Lines(string(b)) {
		if !strings.HasPrefix(line, "| `lockbox_") {
			continue
		}
		first, rest, _ := strings.Cut(line[1:], "|")
		second, _, _ := strings.Cut(rest, "|")
		if !strings.Contains(second, "histogram") {
			continue
		}
		for _, m := range name.FindAllStringSubmatch(first, -1) {
			out[m[1]] = true
		}
	}
	return out
}

// scrapeTypes returns the type of each metric family of a Prometheus text
// exposition, from its "# TYPE name type" line.
func scrapeTypes(t *testing.T, url string) map[string]string {
	t.Helper()
	resp, err := http.Get(url)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("GET %s: %s", url, resp.Status)
	}
	types := map[string]string{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		if f := strings.Fields(sc.Text()); len(f) == 4 && f[0] == "#" && f[1] == "TYPE" {
			types[f[2]] = f[3]
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if types["lockbox_proxy_requests_total"] != "counter" {
		t.Fatalf("the scrape of %s names no type of Lockbox's metrics: %v", url, types)
	}
	return types
}

// outsideParentheses is the text of s outside parentheses, up to its first
// ":" or ";" there.
func outsideParentheses(s string) string {
	var b strings.Builder
	depth := 0
	for _, r := range s {
		switch {
		case r == '(':
			depth++
		case r == ')':
			depth--
		case depth == 0 && (r == ':' || r == ';'):
			return b.String()
		case depth == 0:
			b.WriteRune(r)
		}
	}
	return b.String()
}

// scrape returns the names of the samples of a Prometheus text exposition
// (a histogram's appear as name_bucket, name_sum and name_count, as queries
// name them), and the labels each has in some sample, with every value
// each takes.
func scrape(t *testing.T, url string) (map[string]bool, map[string]map[string]map[string]bool) {
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
	labels := map[string]map[string]map[string]bool{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		i := strings.IndexAny(line, "{ ")
		if i <= 0 {
			continue
		}
		name := line[:i]
		names[name] = true
		if labels[name] == nil {
			labels[name] = map[string]map[string]bool{}
		}
		if line[i] == '{' {
			for _, m := range sampleLabel.FindAllStringSubmatch(line[i:], -1) {
				v, err := strconv.Unquote(`"` + m[2] + `"`)
				if err != nil {
					t.Fatalf("label %s of %q: %v", m[1], line, err)
				}
				if labels[name][m[1]] == nil {
					labels[name][m[1]] = map[string]bool{}
				}
				labels[name][m[1]][v] = true
			}
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if !names["lockbox_proxy_requests_total"] {
		t.Fatalf("the scrape of %s has no Lockbox metrics", url)
	}
	return names, labels
}

// sampleLabel is one label of a sample's label set, name="value" (the
// value's escapes are \\, \" and \n).
var sampleLabel = regexp.MustCompile(`[{,]([a-zA-Z_][a-zA-Z0-9_]*)="((?:[^"\\]|\\.)*)"`)

func TestCellLabelValues(t *testing.T) {
	cases := []struct {
		cell string
		want map[string][]string
	}{
		{" `service`, `decision` (`allowed`, `denied`, `error`) ", map[string][]string{"decision": {"allowed", "denied", "error"}}},
		{" `result` (`evaluated`, or `remembered`: the same `x` decided it) ", map[string][]string{"result": {"evaluated", "remembered"}}},
		{" `bound` (`caller`: ran `LOCKBOX_A`; `replica`: ran `LOCKBOX_B`): refused with 429 `too_many_reads`; `later` (`no`) ",
			map[string][]string{"bound": {"caller", "replica"}}},
		{" `service`, `reason` (every denial reason present from start-up) ", map[string][]string{}},
		{" (1 while subscribed, within `LOCKBOX_CACHE_MAX_AGE`) ", map[string][]string{}},
	}
	for _, tc := range cases {
		if got := cellLabelValues(tc.cell); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("cellLabelValues(%q) = %q, want %q", tc.cell, got, tc.want)
		}
	}
}
