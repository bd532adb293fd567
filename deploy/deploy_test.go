package deploy_test

import (
	"bytes"
	"encoding/json"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"

	"github.com/lockbox-oss/lockbox/cli"
	"github.com/lockbox-oss/lockbox/config"
	"github.com/lockbox-oss/lockbox/deploy"
	"github.com/lockbox-oss/lockbox/proxy"
)

func TestExprMetrics(t *testing.T) {
	cases := []struct {
		expr string
		want []string
	}{
		{`lockbox_grants_active`, []string{"lockbox_grants_active"}},
		{`sum by (service, reason) (rate(lockbox_proxy_denials_total{reason!~"a|b", x="y(z"}[5m] offset 1h)) > 0.1`, []string{"lockbox_proxy_denials_total"}},
		{`histogram_quantile(0.99, sum by (le) (rate(a_bucket[$__rate_interval])))`, []string{"a_bucket"}},
		{`sum(rate(a[5m])) without (instance) / on (job) group_left (team) b`, []string{"a", "b"}},
		{`time() - min(c) > 4 * 3600 + 600`, []string{"c"}},
		{`a and b or c unless d`, []string{"a", "b", "c", "d"}},
		{`absent(up{job="lockbox"}) == bool 1`, []string{"up"}},
		{`max_over_time(m[1h:5m]) < Inf`, []string{"m"}},
		{`label_values(lockbox_proxy_requests_total, service)`, []string{"lockbox_proxy_requests_total"}},
		{"sum(x)\n# a comment naming not_a_metric\n", []string{"x"}},
		{`{__name__="by_name"}`, nil},
	}
	for _, tc := range cases {
		got, err := deploy.ExprMetrics(tc.expr)
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("ExprMetrics(%q) = %q, %v; want %q", tc.expr, got, err, tc.want)
		}
	}
	for _, bad := range []string{`sum(rate(a[5m])`, `a{b="c}`, `a)`, `rate(a[5m)`} {
		if got, err := deploy.ExprMetrics(bad); err == nil {
			t.Errorf("ExprMetrics(%q) = %q, want an error", bad, got)
		}
	}
}

// TestReferences: the dashboard and every rules file are read, and every
// query yields a metric. The e2e test checks each against a live scrape.
func TestReferences(t *testing.T) {
	refs, err := deploy.References(".")
	if err != nil {
		t.Fatal(err)
	}
	files := map[string]bool{}
	for _, r := range refs {
		files[r.File] = true
		if !strings.HasPrefix(r.Metric, "lockbox_") {
			t.Errorf("%s: %q: only Lockbox's own metrics are known to exist", r.File, r.Metric)
		}
	}
	for _, f := range []string{
		"grafana/lockbox.json", "prometheus/lockbox.rules.yml",
		"kubernetes/components/monitoring/prometheusrule.yaml", "helm/lockbox/files/lockbox.rules.yml",
	} {
		if !files[f] {
			t.Errorf("no metric read from %s", f)
		}
	}
}

