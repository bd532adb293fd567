package deploy_test

import (
	"bytes"
	"errors"
	"io"
	"net"
	"net/url"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// TestNetworkPolicyAllowsConfiguredEndpoints: every endpoint a Lockbox
// pod's configuration names (outside the cluster: the SMTP server, each
// webhook URL, the JWKS URLs and OpenID Connect issuers; inside it: the
// Redis Sentinels or cluster nodes) is one its NetworkPolicies let it
// reach, on the port the configuration names. A policy on fixed ports
// blocks a relay on 2525 or a webhook on 8443 without a word: the
// notifications pile up in the outbox and are dead-lettered, or no token
// verifies; and Sentinels or cluster nodes on other ports than 6379 and
// 26379 leave every pod unable to start.
func TestNetworkPolicyAllowsConfiguredEndpoints(t *testing.T) {
	kube := kubeVersion(t)
	dir := t.TempDir()
	values := writeIn(t, dir, "endpoints.yaml", "controlPlane:\n  config:\n"+
		"    LOCKBOX_SMTP_ADDR: smtp.example:2525\n"+
		"    LOCKBOX_SMTP_FROM: lockbox@provider.example\n"+
		"    LOCKBOX_WEBHOOK_URLS: https://hooks.example:8443/lockbox, https://chat.example/hook, http://[2001:db8::1]:8080/x\n"+
		"    LOCKBOX_OIDC_ISSUER: https://login.provider.example:9443/\n"+
		"    LOCKBOX_OIDC_CLIENT_ID: lockbox-console\n"+
		"    LOCKBOX_OIDC_CLIENT_SECRET_FILE: /etc/lockbox/console-clients/provider\n"+
		"    LOCKBOX_CONSOLE_URL: https://lockbox.provider.example\n"+
		"config:\n  LOCKBOX_JWT_JWKS_URL: https://keys.provider.example:8444/jwks.json\n"+
		"identity:\n  providerCIDRs: [192.0.2.0/24]\n")
	sidecar := writeIn(t, dir, "sidecar.yaml", "controlPlane: {enabled: false}\n"+
		"sidecar:\n  enabled: true\n  service: exchange\n  workload: {name: exchange, image: registry.tenant.example/exchange:1.0}\n")
	sentinel := writeIn(t, dir, "sentinel.yaml", "redis:\n  topology: sentinel\n"+
		"  sentinel: {master: lockbox, addrs: [\"sentinel-0.redis.svc:5000\", \"sentinel-1.redis.svc:26379\"]}\n")
	cluster := writeIn(t, dir, "cluster.yaml", "redis:\n  topology: cluster\n"+
		"  cluster: {addrs: [\"redis-0.redis.svc:7000\", \"redis-1.redis.svc:7001\"]}\n")
	helm := func(release string, values ...string) []string {
		args := []string{"helm", "template", release, "../deploy/helm/lockbox", "--namespace", release, "--kube-version", kube}
		for _, v := range values {
			args = append(args, "-f", v)
		}
		return args
	}
	renders := map[string][]string{
		"helm control plane":                    helm("lockbox", values),
		"helm sidecar":                          helm("exchange", values, sidecar),
		"helm helm/examples/control-plane.yaml": helm("control-plane", "../deploy/helm/examples/control-plane.yaml"),
		"helm sentinel control plane":           helm("lockbox", values, sentinel),
		"helm cluster sidecar":                  helm("exchange", values, sidecar, cluster),
		"helm helm/examples/sentinel.yaml":      helm("sentinel", "../deploy/helm/examples/sentinel.yaml"),
		"kustomize examples/control-plane":      {"kustomize", "build", "../deploy/kubernetes/examples/control-plane"},
		"kustomize examples/sentinel/exchange":  {"kustomize", "build", "../deploy/kubernetes/examples/sentinel/exchange"},
	}
	for name, args := range renders {
		t.Run(name, func(t *testing.T) {
			docs := goTool(t, args...)
			objs := decodeObjects(t, name, docs)
			pods := decodePolicies(t, name, docs)
			checked := 0
			for _, o := range objs {
				pod := o.Spec.Template.Spec
				for _, c := range slices.Concat(pod.InitContainers, pod.Containers) {
					if c.Name != "lockbox" {
						continue
					}
					env := podEnv(t, c, objs, pod.Volumes)
					labels := pods.labels[o.Metadata.Name]
					for _, e := range endpoints(t, env) {
						checked++
						if !pods.egressAllowed(labels, e.port, e.inCluster) {
							t.Errorf("%s %s: %s (%s) needs egress on TCP %d, which no NetworkPolicy of the pod allows", o.Kind, o.Metadata.Name, e.setting, e.value, e.port)
						}
					}
				}
			}
			if name != "kustomize examples/control-plane" && checked == 0 {
				t.Fatal("no endpoint configured: nothing checked")
			}
		})
	}
}

// endpoint is a server a setting names: outside the cluster, or a pod
// inside it (Redis).
type endpoint struct {
	setting, value string
	port           int
	inCluster      bool
}

// endpoints are the servers Lockbox's configuration env names, with the
// port each is reached on.
func endpoints(t *testing.T, env map[string]string) []endpoint {
	t.Helper()
	var out []endpoint
	addURL := func(setting, raw string) {
		t.Helper()
		u, err := url.Parse(raw)
		if err != nil {
			t.Fatalf("%s: %v", setting, err)
		}
		port := map[string]int{"https": 443, "http": 80}[u.Scheme]
		if p := u.Port(); p != "" {
			if port, err = strconv.Atoi(p); err != nil {
				t.Fatalf("%s %q: %v", setting, raw, err)
			}
		}
		if port == 0 {
			t.Fatalf("%s %q: no port", setting, raw)
		}
		out = append(out, endpoint{setting, raw, port, false})
	}
	if addr := env["LOCKBOX_SMTP_ADDR"]; addr != "" {
		_, p, err := net.SplitHostPort(addr)
		port, perr := strconv.Atoi(p)
		if err != nil || perr != nil {
			t.Fatalf("LOCKBOX_SMTP_ADDR %q: %v %v", addr, err, perr)
		}
		out = append(out, endpoint{"LOCKBOX_SMTP_ADDR", addr, port, false})
	}
	// LOCKBOX_REDIS_URL comes from a Secret the render does not hold.
	for _, k := range []string{"LOCKBOX_REDIS_SENTINEL_ADDRS", "LOCKBOX_REDIS_CLUSTER_ADDRS"} {
		for addr := range strings.SplitSeq(env[k], ",") {
			if addr = strings.TrimSpace(addr); addr == "" {
				continue
			}
			_, p, err := net.SplitHostPort(addr)
			port, perr := strconv.Atoi(p)
			if err != nil || perr != nil {
				t.Fatalf("%s %q: %v %v", k, addr, err, perr)
			}
			out = append(out, endpoint{k, addr, port, true})
		}
	}
	for u := range strings.SplitSeq(env["LOCKBOX_WEBHOOK_URLS"], ",") {
		if u = strings.TrimSpace(u); u != "" {
			addURL("LOCKBOX_WEBHOOK_URLS", u)
		}
	}
	for _, k := range []string{"LOCKBOX_JWT_JWKS_URL", "LOCKBOX_OIDC_ISSUER"} {
		if v := env[k]; v != "" {
			addURL(k, v)
		}
	}
	if f := env["LOCKBOX_ISSUERS_FILE"]; f != "" {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		var file struct {
			Issuers []struct {
				Issuer  string         `yaml:"issuer"`
				JWKSURL string         `yaml:"jwks_url"`
				Console map[string]any `yaml:"console"`
			} `yaml:"issuers"`
		}
		if err := yaml.Unmarshal(b, &file); err != nil {
			t.Fatal(err)
		}
		for _, is := range file.Issuers {
			if is.JWKSURL != "" {
				addURL("jwks_url", is.JWKSURL)
			}
			// Sign-in reads the issuer's discovery document.
			if is.Console != nil && env["LOCKBOX_SERVE"] != "proxy" {
				addURL("issuer", is.Issuer)
			}
		}
	}
	return out
}

// policies holds what the tests read of a render's NetworkPolicies and of
// its pods' labels.
type policies struct {
	labels   map[string]map[string]string // Deployment → its pods' labels
	policies []netpol
}

type netpol struct {
	Name        string
	Selector    map[string]string
	PolicyTypes []string
	Egress      []egressRule
}

type egressRule struct {
	To    []peer `yaml:"to"`
	Ports []struct {
		Port     any    `yaml:"port"`
		EndPort  int    `yaml:"endPort"`
		Protocol string `yaml:"protocol"`
	} `yaml:"ports"`
}

func decodePolicies(t *testing.T, name string, docs []byte) policies {
	t.Helper()
	out := policies{labels: map[string]map[string]string{}}
	dec := yaml.NewDecoder(bytes.NewReader(docs))
	for {
		var o struct {
			Kind     string `yaml:"kind"`
			Metadata struct {
				Name string `yaml:"name"`
			} `yaml:"metadata"`
			Spec struct {
				PodSelector struct {
					MatchLabels map[string]string `yaml:"matchLabels"`
				} `yaml:"podSelector"`
				PolicyTypes []string     `yaml:"policyTypes"`
				Egress      []egressRule `yaml:"egress"`
				Template    struct {
					Metadata struct {
						Labels map[string]string `yaml:"labels"`
					} `yaml:"metadata"`
				} `yaml:"template"`
			} `yaml:"spec"`
		}
		if err := dec.Decode(&o); errors.Is(err, io.EOF) {
			return out
		} else if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		switch o.Kind {
		case "Deployment":
			out.labels[o.Metadata.Name] = o.Spec.Template.Metadata.Labels
		case "NetworkPolicy":
			out.policies = append(out.policies, netpol{o.Metadata.Name, o.Spec.PodSelector.MatchLabels, o.Spec.PolicyTypes, o.Spec.Egress})
		}
	}
}

type peer struct {
	IPBlock *struct {
		CIDR string `yaml:"cidr"`
	} `yaml:"ipBlock"`
	NamespaceSelector map[string]any `yaml:"namespaceSelector"`
	PodSelector       map[string]any `yaml:"podSelector"`
}

// egressAllowed says whether a pod with labels may open a TCP connection
// on port to an address outside the cluster, or with inCluster to a pod
// of another namespace: NetworkPolicies add up, and a pod no policy
// isolates for egress reaches everything.
func (p policies) egressAllowed(labels map[string]string, port int, inCluster bool) bool {
	isolated := false
	for _, np := range p.policies {
		selects := true
		for k, v := range np.Selector {
			selects = selects && labels[k] == v
		}
		if !selects || !slices.Contains(np.PolicyTypes, "Egress") {
			continue
		}
		isolated = true
		for _, r := range np.Egress {
			// Only an ipBlock (or no peer at all) reaches beyond the
			// cluster; a namespace or pod selector reaches pods.
			outside := len(r.To) == 0 || slices.ContainsFunc(r.To, func(p peer) bool {
				if inCluster {
					return p.NamespaceSelector != nil || p.PodSelector != nil
				}
				return p.IPBlock != nil
			})
			onPort := len(r.Ports) == 0
			for _, rp := range r.Ports {
				n, ok := rp.Port.(int)
				if (rp.Protocol == "" || rp.Protocol == "TCP") && ok && (n == port || (rp.EndPort != 0 && n <= port && port <= rp.EndPort)) {
					onPort = true
				}
			}
			if outside && onPort {
				return true
			}
		}
	}
	return !isolated
}

// TestHelmRefusesEndpointsItCannotAllow: a setting naming a server the
// chart can't derive a port for is refused at render time, with a message
// naming it, rather than rendered into a policy that would block it.
func TestHelmRefusesEndpointsItCannotAllow(t *testing.T) {
	kube := kubeVersion(t)
	dir := t.TempDir()
	for _, tc := range []struct{ name, values, want string }{
		{"webhook scheme", "controlPlane:\n  config:\n    LOCKBOX_WEBHOOK_URLS: https://hooks.example/a,ftp://hooks.example/b\n", "LOCKBOX_WEBHOOK_URLS"},
		{"smtp without a port", "controlPlane:\n  config:\n    LOCKBOX_SMTP_ADDR: smtp.example\n    LOCKBOX_SMTP_FROM: lockbox@provider.example\n", "LOCKBOX_SMTP_ADDR"},
		{"redis node without a port", "redis:\n  topology: cluster\n  cluster: {addrs: [redis-0.redis.svc:6379, redis-1.redis.svc]}\n", "redis.cluster.addrs"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			values := writeIn(t, dir, strings.ReplaceAll(tc.name, " ", "-")+".yaml", tc.values)
			cmd := toolCommand(t, "helm", "template", "lockbox", "../deploy/helm/lockbox", "--namespace", "lockbox", "--kube-version", kube, "-f", values)
			out, err := cmd.CombinedOutput()
			if err == nil || !strings.Contains(string(out), tc.want) || !strings.Contains(string(out), "networkPolicy") {
				t.Errorf("helm template: %v, want a failure naming %s and networkPolicy:\n%s", err, tc.want, out)
			}
		})
	}
}

