package deploy_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"reflect"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// TestTwoServicesInOneNamespace: two tenant services with the sidecar in
// one namespace, each deployed on its own (a kustomization each, as
// examples/exchange and a copy of it for sharepoint), applied what each
// other applied under the same names. The sidecar component's
// NetworkPolicy was lockbox-sidecar, selecting every pod with the sidecar
// in the namespace, components/issuers added two more of fixed names (one
// selecting the control plane's pods, none of which run there), and the
// example's Certificate was lockbox-tls, writing Secret lockbox-tls, which
// every sidecar mounted: the second service's apply rewrote the first's
// Certificate with its own names, and the first service's sidecar then
// served a certificate for the second's. Now every object a service's
// build renders is its own (bar the namespace's shared settings and
// policy, the same ConfigMaps from either), each NetworkPolicy and
// PodDisruptionBudget selects exactly one service's pods, and each sidecar
// mounts the Secret of a Certificate of its own for its own Service's
// names.
func TestTwoServicesInOneNamespace(t *testing.T) {
	dir := t.TempDir()
	sharepoint := sharepointBeside(t, dir)
	checkServicesShareNamespace(t, []render{
		{"examples/exchange", goTool(t, "kustomize", "build", "../deploy/kubernetes/examples/exchange")},
		{"sharepoint, a copy of examples/exchange", goTool(t, "kustomize", "build", sharepoint)},
	}, "exchange", []string{"exchange", "sharepoint"})
}

// render is the output of one kustomize build or helm template.
type render struct {
	name string
	out  []byte
}