func readFile(t *testing.T, name string) []byte {
	t.Helper()
	b, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestPolicyCopiesMatchRego: the policy the manifests ship as their
// ConfigMap is the default policy of rego/, file for file.
func TestPolicyCopiesMatchRego(t *testing.T) {
	var modules []string
	err := filepath.WalkDir("../rego", func(p string, d fs.DirEntry, err error) error {
		if err == nil && strings.HasSuffix(p, ".rego") && !strings.HasSuffix(p, "_test.rego") {
			modules = append(modules, p)
		}
		return err
	})
	if err != nil || len(modules) == 0 {
		t.Fatalf("no policy modules in rego/: %v", err)
	}
	var generator struct {
		ConfigMapGenerator []struct {
			Name  string   `yaml:"name"`
			Files []string `yaml:"files"`
		} `yaml:"configMapGenerator"`
	}
	if err := yaml.Unmarshal(readFile(t, "kubernetes/components/shared/kustomization.yaml"), &generator); err != nil {
		t.Fatal(err)
	}
	listed := map[string][]string{}
	for _, g := range generator.ConfigMapGenerator {
		listed[g.Name] = g.Files
	}
	copies := map[string]string{ // copy → original
		"kubernetes/components/shared/policy/data.json": "../rego/activities/data.json",
		"helm/lockbox/files/activities/data.json":       "../rego/activities/data.json",
	}
	var wantListed []string
	for _, m := range modules {
		base := filepath.Base(m)
		copies["kubernetes/components/shared/policy/"+base] = m
		copies["helm/lockbox/files/policy/"+base] = m
		wantListed = append(wantListed, "policy/"+base)
	}
	for cp, orig := range copies {
		if b, err := os.ReadFile(cp); err != nil || !bytes.Equal(b, readFile(t, orig)) {
			t.Errorf("%s differs from %s (%v): cp %s deploy/%s", cp, orig, err, strings.TrimPrefix(orig, "../"), cp)
		}
	}
	if got := listed["lockbox-policy"]; !slices.Equal(got, wantListed) {
		t.Errorf("lockbox-policy ConfigMap lists %v, want %v", got, wantListed)
	}
	for _, dir := range []string{"kubernetes/components/shared/policy", "helm/lockbox/files/policy"} {
		extra, _ := filepath.Glob(filepath.Join(dir, "*.rego"))
		if len(extra) != len(modules) {
			t.Errorf("%s holds %v; rego/ has %d modules", dir, extra, len(modules))
		}
	}
}

// TestRulesCopiesMatch: the alert rules are one set, in three places.
func TestRulesCopiesMatch(t *testing.T) {
	const src = "prometheus/lockbox.rules.yml"
	if !bytes.Equal(readFile(t, "helm/lockbox/files/lockbox.rules.yml"), readFile(t, src)) {
		t.Errorf("helm/lockbox/files/lockbox.rules.yml differs: cp deploy/%s deploy/helm/lockbox/files/", src)
	}
	want, err := deploy.ReadRuleGroups(src)
	if err != nil {
		t.Fatal(err)
	}
	got, err := deploy.ReadRuleGroups("kubernetes/components/monitoring/prometheusrule.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if len(want) == 0 || !reflect.DeepEqual(got, want) {
		t.Errorf("the PrometheusRule's groups differ from %s: copy its groups under spec", src)
	}
}

// TestAlerts: every alert says what broke, how bad it is and where the
// runbook is, has its runbook section, a unit test and a place in README's
// list of alerts.
func TestAlerts(t *testing.T) {
	groups, err := deploy.ReadRuleGroups("prometheus/lockbox.rules.yml")
	if err != nil {
		t.Fatal(err)
	}
	runbook := string(readFile(t, "RUNBOOK.md"))
	sections := map[string]bool{}
	for _, m := range regexp.MustCompile(`(?m)^## (\S+)\s*$`).FindAllStringSubmatch(runbook, -1) {
		sections[m[1]] = true
	}
	tests := string(readFile(t, "prometheus/lockbox.rules.test.yml"))
	readme := string(readFile(t, "../README.md"))
	alerts := map[string]bool{}
	for _, g := range groups {
		for _, r := range g.Rules {
			if r.Alert == "" {
				continue
			}
			alerts[r.Alert] = true
			if s := r.Labels["severity"]; s != "critical" && s != "warning" {
				t.Errorf("%s: severity %q, want critical or warning", r.Alert, s)
			}
			for _, a := range []string{"summary", "description"} {
				if strings.TrimSpace(r.Annotations[a]) == "" {
					t.Errorf("%s: no %s", r.Alert, a)
				}
			}
			want := "https://github.com/lockbox-oss/lockbox/blob/main/deploy/RUNBOOK.md#" + strings.ToLower(r.Alert)
			if r.Annotations["runbook_url"] != want {
				t.Errorf("%s: runbook_url %q, want %q", r.Alert, r.Annotations["runbook_url"], want)
			}
			if !sections[r.Alert] {
				t.Errorf("%s: no section \"## %s\" in RUNBOOK.md", r.Alert, r.Alert)
			}
			if !strings.Contains(tests, "alertname: "+r.Alert+"\n") {
				t.Errorf("%s: not tested in prometheus/lockbox.rules.test.yml", r.Alert)
			}
			if !strings.Contains(readme, "`"+r.Alert+"`") {
				t.Errorf("%s: not in README.md's list of alerts (Prometheus and Grafana)", r.Alert)
			}
		}
	}
	if len(alerts) == 0 {
		t.Fatal("no alerts")
	}
	for s := range sections {
		if !alerts[s] {
			t.Errorf("RUNBOOK.md section %q: no such alert", s)
		}
	}
}

// TestDenialReasonsHaveAnAlert: every reason the proxy denies for is
// watched by an alert and explained in the runbook. LockboxDenialsSpiking
// covers the reasons it does not exclude, and its runbook section names
// each of them; a reason it excludes has an alert of its own (one whose
// expression selects reason="<it>"), whose runbook section names it. A new
// reason is then either in the spike alert's list for the on-call to read,
// or has the alert it needs.
func TestDenialReasonsHaveAnAlert(t *testing.T) {
	groups, err := deploy.ReadRuleGroups("prometheus/lockbox.rules.yml")
	if err != nil {
		t.Fatal(err)
	}
	runbook := string(readFile(t, "RUNBOOK.md"))
	section := func(alert string) string {
		_, s, ok := strings.Cut(runbook, "\n## "+alert+"\n")
		if !ok {
			t.Fatalf("RUNBOOK.md has no section %s", alert)
		}
		s, _, _ = strings.Cut(s, "\n## ")
		return s
	}
	var spike string
	own := map[string]string{} // reason -> the alert selecting it alone
	selects := regexp.MustCompile(`lockbox_proxy_denials_total\{reason="([a-z_]+)"\}`)
	for _, g := range groups {
		for _, r := range g.Rules {
			if r.Alert == "LockboxDenialsSpiking" {
				spike = r.Expr
			}
			for _, m := range selects.FindAllStringSubmatch(r.Expr, -1) {
				own[m[1]] = r.Alert
			}
		}
	}
	m := regexp.MustCompile(`reason!~"([a-z_|]+)"`).FindAllStringSubmatch(spike, -1)
	if len(m) == 0 {
		t.Fatalf("LockboxDenialsSpiking excludes no reason: %s", spike)
	}
	excluded := strings.Split(m[0][1], "|")
	for _, x := range m[1:] {
		if x[1] != m[0][1] {
			t.Errorf("LockboxDenialsSpiking excludes %q in one place, %q in another", m[0][1], x[1])
		}
	}
	denials := map[string]bool{}
	for _, r := range proxy.AllReasons() {
		if r.Denial() {
			denials[string(r)] = true
		}
	}
	for _, r := range excluded {
		if !denials[r] {
			t.Errorf("LockboxDenialsSpiking excludes %q, which is no denial reason", r)
		}
	}
	for r := range denials {
		alert := "LockboxDenialsSpiking"
		if slices.Contains(excluded, r) {
			if alert = own[r]; alert == "" {
				t.Errorf("%s: LockboxDenialsSpiking leaves it out, and no alert of its own selects reason=%q", r, r)
				continue
			}
		}
		if !strings.Contains(section(alert), "`"+r+"`") {
			t.Errorf("%s: the RUNBOOK.md section %s, the alert that covers it, does not name it", r, alert)
		}
	}
}

// TestSettingsExist: every LOCKBOX_ variable deploy/ sets or mentions is
// one Lockbox reads; a misspelt one would be silently ignored.
func TestSettingsExist(t *testing.T) {
	// lockboxctl's own.
	known := map[string]bool{cli.EnvAddr: true, cli.EnvToken: true}
	for _, v := range config.Vars() {
		known[v.Name] = true
	}
	name := regexp.MustCompile(`LOCKBOX_[A-Z0-9_]*`)
	seen := 0
	err := filepath.WalkDir(".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || strings.HasSuffix(p, ".go") {
			return err
		}
		for _, v := range name.FindAllString(string(readFile(t, p)), -1) {
			seen++
			if prefix, ok := strings.CutSuffix(v, "_"); ok || v == "LOCKBOX_" {
				// A family, as in LOCKBOX_SMTP_* or LOCKBOX_*_ADDR.
				if !slices.ContainsFunc(config.Vars(), func(d config.VarDoc) bool { return strings.HasPrefix(d.Name, prefix) }) {
					t.Errorf("%s: %s* names no variable", p, v)
				}
				continue
			}
			if !known[v] {
				t.Errorf("%s: %s is not a Lockbox variable (config.Vars)", p, v)
			}
		}
		return nil
	})
	if err != nil || seen == 0 {
		t.Fatalf("walk: %v, %d names", err, seen)
	}
}