// TestHelmNotesWarnOfBlockedIdentityProviders: with no
// identity.providerCIDRs, the chart's NetworkPolicies let no Lockbox pod
// reach an identity provider, yet a JWKS URL or sign-in needs one. The
// chart can't tell whether a policy of the cluster's own allows them
// (policies add up), so it renders, and the notes Helm prints after an
// install or upgrade say what is blocked and how to allow it.
func TestHelmNotesWarnOfBlockedIdentityProviders(t *testing.T) {
	kube := kubeVersion(t)
	dir := t.TempDir()
	// helm template leaves NOTES.txt out: a copy of the chart renders it
	// into a document of its own.
	chart := filepath.Join(dir, "lockbox")
	if err := os.CopyFS(chart, os.DirFS("helm/lockbox")); err != nil {
		t.Fatal(err)
	}
	writeIn(t, chart, "templates/notes-under-test.yaml", `notes: {{ include "lockbox/templates/NOTES.txt" . | toJson }}`+"\n")
	notes := func(values ...string) string {
		t.Helper()
		args := []string{"helm", "template", "lockbox", chart, "--namespace", "lockbox", "--kube-version", kube,
			"--show-only", "templates/notes-under-test.yaml"}
		for _, v := range values {
			args = append(args, "-f", v)
		}
		var doc struct{ Notes string }
		if err := yaml.Unmarshal(goTool(t, args...), &doc); err != nil || doc.Notes == "" {
			t.Fatalf("notes: %v", err)
		}
		return doc.Notes
	}
	jwksURL := writeIn(t, dir, "jwks-url.yaml", "config:\n  LOCKBOX_JWT_JWKS_URL: https://keys.provider.example/jwks.json\n")
	oidc := writeIn(t, dir, "oidc.yaml", "controlPlane:\n  config:\n"+
		"    LOCKBOX_OIDC_ISSUER: https://login.provider.example/\n"+
		"    LOCKBOX_OIDC_CLIENT_ID: lockbox-console\n"+
		"    LOCKBOX_OIDC_CLIENT_SECRET_FILE: /etc/lockbox/console-clients/provider\n"+
		"    LOCKBOX_CONSOLE_URL: https://lockbox.provider.example\n")
	issuers := writeIn(t, dir, "issuers.yaml", "identity:\n  issuers:\n"+
		"    - {name: provider, issuer: https://login.provider.example/, audience: lockbox, scope: provider, jwks_url: https://login.provider.example/keys}\n")
	allowed := writeIn(t, dir, "allowed.yaml", "identity:\n  providerCIDRs: [192.0.2.0/24]\n")
	noPolicy := writeIn(t, dir, "no-policy.yaml", "networkPolicy:\n  enabled: false\n")
	for _, tc := range []struct {
		name   string
		values []string
		warns  string // the blocked URL, or "" for no warning
	}{
		{"jwks file", nil, ""},
		{"jwks url", []string{jwksURL}, "https://keys.provider.example/jwks.json"},
		{"oidc sign-in", []string{oidc}, "https://login.provider.example/"},
		{"issuers", []string{issuers}, "https://login.provider.example/keys"},
		{"jwks url, provider CIDRs", []string{jwksURL, allowed}, ""},
		{"issuers, provider CIDRs", []string{issuers, allowed}, ""},
		{"jwks url, no NetworkPolicy", []string{jwksURL, noPolicy}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := notes(tc.values...)
			if strings.Contains(n, ", ,") {
				t.Errorf("the notes list an empty item:\n%s", n)
			}
			warned := strings.Contains(n, "identity.providerCIDRs")
			if tc.warns == "" && warned {
				t.Errorf("the notes warn of blocked identity providers, but nothing is blocked:\n%s", n)
			}
			if tc.warns != "" && (!warned || !strings.Contains(n, tc.warns)) {
				t.Errorf("the notes don't say that %s is blocked until identity.providerCIDRs allows it:\n%s", tc.warns, n)
			}
		})
	}
}

