package deploy_test

import (
	"bytes"
	"errors"
	"io"
	"maps"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// podMonitor holds what the tests read of a rendered PodMonitor or
// PrometheusRule.
type podMonitor struct {
	Kind     string `yaml:"kind"`
	Metadata struct {
		Name      string            `yaml:"name"`
		Namespace string            `yaml:"namespace"`
		Labels    map[string]string `yaml:"labels"`
	} `yaml:"metadata"`
	Spec struct {
		NamespaceSelector *struct {
			Any        bool     `yaml:"any"`
			MatchNames []string `yaml:"matchNames"`
		} `yaml:"namespaceSelector"`
	} `yaml:"spec"`
}

func monitorObjects(t *testing.T, docs []byte, kind string) []podMonitor {
	t.Helper()
	var out []podMonitor
	dec := yaml.NewDecoder(bytes.NewReader(docs))
	for {
		var m podMonitor
		if err := dec.Decode(&m); errors.Is(err, io.EOF) {
			return out
		} else if err != nil {
			t.Fatal(err)
		}
		if m.Kind == kind {
			out = append(out, m)
		}
	}
}

// helmInstall renders an example values file as its own first lines say
// to install it ("helm install NAME deploy/helm/lockbox -n NAMESPACE -f
// FILE"), with extra --set flags, and returns the render and the namespace.
func helmInstall(t *testing.T, values string, set ...string) ([]byte, string) {
	t.Helper()
	m := regexp.MustCompile(`(?m)^#\s+helm install (\S+) deploy/helm/lockbox -n (\S+) -f deploy/` + regexp.QuoteMeta(values) + `$`).FindSubmatch(readFile(t, values))
	if m == nil {
		t.Fatalf("%s does not say how to install it (helm install NAME deploy/helm/lockbox -n NAMESPACE -f deploy/%s)", values, values)
	}
	name, ns := string(m[1]), string(m[2])
	args := []string{"helm", "template", name, "../deploy/helm/lockbox", "--namespace", ns, "--kube-version", kubeVersion(t), "-f", "../deploy/" + values}
	for _, s := range set {
		args = append(args, "--set", s)
	}
	return goTool(t, args...), ns
}

// TestRunbookNamesThePodMonitorJobs: LockboxMetricsAbsent's runbook sends
// on-call to Prometheus's target page for the PodMonitors' jobs, which the
// Prometheus Operator names <namespace>/<name> after the PodMonitor
// itself: the namespace it lives in, not the namespace of the pods it
// selects. It named the sidecars' job "<namespace>/lockbox-sidecars", as
// if it were each tenant service's namespace, where the kustomize
// PodMonitor lives in the control plane's ("lockbox/lockbox-sidecars"),
// and no job of the Helm chart, whose PodMonitor is one per release, in
// the release's namespace, named after the release. Every job the
// examples render, installed as they say, is named in the section, so
// that what on-call copies is on the target page.
func TestRunbookNamesThePodMonitorJobs(t *testing.T) {
	runbook := string(readFile(t, "RUNBOOK.md"))
	start := strings.Index(runbook, "## LockboxMetricsAbsent")
	if start < 0 {
		t.Fatal("RUNBOOK.md has no LockboxMetricsAbsent section")
	}
	section := runbook[start:]
	if end := strings.Index(section[3:], "\n## "); end >= 0 {
		section = section[:end+3]
	}
	jobs := map[string]string{} // job -> where it comes from
	for _, dir := range []string{"kubernetes/examples/control-plane", "kubernetes/examples/exchange"} {
		for _, m := range monitorObjects(t, goTool(t, "kustomize", "build", "../deploy/"+dir), "PodMonitor") {
			if m.Metadata.Namespace == "" {
				t.Fatalf("%s: PodMonitor %s has no namespace", dir, m.Metadata.Name)
			}
			jobs[m.Metadata.Namespace+"/"+m.Metadata.Name] = dir
		}
	}
	examples, _ := filepath.Glob("helm/examples/*.yaml")
	for _, values := range examples {
		out, ns := helmInstall(t, values)
		for _, m := range monitorObjects(t, out, "PodMonitor") {
			if m.Spec.NamespaceSelector != nil {
				t.Errorf("%s: PodMonitor %s selects pods beyond its release's namespace %s", values, m.Metadata.Name, ns)
			}
			jobs[ns+"/"+m.Metadata.Name] = values
		}
	}
	if len(jobs) < 3 {
		t.Fatalf("only %d PodMonitors rendered: %v", len(jobs), jobs)
	}
	for _, job := range slices.Sorted(maps.Keys(jobs)) {
		if !strings.Contains(section, "`"+job+"`") {
			t.Errorf("RUNBOOK.md, LockboxMetricsAbsent, does not name the job `%s` (the PodMonitor of %s)", job, jobs[job])
		}
	}
}

// TestHelmMonitoringLabels: a Prometheus of the Prometheus Operator picks
// up only the PodMonitors and PrometheusRules its podMonitorSelector and
// ruleSelector match, which kube-prometheus-stack sets to its release
// label. The chart's had no labels but its own, so with that stack they
// rendered, installed, and were never read: no scrape, no alert.
// monitoring.podMonitor.labels and monitoring.prometheusRule.labels put
// labels on them, beside the chart's own.
func TestHelmMonitoringLabels(t *testing.T) {
	out, _ := helmInstall(t, "helm/examples/control-plane.yaml",
		"monitoring.podMonitor.labels.release=kube-prometheus-stack",
		"monitoring.prometheusRule.labels.release=kube-prometheus-stack")
	for _, kind := range []string{"PodMonitor", "PrometheusRule"} {
		objs := monitorObjects(t, out, kind)
		if len(objs) != 1 {
			t.Fatalf("%d %ss rendered, want 1", len(objs), kind)
		}
		l := objs[0].Metadata.Labels
		if l["release"] != "kube-prometheus-stack" || l["app.kubernetes.io/part-of"] != "lockbox" {
			t.Errorf("%s labels %v, want release=kube-prometheus-stack beside the chart's own", kind, l)
		}
	}
}