// TestKustomizations: make deploy-check builds every kustomization of kind
// Kustomization; a Component is rendered only through one of them, so each
// must be used.
func TestKustomizations(t *testing.T) {
	type kustomization struct {
		Kind       string   `yaml:"kind"`
		Components []string `yaml:"components"`
	}
	all := map[string]kustomization{}
	err := filepath.WalkDir("kubernetes", func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.Name() != "kustomization.yaml" {
			return err
		}
		var k kustomization
		if err := yaml.Unmarshal(readFile(t, p), &k); err != nil {
			return err
		}
		if k.Kind != "Kustomization" && k.Kind != "Component" {
			t.Errorf("%s: kind %q, want Kustomization or Component", p, k.Kind)
		}
		all[filepath.Dir(p)] = k
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	used := map[string]bool{}
	var use func(dir string)
	use = func(dir string) {
		for _, c := range all[dir].Components {
			c = filepath.Join(dir, c)
			if !used[c] {
				used[c] = true
				use(c)
			}
		}
	}
	for dir, k := range all {
		if k.Kind == "Kustomization" {
			use(dir)
		}
	}
	for dir, k := range all {
		if k.Kind == "Component" && !used[dir] {
			t.Errorf("component %s is used by no kustomization, so make deploy-check never renders it", dir)
		}
	}
	for _, want := range []string{"kubernetes/base", "kubernetes/examples/exchange"} {
		if all[want].Kind != "Kustomization" {
			t.Errorf("%s: no kustomization", want)
		}
	}
}

// TestKubernetesScrapeConfig: the scrape config for Kubernetes (which
// Debian's promtool, built without Kubernetes discovery, can't check) uses
// only fields Prometheus knows and keeps the port the manifests name.
func TestKubernetesScrapeConfig(t *testing.T) {
	var jobs []struct {
		JobName   string `yaml:"job_name"`
		Scheme    string `yaml:"scheme"`
		TLSConfig struct {
			CAFile     string `yaml:"ca_file"`
			ServerName string `yaml:"server_name"`
		} `yaml:"tls_config"`
		KubernetesSDConfigs []struct {
			Role string `yaml:"role"`
		} `yaml:"kubernetes_sd_configs"`
		RelabelConfigs []struct {
			SourceLabels []string `yaml:"source_labels"`
			Regex        string   `yaml:"regex"`
			Action       string   `yaml:"action"`
			TargetLabel  string   `yaml:"target_label"`
		} `yaml:"relabel_configs"`
	}
	dec := yaml.NewDecoder(bytes.NewReader(readFile(t, "prometheus/scrape-kubernetes.yml")))
	dec.KnownFields(true)
	if err := dec.Decode(&jobs); err != nil {
		t.Fatal(err)
	}
	// One job for plain-HTTP metrics, one for TLS; the annotation the
	// Helm chart sets on pods whose metrics port serves TLS sends each pod
	// to exactly one of them.
	const annotation = "__meta_kubernetes_pod_annotation_lockbox_metrics_scheme"
	if len(jobs) != 2 || jobs[0].Scheme != "" || jobs[1].Scheme != "https" || jobs[1].TLSConfig.CAFile == "" {
		t.Fatalf("want a plain-HTTP job and an https job with a CA file: %+v", jobs)
	}
	kept := ""
	for i, job := range jobs {
		if len(job.KubernetesSDConfigs) != 1 || job.KubernetesSDConfigs[0].Role != "pod" {
			t.Errorf("%s: want pods discovered: %+v", job.JobName, job.KubernetesSDConfigs)
		}
		port, scheme := "", ""
		for _, r := range job.RelabelConfigs {
			if _, err := regexp.Compile("^(?:" + r.Regex + ")$"); err != nil {
				t.Error(err)
			}
			if r.Action == "keep" && slices.Equal(r.SourceLabels, []string{"__meta_kubernetes_pod_container_port_name"}) {
				port = r.Regex
			}
			if slices.Equal(r.SourceLabels, []string{annotation}) && r.Regex == "https" {
				scheme = r.Action
			}
		}
		if want := []string{"drop", "keep"}[i]; scheme != want {
			t.Errorf("%s: want %s on %s=https, got %q", job.JobName, want, annotation, scheme)
		}
		if port == "" || kept != "" && port != kept {
			t.Fatalf("%s: keep rule on the container port name %q (other job: %q)", job.JobName, port, kept)
		}
		kept = port
	}
	for _, f := range []string{"helm/lockbox/templates/deployment.yaml", "helm/lockbox/templates/sidecar.yaml"} {
		if !strings.Contains(string(readFile(t, f)), "lockbox/metrics-scheme: https") {
			t.Errorf("%s does not annotate pods whose metrics serve TLS", f)
		}
	}
	for _, f := range []string{
		"kubernetes/base/deployment.yaml", "kubernetes/components/sidecar/deployment.yaml",
		"kubernetes/components/monitoring/podmonitor.yaml", "helm/lockbox/templates/_helpers.tpl",
		"helm/lockbox/templates/monitoring.yaml",
	} {
		if !strings.Contains(string(readFile(t, f)), "name: "+kept) && !strings.Contains(string(readFile(t, f)), "port: "+kept) {
			t.Errorf("%s does not name the port %q that Prometheus keeps", f, kept)
		}
	}
}

// TestDashboard: every query of the Grafana dashboard goes to the data
// source the user picks, and panels don't collide.
func TestDashboard(t *testing.T) {
	var d struct {
		UID, Title string
		Panels     []struct {
			ID         int
			Type       string
			Title      string
			Datasource *struct{ Type, UID string }
			GridPos    struct{ H, W, X, Y int }
			Targets    []struct {
				RefID      string
				Expr       string
				Datasource *struct{ Type, UID string }
			}
		}
	}
	dec := json.NewDecoder(bytes.NewReader(readFile(t, "grafana/lockbox.json")))
	if err := dec.Decode(&d); err != nil {
		t.Fatal(err)
	}
	if d.UID == "" || d.Title == "" {
		t.Error("no uid or title")
	}
	ids := map[int]bool{}
	for _, p := range d.Panels {
		if ids[p.ID] {
			t.Errorf("panel id %d twice", p.ID)
		}
		ids[p.ID] = true
		if p.GridPos.X+p.GridPos.W > 24 || p.GridPos.W == 0 || p.GridPos.H == 0 {
			t.Errorf("panel %q: grid position %+v", p.Title, p.GridPos)
		}
		if p.Type == "row" {
			continue
		}
		if p.Datasource == nil || p.Datasource.UID != "${datasource}" || len(p.Targets) == 0 {
			t.Errorf("panel %q: data source %+v, %d targets", p.Title, p.Datasource, len(p.Targets))
		}
		refs := map[string]bool{}
		for _, tg := range p.Targets {
			if tg.Datasource == nil || tg.Datasource.UID != "${datasource}" || tg.RefID == "" || refs[tg.RefID] {
				t.Errorf("panel %q: target %+v", p.Title, tg)
			}
			refs[tg.RefID] = true
		}
	}
}

// TestSystemdUnit: the unit runs "lockbox serve" with its settings from
// the env file, secrets as credentials, and the hardening it promises.
func TestSystemdUnit(t *testing.T) {
	unit := map[string][]string{}
	for line := range strings.SplitSeq(string(readFile(t, "systemd/lockbox.service")), "\n") {
		line = strings.TrimSpace(line)
		if k, v, ok := strings.Cut(line, "="); ok && !strings.HasPrefix(line, "#") {
			unit[k] = append(unit[k], v)
		}
	}
	want := map[string]string{
		"ExecStart": "/usr/local/bin/lockbox serve", "EnvironmentFile": "/etc/lockbox/lockbox.env",
		"DynamicUser": "yes", "NoNewPrivileges": "yes", "ProtectSystem": "strict", "ProtectHome": "yes",
		"PrivateTmp": "yes", "PrivateDevices": "yes", "CapabilityBoundingSet": "", "RestrictSUIDSGID": "yes",
		"MemoryDenyWriteExecute": "yes", "SystemCallArchitectures": "native", "UMask": "0077",
		// "systemctl reload" sends SIGHUP, which re-reads the files.
		"ExecReload": "/bin/kill -HUP $MAINPID",
		// A failure that may pass is retried; a configuration refused,
		// exit 78 (EX_CONFIG, cmd/lockbox), is not started again.
		"Restart": "on-failure", "RestartPreventExitStatus": "78",
	}
	for k, v := range want {
		if !slices.Contains(unit[k], v) {
			t.Errorf("%s=%v, want %q", k, unit[k], v)
		}
	}
	env := map[string]string{}
	for line := range strings.SplitSeq(string(readFile(t, "systemd/lockbox.env")), "\n") {
		if k, v, ok := strings.Cut(strings.TrimSpace(line), "="); ok && !strings.HasPrefix(line, "#") {
			env[k] = v
		}
	}
	// The files it names are the credentials the unit loads.
	for _, v := range []string{"LOCKBOX_JWT_JWKS_FILE", "LOCKBOX_PROXY_SIGNING_KEY_FILE"} {
		cred, ok := strings.CutPrefix(env[v], "/run/credentials/lockbox.service/")
		if !ok || !slices.ContainsFunc(unit["LoadCredential"], func(c string) bool { return strings.HasPrefix(c, cred+":") }) {
			t.Errorf("%s=%s is not a credential the unit loads (%v)", v, env[v], unit["LoadCredential"])
		}
	}
	systemdCredentials(t, readFile(t, "systemd/lockbox.env"), readFile(t, "systemd/lockbox.service"))
	// A "lockbox serve" would start with it.
	cfg, err := config.Load(env)
	if err != nil {
		t.Fatal(err)
	}
	if cfg.RedisURL == "" || len(cfg.Upstreams) == 0 || cfg.PolicyDir == "" {
		t.Errorf("the env file misses a setting serve needs: %+v", cfg)
	}
	// One host in front of its tenant service runs the whole of Lockbox.
	for _, c := range []config.Component{config.ComponentProxy, config.ComponentAPI, config.ComponentJobs} {
		if !cfg.Runs(c) {
			t.Errorf("LOCKBOX_SERVE=%s does not run %s", cfg.Serve, c)
		}
	}
}

// systemdCredentials: every LOCKBOX_*_FILE the env file names, in a
// setting or in its comments, is a credential: given, commented out or
// not, as a file under /run/credentials/lockbox.service/, with the unit's
// LoadCredential line for it, commented out only where the setting is. The
// env file called LOCKBOX_REDIS_PASSWORD_FILE a credential, and the unit
// had no LoadCredential line for it: an operator who set it found no file.
func systemdCredentials(t *testing.T, envFile, unitFile []byte) {
	t.Helper()
	// Files that are no secret, read where they are.
	notCredentials := map[string]string{
		"LOCKBOX_REDIS_TLS_CA_FILE": "the CA certificates of Redis's TLS, public",
	}
	const dir = "/run/credentials/lockbox.service/"
	// A setting, or a LoadCredential line, and whether it is commented out.
	lines := func(b []byte) map[string]bool {
		m := map[string]bool{}
		for line := range strings.Lines(string(b)) {
			line = strings.TrimSpace(line)
			rest, commented := strings.CutPrefix(line, "# ")
			if _, seen := m[rest]; !seen || !commented {
				m[rest] = commented
			}
		}
		return m
	}
	settings, unit := lines(envFile), lines(unitFile)
	credentials := map[string]bool{} // commented out?
	for line, commented := range unit {
		if v, ok := strings.CutPrefix(line, "LoadCredential="); ok {
			name, _, _ := strings.Cut(v, ":")
			credentials[name] = commented
		}
	}
	for _, v := range slices.Compact(slices.Sorted(slices.Values(regexp.MustCompile(`LOCKBOX_[A-Z0-9_]+_FILE\b`).FindAllString(string(envFile), -1)))) {
		if _, ok := notCredentials[v]; ok {
			continue
		}
		var path string
		var commented bool
		for line, c := range settings {
			if p, ok := strings.CutPrefix(line, v+"="); ok {
				path, commented = p, c
			}
		}
		name, ok := strings.CutPrefix(path, dir)
		if !ok {
			t.Errorf("the env file names %s, a credential, but gives it no file under %s (%q)", v, dir, path)
			continue
		}
		loadCommented, loaded := credentials[name]
		switch {
		case !loaded:
			t.Errorf("%s=%s: the unit has no LoadCredential=%s: line", v, path, name)
		case loadCommented && !commented:
			t.Errorf("%s=%s is set, but the unit's LoadCredential=%s: line is commented out", v, path, name)
		}
	}
}

// TestIssuersExamples: the issuers the manifests ship are ones Lockbox
// reads: every field known, every scope provider or a tenant. (The files
// they name exist only in a cluster, so config.LoadIssuers's file checks
// are not run here.)
func TestIssuersExamples(t *testing.T) {
	strict := func(name string, b []byte) config.Issuers {
		t.Helper()
		var doc config.Issuers
		dec := yaml.NewDecoder(bytes.NewReader(b))
		dec.KnownFields(true)
		if err := dec.Decode(&doc); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(doc.Issuers) == 0 {
			t.Fatalf("%s: no issuers", name)
		}
		for _, is := range doc.Issuers {
			if !is.Scope.Provider && is.Scope.Tenant == "" || is.Issuer == "" || is.Audience == "" {
				t.Errorf("%s: issuer %+v lacks a scope, an issuer or an audience", name, is)
			}
		}
		return doc
	}
	kustomize := strict("kubernetes/components/issuers/issuers.yaml", readFile(t, "kubernetes/components/issuers/issuers.yaml"))
	for _, values := range []string{"helm/examples/control-plane.yaml", "helm/examples/exchange.yaml"} {
		var v struct {
			Identity struct {
				Issuers yaml.Node `yaml:"issuers"`
			} `yaml:"identity"`
		}
		if err := yaml.Unmarshal(readFile(t, values), &v); err != nil {
			t.Fatal(err)
		}
		b, err := yaml.Marshal(map[string]*yaml.Node{"issuers": &v.Identity.Issuers})
		if err != nil {
			t.Fatal(err)
		}
		// Every release of a deployment trusts the same issuers, as the
		// kustomize examples do.
		if got := strict(values, b); !reflect.DeepEqual(got, kustomize) {
			t.Errorf("%s trusts other issuers than the kustomize examples:\n%+v\n%+v", values, got, kustomize)
		}
	}
}

func TestExprLabels(t *testing.T) {
	cases := []struct {
		expr string
		want []string
	}{
		{`lockbox_grants_active`, nil},
		{`sum by (service, reason) (rate(lockbox_proxy_denials_total{reason!~"a|b", x="y(z,w}"}[5m] offset 1h)) > 0.1`, []string{"reason", "service", "x"}},
		{`histogram_quantile(0.99, sum by (le) (rate(a_bucket{service=~"$service"}[$__rate_interval])))`, []string{"le", "service"}},
		{`sum(rate(a[5m])) without (instance) / on (job) group_left (team) b`, []string{"instance", "job", "team"}},
		{`absent(up{job="lockbox"}) and on() count(c) > 0`, []string{"job"}},
		{`label_values(lockbox_proxy_requests_total, service)`, []string{"service"}},
		{`{__name__="by_name", a = "b"}`, []string{"a"}},
	}
	for _, tc := range cases {
		got, err := deploy.ExprLabels(tc.expr)
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("ExprLabels(%q) = %q, %v; want %q", tc.expr, got, err, tc.want)
		}
	}
	if got, err := deploy.ExprLabels(`a{"b"}`); err == nil {
		t.Errorf("ExprLabels of a matcher without a label = %q, want an error", got)
	}
}