// TestServicePortsNameTheirProtocol: every Service port that leads to a
// Lockbox listener declares the protocol that listener serves, https
// where it serves TLS and http where it doesn't, by its appProtocol or
// by its name (the convention Istio and other meshes infer the protocol
// from: "https", "http-web"). A port named http in front of a listener
// serving TLS has the mesh parse the TLS handshake as HTTP, and every
// call through it fails; an undeclared one is left to the mesh's guess.
func TestServicePortsNameTheirProtocol(t *testing.T) {
	kube := kubeVersion(t)
	helm := func(release string, values ...string) []string {
		args := []string{"helm", "template", release, "../deploy/helm/lockbox", "--namespace", release, "--kube-version", kube}
		for _, v := range values {
			args = append(args, "-f", v)
		}
		return args
	}
	renders := map[string][]string{
		"helm default":                          helm("lockbox"),
		"helm helm/examples/control-plane.yaml": helm("control-plane", "../deploy/helm/examples/control-plane.yaml"),
		"helm helm/examples/exchange.yaml":      helm("exchange", "../deploy/helm/examples/exchange.yaml"),
		"kustomize base":                        {"kustomize", "build", "../deploy/kubernetes/base"},
		"kustomize examples/control-plane":      {"kustomize", "build", "../deploy/kubernetes/examples/control-plane"},
		"kustomize examples/exchange":           {"kustomize", "build", "../deploy/kubernetes/examples/exchange"},
	}
	for name, args := range renders {
		t.Run(name, func(t *testing.T) {
			docs := goTool(t, args...)
			objs := decodeObjects(t, name, docs)
			// The listener behind each container port of each Lockbox pod,
			// and whether it serves TLS.
			type listener struct {
				name string
				tls  bool
			}
			type pod struct {
				labels    map[string]string
				listeners map[string]listener // container port name or number → listener
			}
			var pods []pod
			labels := decodePolicies(t, name, docs).labels
			for _, o := range objs {
				spec := o.Spec.Template.Spec
				for _, c := range slices.Concat(spec.InitContainers, spec.Containers) {
					if c.Name != "lockbox" {
						continue
					}
					env := podEnv(t, c, objs, spec.Volumes)
					tls := map[string]bool{}
					if env["LOCKBOX_TLS_CERT_FILE"] != "" {
						for l := range strings.SplitSeq(cmpOr(env["LOCKBOX_TLS_LISTENERS"], "proxy,api,metrics"), ",") {
							tls[strings.TrimSpace(l)] = true
						}
					}
					p := pod{labels: labels[o.Metadata.Name], listeners: map[string]listener{}}
					for _, cp := range c.Ports {
						l, ok := strings.CutPrefix(cp.Name, "lockbox-")
						if !ok {
							t.Fatalf("%s: container port %q: not lockbox-<listener>", o.Metadata.Name, cp.Name)
						}
						p.listeners[cp.Name] = listener{l, tls[l]}
						p.listeners[strconv.Itoa(cp.ContainerPort)] = listener{l, tls[l]}
					}
					pods = append(pods, p)
				}
			}
			checked := 0
			for _, s := range decodeServices(t, name, docs) {
				for _, p := range pods {
					selects := len(s.Spec.Selector) > 0
					for k, v := range s.Spec.Selector {
						selects = selects && p.labels[k] == v
					}
					if !selects {
						continue
					}
					for _, port := range s.Spec.Ports {
						l, ok := p.listeners[port.TargetPort]
						if !ok {
							continue
						}
						checked++
						want := "http"
						if l.tls {
							want = "https"
						}
						if got := declaredProtocol(port.Name, port.AppProtocol); got != want {
							t.Errorf("Service %s: port %q (appProtocol %q) leads to the %s listener, which serves %s, but declares %q",
								s.Metadata.Name, port.Name, port.AppProtocol, l.name, want, got)
						}
					}
				}
			}
			if checked == 0 {
				t.Fatal("no Service port leads to a Lockbox listener")
			}
		})
	}
}