// checkServicesShareNamespace checks that renders, applied to namespace ns
// one after the other, leave each of services (a Deployment and a Service
// of that name, with the sidecar) its own objects.
func checkServicesShareNamespace(t *testing.T, renders []render, ns string, services []string) {
	t.Helper()
	type key struct{ kind, ns, name string }
	type rendered struct {
		obj  map[string]any
		from string
	}
	objs := map[key]rendered{}
	var order []key
	for _, r := range renders {
		dec := yaml.NewDecoder(bytes.NewReader(r.out))
		for {
			var o map[string]any
			if err := dec.Decode(&o); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				t.Fatalf("%s: %v", r.name, err)
			}
			if o == nil {
				continue
			}
			k := key{fmt.Sprint(o["kind"]), fmt.Sprint(at(o, "metadata")["namespace"]), fmt.Sprint(at(o, "metadata")["name"])}
			if k.ns == "<nil>" {
				k.ns = ns // helm template leaves the release's namespace to the apply
			}
			if k.ns != ns {
				continue
			}
			if prev, ok := objs[k]; ok {
				// The namespace's settings and policy are one for every
				// "lockbox serve" in it: either build applies the same.
				if k.kind != "ConfigMap" || !reflect.DeepEqual(prev.obj, o) {
					t.Errorf("%s %s/%s is rendered by both %s and %s: the second apply rewrites the first's", k.kind, k.ns, k.name, prev.from, r.name)
				}
				continue
			}
			objs[k] = rendered{o, r.name}
			order = append(order, k)
		}
	}

	pods := map[string]map[string]any{} // Deployment → its pods' labels
	for _, k := range order {
		if k.kind == "Deployment" {
			pods[k.name] = at(objs[k].obj, "spec", "template", "metadata", "labels")
		}
	}
	for _, s := range services {
		if pods[s] == nil {
			t.Fatalf("no Deployment %s in namespace %s", s, ns)
		}
	}
	// Each budget and each policy selects the pods of one Deployment, and
	// each service's pods are selected by one of each.
	selectedBy := map[string]map[string][]string{} // kind → Deployment → its selectors
	for _, k := range order {
		var sel map[string]any
		switch k.kind {
		case "PodDisruptionBudget":
			sel = at(objs[k].obj, "spec", "selector")
		case "NetworkPolicy":
			sel = at(objs[k].obj, "spec", "podSelector")
		default:
			continue
		}
		if exprs := sel["matchExpressions"]; exprs != nil {
			t.Fatalf("%s %s selects by expressions %v: this test reads matchLabels only", k.kind, k.name, exprs)
		}
		match, _ := sel["matchLabels"].(map[string]any)
		var selected []string
		for d, labels := range pods {
			if matchesLabels(match, labels) {
				selected = append(selected, d)
				if selectedBy[k.kind] == nil {
					selectedBy[k.kind] = map[string][]string{}
				}
				selectedBy[k.kind][d] = append(selectedBy[k.kind][d], k.name)
			}
		}
		slices.Sort(selected)
		if len(selected) != 1 {
			t.Errorf("%s %s (from %s) selects the pods of Deployments %v, want one service's alone", k.kind, k.name, objs[k].from, selected)
		}
	}
	for _, kind := range []string{"PodDisruptionBudget", "NetworkPolicy"} {
		for _, s := range services {
			if got := selectedBy[kind][s]; len(got) != 1 {
				t.Errorf("Deployment %s: %v (%s) select its pods, want one", s, got, kind)
			}
		}
	}

	// Each sidecar serves the certificate of a Secret that one Certificate
	// writes, for its own Service's names and no other service's.
	writers := map[string][]map[string]any{} // Secret → the Certificates writing it
	for _, k := range order {
		if k.kind == "Certificate" {
			c := objs[k].obj
			secret := fmt.Sprint(at(c, "spec")["secretName"])
			writers[secret] = append(writers[secret], c)
		}
	}
	for secret, certs := range writers {
		if len(certs) > 1 {
			t.Errorf("Secret %s is written by %d Certificates: each renewal of one replaces the other's names", secret, len(certs))
		}
	}
	for _, s := range services {
		secret := tlsSecret(t, objs[key{"Deployment", ns, s}].obj)
		if secret == "" {
			t.Errorf("Deployment %s: its sidecar mounts no certificate at /etc/lockbox/tls", s)
			continue
		}
		certs := writers[secret]
		if len(certs) != 1 {
			t.Errorf("Deployment %s: its sidecar serves Secret %s, which %d Certificates write, want one", s, secret, len(certs))
			continue
		}
		names, _ := at(certs[0], "spec")["dnsNames"].([]any)
		for _, want := range []string{s, s + "." + ns + ".svc"} {
			if !slices.Contains(names, any(want)) {
				t.Errorf("Deployment %s: Certificate %s (Secret %s) has dnsNames %v, without %s", s, at(certs[0], "metadata")["name"], secret, names, want)
			}
		}
		for _, other := range services {
			for _, n := range names {
				if other != s && (n == other || strings.HasPrefix(fmt.Sprint(n), other+".")) {
					t.Errorf("Deployment %s: its certificate names %s, the Service of %s", s, n, other)
				}
			}
		}
	}
}

// tlsSecret is the Secret a Deployment's lockbox container reads its
// certificate from (the volume mounted at /etc/lockbox/tls), or "".
func tlsSecret(t *testing.T, d map[string]any) string {
	t.Helper()
	spec := at(d, "spec", "template", "spec")
	inits, _ := spec["initContainers"].([]any)
	containers, _ := spec["containers"].([]any)
	volumes, _ := spec["volumes"].([]any)
	for _, c := range slices.Concat(inits, containers) {
		c, _ := c.(map[string]any)
		if c["name"] != "lockbox" {
			continue
		}
		mounts, _ := c["volumeMounts"].([]any)
		for _, m := range mounts {
			m, _ := m.(map[string]any)
			if m["mountPath"] != "/etc/lockbox/tls" {
				continue
			}
			for _, v := range volumes {
				v, _ := v.(map[string]any)
				if v["name"] == m["name"] {
					return fmt.Sprint(at(v, "secret")["secretName"])
				}
			}
		}
	}
	return ""
}

// at walks o down the given keys, nil where one is missing.
func at(o map[string]any, path ...string) map[string]any {
	for _, p := range path {
		o, _ = o[p].(map[string]any)
	}
	return o
}