// TestDocumentedChartValues: every value of the Helm chart the
// documentation names (a `dotted.path` whose first part is a top-level key
// of values.yaml, such as `identity.issuers`) is one values.yaml has, so a
// reader who sets it changes what the chart renders rather than adding a
// key the templates never read. File names under such a key (`tls.crt`)
// are no values.
func TestDocumentedChartValues(t *testing.T) {
	var values map[string]any
	if err := yaml.Unmarshal(readFile(t, "helm/lockbox/values.yaml"), &values); err != nil {
		t.Fatal(err)
	}
	files := map[string]bool{"crt": true, "key": true, "pem": true, "json": true, "yaml": true, "yml": true, "env": true, "conf": true}
	path := regexp.MustCompile("`([a-z][a-zA-Z]*(?:\\.[a-zA-Z][a-zA-Z0-9]*)+)`")
	docs, _ := filepath.Glob("../docs/*.md")
	docs = append(docs, "../README.md", "README.md", "RUNBOOK.md")
	found := 0
	for _, doc := range docs {
		for _, m := range path.FindAllStringSubmatch(string(readFile(t, doc)), -1) {
			parts := strings.Split(m[1], ".")
			if _, ok := values[parts[0]]; !ok || files[parts[len(parts)-1]] {
				continue
			}
			found++
			var v any = values
			for i, p := range parts {
				obj, _ := v.(map[string]any)
				var ok bool
				if v, ok = obj[p]; !ok {
					t.Errorf("%s names the chart value %s, but values.yaml has no %s", doc, m[1], strings.Join(parts[:i+1], "."))
					break
				}
			}
		}
	}
	if found < 10 {
		t.Fatalf("found only %d chart values named in the documentation", found)
	}
}