func cmpOr(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// declaredProtocol is the protocol a Service port declares: its
// appProtocol, or else the protocol its name starts with ("https",
// "http-web"), as Istio reads it; "" when it declares none.
func declaredProtocol(name, appProtocol string) string {
	if appProtocol != "" {
		return appProtocol
	}
	prefix, _, _ := strings.Cut(name, "-")
	switch prefix {
	case "http", "http2", "https", "grpc", "grpc-web", "tls", "tcp", "udp", "mongo", "mysql", "redis":
		return prefix
	}
	return ""
}

type service struct {
	Kind     string `yaml:"kind"`
	Metadata struct {
		Name string `yaml:"name"`
	} `yaml:"metadata"`
	Spec struct {
		Selector map[string]string `yaml:"selector"`
		Ports    []struct {
			Name        string `yaml:"name"`
			AppProtocol string `yaml:"appProtocol"`
			TargetPort  string `yaml:"targetPort"` // a number or a container port's name
		} `yaml:"ports"`
	} `yaml:"spec"`
}

func decodeServices(t *testing.T, name string, docs []byte) []service {
	t.Helper()
	var out []service
	dec := yaml.NewDecoder(bytes.NewReader(docs))
	for {
		// Only a Service's spec fits: other kinds' selectors are objects.
		var doc yaml.Node
		var kind struct {
			Kind string `yaml:"kind"`
		}
		if err := dec.Decode(&doc); errors.Is(err, io.EOF) {
			return out
		} else if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if err := doc.Decode(&kind); err != nil || kind.Kind != "Service" {
			continue
		}
		var s service
		if err := doc.Decode(&s); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		out = append(out, s)
	}
}