// matchesLabels says whether a non-empty matchLabels selects a pod with
// labels.
func matchesLabels(sel, labels map[string]any) bool {
	for k, v := range sel {
		if labels[k] != v {
			return false
		}
	}
	return len(sel) > 0
}

// TestHelmTwoServicesInOneNamespace: the same for the Helm chart, two
// sidecar releases in one namespace (helm/examples/exchange.yaml, and
// sharepoint from the same values). Each release's Certificate had a name
// of its own but wrote the one Secret tls.secretName (lockbox-tls) that
// every sidecar mounted: cert-manager issued it for one release's names,
// then the other's, and a sidecar served the other service's certificate
// in between. A sidecar release's Secret is now named as its Certificate,
// <sidecar.workload.name>-lockbox-tls.
func TestHelmTwoServicesInOneNamespace(t *testing.T) {
	kube := kubeVersion(t)
	release := func(name string, set ...string) render {
		args := []string{"helm", "template", name, "../deploy/helm/lockbox", "--namespace", "exchange",
			"--kube-version", kube, "-f", "../deploy/helm/examples/exchange.yaml"}
		for _, s := range set {
			args = append(args, "--set", s)
		}
		return render{"release " + name, goTool(t, args...)}
	}
	checkServicesShareNamespace(t, []render{
		release("exchange"),
		release("sharepoint", "sidecar.workload.name=sharepoint", "sidecar.service=sharepoint",
			"monitoring.podMonitor.tlsConfig.ca.secret.name=sharepoint-lockbox-tls",
			"monitoring.podMonitor.tlsConfig.serverName=sharepoint.exchange.svc"),
	}, "exchange", []string{"exchange", "sharepoint"})
}

// TestHelmTLSSecretName: the Secret a release's lockbox container serves
// its certificate from, and its Certificate writes: tls.secretName when
// set, and by default lockbox-tls for the control plane and
// <sidecar.workload.name>-lockbox-tls for a sidecar release, one per
// service of a namespace (TestHelmTwoServicesInOneNamespace).
func TestHelmTLSSecretName(t *testing.T) {
	kube := kubeVersion(t)
	for _, tc := range []struct {
		name, example, deployment string
		set                       []string
		want                      string
	}{
		{"control plane", "control-plane", "control-plane-lockbox", nil, "lockbox-tls"},
		{"sidecar", "exchange", "exchange", nil, "exchange-lockbox-tls"},
		{"sidecar, named", "exchange", "exchange", []string{"tls.secretName=exchange-certificate"}, "exchange-certificate"},
		{"control plane, named", "control-plane", "control-plane-lockbox", []string{"tls.secretName=api-certificate"}, "api-certificate"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := []string{"helm", "template", tc.example, "../deploy/helm/lockbox", "--namespace", tc.example,
				"--kube-version", kube, "-f", "../deploy/helm/examples/" + tc.example + ".yaml"}
			for _, s := range tc.set {
				args = append(args, "--set", s)
			}
			out := goTool(t, args...)
			var mounted string
			var written []string
			dec := yaml.NewDecoder(bytes.NewReader(out))
			for {
				var o map[string]any
				if err := dec.Decode(&o); errors.Is(err, io.EOF) {
					break
				} else if err != nil {
					t.Fatal(err)
				}
				switch {
				case o["kind"] == "Deployment" && at(o, "metadata")["name"] == tc.deployment:
					mounted = tlsSecret(t, o)
				case o["kind"] == "Certificate":
					written = append(written, fmt.Sprint(at(o, "spec")["secretName"]))
				}
			}
			if mounted != tc.want {
				t.Errorf("Deployment %s serves Secret %q, want %q", tc.deployment, mounted, tc.want)
			}
			if !slices.Equal(written, []string{tc.want}) {
				t.Errorf("the Certificates write Secrets %v, want %s", written, tc.want)
			}
		})
	}
}