// TestOperationsNamesWhatTheSpikeAlertLeavesOut: docs/operations.md's
// account of what fails first says which reasons LockboxDenialsSpiking
// leaves out, so that on-call doesn't wait for it on an outage of
// Lockbox's own; its item names every reason the alert's expression
// excludes.
func TestOperationsNamesWhatTheSpikeAlertLeavesOut(t *testing.T) {
	groups, err := deploy.ReadRuleGroups("prometheus/lockbox.rules.yml")
	if err != nil {
		t.Fatal(err)
	}
	var excluded []string
	for _, g := range groups {
		for _, r := range g.Rules {
			if m := regexp.MustCompile(`reason!~"([a-z_|]+)"`).FindStringSubmatch(r.Expr); r.Alert == "LockboxDenialsSpiking" && m != nil {
				excluded = strings.Split(m[1], "|")
			}
		}
	}
	if len(excluded) == 0 {
		t.Fatal("LockboxDenialsSpiking excludes no reason")
	}
	ops := string(readFile(t, "../docs/operations.md"))
	i := strings.Index(ops, "**LockboxDenialsSpiking** does not")
	if i < 0 {
		t.Fatal("docs/operations.md no longer says what LockboxDenialsSpiking does not fire for")
	}
	item := regexp.MustCompile(`\n\d+\. `)
	start := 0
	for _, loc := range item.FindAllStringIndex(ops[:i], -1) {
		start = loc[0]
	}
	end := len(ops)
	if loc := item.FindStringIndex(ops[i:]); loc != nil {
		end = i + loc[0]
	}
	for _, r := range excluded {
		if !strings.Contains(ops[start:end], "`"+r+"`") {
			t.Errorf("docs/operations.md: the item on LockboxDenialsSpiking does not name %s, which the alert leaves out", r)
		}
	}
}

// TestRunbookNamesEveryCauseOfAReason: the on-call paged for a denial
// reason reads the alert's description and the runbook section of the
// alert that covers it (its own, or LockboxDenialsSpiking's item for it),
// so both name every cause for which the documentation says the proxy
// gives that reason (and, where a case says so, the alert's summary and
// README's list of alerts, read first); a cause they leave out sends the
// on-call after the wrong one. Each case quotes where the documentation gives the cause, so
// that a change there fails here too.
func TestRunbookNamesEveryCauseOfAReason(t *testing.T) {
	flat := func(s string) string { return strings.Join(strings.Fields(s), " ") }
	groups, err := deploy.ReadRuleGroups("prometheus/lockbox.rules.yml")
	if err != nil {
		t.Fatal(err)
	}
	description, summary := map[string]string{}, map[string]string{}
	for _, g := range groups {
		for _, r := range g.Rules {
			description[r.Alert] = flat(r.Annotations["description"])
			summary[r.Alert] = flat(r.Annotations["summary"])
		}
	}
	runbook := string(readFile(t, "RUNBOOK.md"))
	readme := flat(string(readFile(t, "../README.md")))
	// listed is the clause of README's list of alerts that names alert:
	// from the alert before it, "(`LockboxX`), ", to "(`<alert>`)".
	listed := func(alert string) string {
		before, _, ok := strings.Cut(readme, "(`"+alert+"`)")
		if !ok {
			t.Fatalf("README.md's list of alerts does not name %s", alert)
		}
		if i := strings.LastIndex(before, "`),"); i >= 0 {
			before = before[i+len("`),"):]
		}
		return before
	}
	section := func(alert string) string {
		_, s, ok := strings.Cut(runbook, "\n## "+alert+"\n")
		if !ok {
			t.Fatalf("RUNBOOK.md has no section %s", alert)
		}
		s, _, _ = strings.Cut(s, "\n## ")
		return flat(s)
	}
	// item is the bullet of section that names reason first.
	item := func(section, reason string) string {
		for it := range strings.SplitSeq(section, " - ") {
			if strings.HasPrefix(it, "`") && strings.Contains(it, "`"+reason+"`") {
				return it
			}
		}
		t.Fatalf("no item of the runbook section names %s", reason)
		return ""
	}
	cases := []struct {
		reason     string
		doc, says  string // where the documentation gives the cause
		alert      string
		spikeItem  bool   // the cause is told in LockboxDenialsSpiking's item for reason
		runbookHas string // what the runbook (and an own alert's description) must say of it
		// summaryHas and readmeHas, where set, are what the alert's
		// summary and README's list of alerts must say of the cause too:
		// both are read before the description.
		summaryHas, readmeHas string
	}{
		{
			reason: "store_unavailable", alert: "LockboxStoreUnavailable",
			doc: "../docs/operations.md", says: "A grant holding a field the replica does not know is not read: the proxy refuses the call with 503 `store_unavailable`",
			runbookHas: "rolling upgrade",
		},
		{
			// The runbook spoke of Redis alone, so on-call looked for an
			// outage while one tenant's settings record was damaged.
			reason: "store_unavailable", alert: "LockboxStoreUnavailable",
			doc: "../docs/operations.md", says: "while its settings can't be read, the proxy denies the tenant's calls (`store_unavailable`)",
			runbookHas: "stored settings do not decode",
		},
		{
			reason: "client_canceled", alert: "LockboxDenialsSpiking", spikeItem: true,
			doc: "../README.md", says: "A call whose client hangs up (or resets its HTTP/2 stream) while it is still being judged is logged as canceled by the client and counted as `client_canceled`",
			runbookHas: "canceled by the client",
		},
		{
			reason: "tenant_mismatch", alert: "LockboxTenantMismatch",
			doc: "../README.md", says: "403 `tenant_mismatch` for a grant record naming another tenant, operator or service than the call it was read for, which Lockbox never writes: an edit in Redis or a bug",
			runbookHas: "edited in Redis",
		},
		{
			// The summary and the description spoke of the replica's
			// budget alone, so on-call looked for a replica short of
			// memory while one operator's uploads held their share.
			reason: "overloaded", alert: "LockboxProxyOverloaded",
			doc: "../docs/operations.md", says: "past that share their next such call gets 503 `overloaded`",
			runbookHas: "share", summaryHas: "share", readmeHas: "share",
		},
	}
	for _, tc := range cases {
		if !strings.Contains(flat(string(readFile(t, tc.doc))), flat(tc.says)) {
			t.Errorf("%s no longer says %q: update this case", tc.doc, tc.says)
			continue
		}
		text := section(tc.alert)
		if tc.spikeItem {
			text = item(text, tc.reason)
		} else if !strings.Contains(description[tc.alert], tc.runbookHas) {
			// An alert of its own says what broke in its description.
			t.Errorf("%s: %s gives it for a cause (%q) that the description of %s does not name (%q): %s", tc.reason, tc.doc, tc.says, tc.alert, tc.runbookHas, description[tc.alert])
		}
		if !strings.Contains(text, tc.runbookHas) {
			t.Errorf("%s: %s gives it for a cause (%q) that the runbook's %s does not name (%q):\n%s", tc.reason, tc.doc, tc.says, tc.alert, tc.runbookHas, text)
		}
		if tc.summaryHas != "" && !strings.Contains(summary[tc.alert], tc.summaryHas) {
			t.Errorf("%s: %s gives it for a cause (%q) that the summary of %s does not name (%q): %s", tc.reason, tc.doc, tc.says, tc.alert, tc.summaryHas, summary[tc.alert])
		}
		if tc.readmeHas != "" && !strings.Contains(listed(tc.alert), tc.readmeHas) {
			t.Errorf("%s: %s gives it for a cause (%q) that README.md's list of alerts does not name for %s (%q): %s", tc.reason, tc.doc, tc.says, tc.alert, tc.readmeHas, listed(tc.alert))
		}
	}
}

// TestREADMEGrantStepNamesEveryCause: README's grant step, where callers
// and operators look up what the proxy's answers mean, gives 503
// store_unavailable for each cause docs/operations.md gives it for. Told
// only "Redis is slow or down", a reader looks for an outage while a
// rolling upgrade is under way.
func TestREADMEGrantStepNamesEveryCause(t *testing.T) {
	flat := func(s string) string { return strings.Join(strings.Fields(s), " ") }
	const says = "A grant holding a field the replica does not know is not read: the proxy refuses the call with 503 `store_unavailable`"
	if !strings.Contains(flat(string(readFile(t, "../docs/operations.md"))), says) {
		t.Fatalf("docs/operations.md no longer says %q: update this test", says)
	}
	_, step, ok := strings.Cut(string(readFile(t, "../README.md")), "\n5. **Grant**")
	if !ok {
		t.Fatal("README.md has no step \"5. **Grant**\"")
	}
	step, _, _ = strings.Cut(step, "\n6. ")
	step = flat(step)
	_, answer, ok := strings.Cut(step, "503 `store_unavailable`")
	if !ok {
		t.Fatalf("README.md's grant step no longer gives 503 `store_unavailable`: %s", step)
	}
	for _, cause := range []string{"slow or down", "rolling upgrade", "settings do not decode", "request's record does not"} {
		if !strings.Contains(answer, cause) {
			t.Errorf("README.md's grant step gives 503 `store_unavailable` without its cause %q: %s", cause, answer)
		}
	}
}

func TestExprMatchers(t *testing.T) {
	cases := []struct {
		expr string
		want []deploy.Matcher
	}{
		{`lockbox_grants_active`, nil},
		{`sum by (service) (rate(a{reason!~"x|y", b = "c}{,d"}[5m] offset 1h)) > 0 and d{e!="f"}`, []deploy.Matcher{
			{Metric: "a", Label: "reason", Op: "!~", Value: "x|y"},
			{Metric: "a", Label: "b", Op: "=", Value: "c}{,d"},
			{Metric: "d", Label: "e", Op: "!=", Value: "f"},
		}},
		{`histogram_quantile(0.99, sum by (le) (rate(a_bucket{service=~"$service"}[$__rate_interval])))`, []deploy.Matcher{
			{Metric: "a_bucket", Label: "service", Op: "=~", Value: "$service"},
		}},
		{"x{a=\"q\\\"uote\",}", []deploy.Matcher{{Metric: "x", Label: "a", Op: "=", Value: `q"uote`}}},
		{"{__name__=`raw`, a=~\"b\"}", []deploy.Matcher{
			{Label: "__name__", Op: "=", Value: "raw"},
			{Label: "a", Op: "=~", Value: "b"},
		}},
		{`label_values(lockbox_proxy_requests_total{decision="denied"}, service)`, []deploy.Matcher{
			{Metric: "lockbox_proxy_requests_total", Label: "decision", Op: "=", Value: "denied"},
		}},
	}
	for _, tc := range cases {
		got, err := deploy.ExprMatchers(tc.expr)
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("ExprMatchers(%q) = %+v, %v; want %+v", tc.expr, got, err, tc.want)
		}
	}
	for _, bad := range []string{`a{b}`, `a{b="c"`, `a{b=c}`, `a{b="c}`, `a{b='c'}`} {
		if got, err := deploy.ExprMatchers(bad); err == nil {
			t.Errorf("ExprMatchers(%q) = %+v, want an error", bad, got)
		}
	}
}

// TestREADMEListsEveryPart: deploy/README.md's table is where a newcomer
// finds what each part of deploy/ is, so every file here (but this
// package's Go code and the two documents) lies in a path one of its rows
// names: a component or file added without its row would go unexplained,
// and a row whose path was renamed names nothing.
func TestREADMEListsEveryPart(t *testing.T) {
	var named []string // the table's paths that exist
	span := regexp.MustCompile("`([^`]+)`")
	for line := range strings.Lines(string(readFile(t, "README.md"))) {
		if !strings.HasPrefix(line, "| `") {
			continue
		}
		spans := span.FindAllStringSubmatch(line, -1)
		if _, err := os.Stat(strings.TrimSuffix(spans[0][1], "/")); err != nil {
			t.Errorf("README.md's row for %s names nothing in deploy/: %v", spans[0][1], err)
		}
		// The description may name more (helm/examples beside the chart).
		for _, m := range spans {
			if p := strings.TrimSuffix(m[1], "/"); p != "" {
				if _, err := os.Stat(p); err == nil {
					named = append(named, p)
				}
			}
		}
	}
	if len(named) < 10 {
		t.Fatalf("README.md's table names only %d paths of deploy/: %q", len(named), named)
	}
	files := 0
	err := filepath.WalkDir(".", func(p string, d fs.DirEntry, err error) error {
		if err != nil || p == "." {
			return err
		}
		if strings.HasPrefix(d.Name(), ".") {
			if d.IsDir() {
				return filepath.SkipDir
			}
			return nil
		}
		if d.IsDir() || strings.HasSuffix(p, ".go") || p == "README.md" || p == "RUNBOOK.md" {
			return nil
		}
		files++
		if !slices.ContainsFunc(named, func(n string) bool { return p == n || strings.HasPrefix(p, n+"/") }) {
			t.Errorf("%s: no row of README.md's table names it or a directory it is in", p)
		}
		return nil
	})
	if err != nil || files == 0 {
		t.Fatalf("walk: %v, %d files", err, files)
	}
}

// TestControlPlaneSettingsDocumented: the Helm chart refuses in config
// (which the sidecars read too) the settings only the control plane reads,
// and values.yaml's comment on config, README's Helm section and its table
// of what the control plane holds of its own name each of them (the
// variable, or its family as LOCKBOX_SMTP_*): a reader who puts one of
// them in config by the documentation's word meets a refusal nothing
// warned of.
func TestControlPlaneSettingsDocumented(t *testing.T) {
	// The chart's refusal: a regexMatch on the key whose fail says to set
	// it in controlPlane.config.
	refusal := regexp.MustCompile(`regexMatch "([^"]+)" \$k \}\}\n\{\{- fail \(printf "config\.%s: set it in controlPlane\.config`)
	m := refusal.FindStringSubmatch(string(readFile(t, "helm/lockbox/templates/configmap.yaml")))
	if m == nil {
		t.Fatal("helm/lockbox/templates/configmap.yaml no longer refuses the control plane's settings in config with regexMatch: update this test")
	}
	refused := regexp.MustCompile(m[1])
	var want []string
	for _, v := range config.Vars() {
		if refused.MatchString(v.Name) {
			want = append(want, v.Name)
		}
	}
	if len(want) < 10 {
		t.Fatalf("the chart's pattern %s refuses only %q in config", m[1], want)
	}

	_, comment, ok := strings.Cut(string(readFile(t, "helm/lockbox/values.yaml")), "\nimagePullSecrets:")
	if !ok {
		t.Fatal("values.yaml has no imagePullSecrets")
	}
	comment, _, ok = strings.Cut(comment, "\nconfig:\n")
	if !ok {
		t.Fatal("values.yaml has no config")
	}
	readme := string(readFile(t, "../README.md"))
	_, helm, ok := strings.Cut(strings.Join(strings.Fields(readme), " "), "Keep `config` identical in every release;")
	if !ok {
		t.Fatal("README.md's Helm section no longer says \"Keep `config` identical in every release;\": update this test")
	}
	helm, _, _ = strings.Cut(helm, "which the sidecars read too.")
	_, row, ok := strings.Cut(readme, "\n| settings of its own |")
	if !ok {
		t.Fatal(`README.md has no row "| settings of its own |"`)
	}
	row, _, _ = strings.Cut(row, "|") // the control plane's cell
	named := regexp.MustCompile(`LOCKBOX_[A-Z0-9_]+\*?`)
	for doc, text := range map[string]string{
		"helm/lockbox/values.yaml (the comment on config)":    comment,
		"README.md (Helm: what the chart refuses in config)":  helm,
		"README.md (the control plane's settings of its own)": row,
	} {
		names := named.FindAllString(text, -1)
		for _, v := range want {
			if !slices.ContainsFunc(names, func(n string) bool {
				family, ok := strings.CutSuffix(n, "*")
				return n == v || ok && strings.HasPrefix(v, family)
			}) {
				t.Errorf("%s does not name %s, which only the control plane reads and the chart refuses in config", doc, v)
			}
		}
	}
}
