package deploy_test

import (
	"bytes"
	"cmp"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"maps"
	"math/big"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/lockbox-oss/lockbox/config"
	"github.com/lockbox-oss/lockbox/internal/health"
)

// TestRenderedConfigStarts: every lockbox container the manifests render
// (each kustomization make deploy-check builds, the Helm chart with its
// default values and with each example) has a configuration "lockbox
// serve" starts with. The container's environment is resolved as the
// kubelet would (ConfigMaps by envFrom, then env), the files of its
// mounted ConfigMaps are written under a temporary root, as are stand-ins
// for the files of its Secrets that the configuration names, and
// config.LoadFor checks the result as the binary does at start-up.
//
// This catches what kubecheck can't: a setting the configuration requires
// (LOCKBOX_CONSOLE_URL beside an issuers file with console sections) left
// out, or a file named but not mounted in that pod.
func TestRenderedConfigStarts(t *testing.T) {
	renders := renderAll(t)
	if len(renders) == 0 {
		t.Fatal("nothing rendered")
	}
	containers := 0
	for name, docs := range renders {
		objs := decodeObjects(t, name, docs)
		for _, o := range objs {
			pod := o.Spec.Template.Spec
			for _, c := range slices.Concat(pod.InitContainers, pod.Containers) {
				if c.Name != "lockbox" {
					continue
				}
				containers++
				t.Run(name+"/"+o.Kind+"/"+o.Metadata.Name, func(t *testing.T) {
					env := podEnv(t, c, objs, pod.Volumes)
					if _, err := config.LoadFor(env, config.ModeServe); err != nil {
						t.Errorf("lockbox serve would not start:\n%v", err)
					}
				})
			}
		}
	}
	if containers < len(renders) {
		t.Errorf("%d lockbox containers in %d renders: some render has none", containers, len(renders))
	}
}

// TestReadinessProbesWaitForReadyz: the kubelet waits for /readyz to
// answer. Each readiness check (Redis's DEL and HELLO, two round trips)
// may take up to health.CheckTimeout and still pass; the kubelet's own
// timeout also spans the connection (and a TLS handshake, when the metrics
// port serves TLS). A probe that gives up at Kubernetes' default of one
// second, which is no more than CheckTimeout, counts a slow Redis that
// /readyz would call ready as a failure, and the pods leave their Service
// while they could serve. Any whole second above CheckTimeout also covers
// the grace /readyz gives a check past it, which is under a second.
func TestReadinessProbesWaitForReadyz(t *testing.T) {
	renders := renderAll(t)
	probes := 0
	for name, docs := range renders {
		for _, o := range decodeObjects(t, name, docs) {
			pod := o.Spec.Template.Spec
			for _, c := range slices.Concat(pod.InitContainers, pod.Containers) {
				if c.Name != "lockbox" {
					continue
				}
				p := c.ReadinessProbe
				if p == nil || p.HTTPGet == nil || p.HTTPGet.Path != "/readyz" {
					t.Errorf("%s: %s %s: no readiness probe on /readyz", name, o.Kind, o.Metadata.Name)
					continue
				}
				probes++
				timeout := time.Duration(cmp.Or(p.TimeoutSeconds, 1)) * time.Second // Kubernetes' default
				if timeout <= health.CheckTimeout {
					t.Errorf("%s: %s %s: the readiness probe gives up after %s, but /readyz may take %s (health.CheckTimeout) to find Redis ready: set timeoutSeconds above it",
						name, o.Kind, o.Metadata.Name, timeout, health.CheckTimeout)
				}
			}
		}
	}
	if probes < len(renders) {
		t.Errorf("%d readiness probes in %d renders: some render has none", probes, len(renders))
	}
}

// TestStopOutlastsEndpoints: a control plane pod told to stop serves on,
// not ready, for LOCKBOX_SHUTDOWN_DELAY, since Kubernetes takes it out of
// its Service's endpoints only some time after SIGTERM and kube-proxy and
// ingress controllers send it new connections until then; refused, they
// failed calls on every rolling update. The chart targets Kubernetes 1.29,
// which has no preStop sleep, and the distroless image has no shell for
// an exec one: the delay is Lockbox's. The pod's grace period covers the
// delay and the drain (LOCKBOX_SHUTDOWN_TIMEOUT) after it, or the kubelet
// kills calls in flight.
//
// A native sidecar has none: it gets SIGTERM only once the tenant service
// beside it has exited, long after the pod left its endpoints, and a delay
// would only forward calls to a service that is gone. Its pod's grace
// period covers the service's stop and the proxy's drain.
func TestStopOutlastsEndpoints(t *testing.T) {
	renders := renderAll(t)
	pods := 0
	for name, docs := range renders {
		objs := decodeObjects(t, name, docs)
		for _, o := range objs {
			pod := o.Spec.Template.Spec
			for _, c := range slices.Concat(pod.InitContainers, pod.Containers) {
				if c.Name != "lockbox" {
					continue
				}
				pods++
				where := name + ": " + o.Kind + " " + o.Metadata.Name
				cfg, err := config.LoadFor(podEnv(t, c, objs, pod.Volumes), config.ModeServe)
				if err != nil {
					t.Errorf("%s: %v", where, err) // TestRenderedConfigStarts tells more
					continue
				}
				sidecar := slices.ContainsFunc(pod.InitContainers, func(ic container) bool { return ic.Name == c.Name })
				switch {
				case sidecar && cfg.ShutdownDelay != 0:
					t.Errorf("%s: the native sidecar has LOCKBOX_SHUTDOWN_DELAY=%s, want none: it stops only after the tenant service", where, cfg.ShutdownDelay)
				case !sidecar && cfg.ShutdownDelay < 5*time.Second:
					t.Errorf("%s: LOCKBOX_SHUTDOWN_DELAY is %s, want at least 5s: new connections still come in a few seconds after SIGTERM", where, cfg.ShutdownDelay)
				}
				grace := 30 * time.Second // Kubernetes' default
				if g := pod.TerminationGracePeriodSeconds; g != nil {
					grace = time.Duration(*g) * time.Second
				}
				if stop := cfg.ShutdownDelay + cfg.ShutdownTimeout; grace <= stop {
					t.Errorf("%s: terminationGracePeriodSeconds is %s, want more than LOCKBOX_SHUTDOWN_DELAY + LOCKBOX_SHUTDOWN_TIMEOUT (%s)", where, grace, stop)
				}
			}
		}
	}
	if pods < len(renders) {
		t.Errorf("%d lockbox containers in %d renders: some render has none", pods, len(renders))
	}
}

// renderAll renders the manifests as make deploy-check does, with the
// tools module's kustomize and helm: every kustomization of kind
// Kustomization, and the chart with its default values and each example's.
func renderAll(t *testing.T) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	var dirs []string
	err := filepath.WalkDir("kubernetes", func(p string, d os.DirEntry, err error) error {
		if err != nil || d.Name() != "kustomization.yaml" {
			return err
		}
		if regexp.MustCompile(`(?m)^kind: Kustomization$`).Match(readFile(t, p)) {
			dirs = append(dirs, filepath.Dir(p))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, dir := range dirs {
		out["kustomize "+dir] = goTool(t, "kustomize", "build", "../deploy/"+dir)
	}
	// The Kubernetes version deploy-check renders for.
	kube := kubeVersion(t)
	out["helm default"] = goTool(t, "helm", "template", "lockbox", "../deploy/helm/lockbox", "--namespace", "lockbox", "--kube-version", kube)
	examples, _ := filepath.Glob("helm/examples/*.yaml")
	if len(examples) == 0 {
		t.Fatal("no helm/examples/*.yaml")
	}
	for _, values := range examples {
		name := strings.TrimSuffix(filepath.Base(values), ".yaml")
		out["helm "+values] = goTool(t, "helm", "template", name, "../deploy/helm/lockbox", "--namespace", name,
			"--kube-version", kube, "-f", "../deploy/"+values)
	}
	return out
}

// goTool runs one of the tools module's tools (go tool NAME) in ../tools.
func goTool(t *testing.T, args ...string) []byte {
	t.Helper()
	cmd := toolCommand(t, args[0], args[1:]...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("(cd tools && go tool %s): %v\n%s", strings.Join(args, " "), err, stderr.Bytes())
	}
	return out
}

// toolPaths holds each tool's binary, by name, once found.
var toolPaths sync.Map

// toolCommand returns the command running the tools module's tool name
// with args in ../tools: the binary "go tool NAME" runs, found once. Each
// "go tool helm" loads the tools module's whole package graph to find its
// build, about a second of CPU, and these tests render dozens of times.
func toolCommand(t testing.TB, name string, args ...string) *exec.Cmd {
	t.Helper()
	path, ok := toolPaths.Load(name)
	if !ok {
		// -n builds the tool if need be and prints the command it
		// would run: the binary's path in the build cache.
		find := exec.Command("go", "tool", "-n", name)
		find.Dir = "../tools"
		var stderr bytes.Buffer
		find.Stderr = &stderr
		out, err := find.Output()
		if err != nil {
			t.Fatalf("(cd tools && go tool -n %s): %v\n%s", name, err, stderr.Bytes())
		}
		path, _ = toolPaths.LoadOrStore(name, strings.TrimSpace(string(out)))
	}
	cmd := exec.Command(path.(string), args...)
	cmd.Dir = "../tools"
	return cmd
}

// object holds what the test reads of a rendered object.
type object struct {
	Kind     string `yaml:"kind"`
	Metadata struct {
		Name string `yaml:"name"`
	} `yaml:"metadata"`
	Data map[string]string `yaml:"data"`
	Spec struct {
		Template struct {
			Spec podSpec `yaml:"spec"`
		} `yaml:"template"`
	} `yaml:"spec"`
}

type podSpec struct {
	TerminationGracePeriodSeconds *int `yaml:"terminationGracePeriodSeconds"`

	InitContainers []container `yaml:"initContainers"`
	Containers     []container `yaml:"containers"`
	Volumes        []volume    `yaml:"volumes"`
}

type container struct {
	Name    string `yaml:"name"`
	EnvFrom []struct {
		Prefix       string                 `yaml:"prefix"`
		ConfigMapRef *struct{ Name string } `yaml:"configMapRef"`
		SecretRef    *struct{ Name string } `yaml:"secretRef"`
	} `yaml:"envFrom"`
	Env []struct {
		Name      string `yaml:"name"`
		Value     string `yaml:"value"`
		ValueFrom *struct {
			FieldRef *struct {
				FieldPath string `yaml:"fieldPath"`
			} `yaml:"fieldRef"`
			SecretKeyRef    *keyRef `yaml:"secretKeyRef"`
			ConfigMapKeyRef *keyRef `yaml:"configMapKeyRef"`
		} `yaml:"valueFrom"`
	} `yaml:"env"`
	VolumeMounts []struct {
		Name      string `yaml:"name"`
		MountPath string `yaml:"mountPath"`
		SubPath   string `yaml:"subPath"`
	} `yaml:"volumeMounts"`
	ReadinessProbe *probe `yaml:"readinessProbe"`
	Ports          []struct {
		Name          string `yaml:"name"`
		ContainerPort int    `yaml:"containerPort"`
	} `yaml:"ports"`
}

type probe struct {
	HTTPGet *struct {
		Path string `yaml:"path"`
	} `yaml:"httpGet"`
	TimeoutSeconds int `yaml:"timeoutSeconds"`
}

type keyRef struct {
	Name string `yaml:"name"`
	Key  string `yaml:"key"`
}

type keyPath struct {
	Key  string `yaml:"key"`
	Path string `yaml:"path"`
}

type volume struct {
	Name      string     `yaml:"name"`
	ConfigMap *cmSource  `yaml:"configMap"`
	Secret    *secSource `yaml:"secret"`
	Projected *struct {
		Sources []struct {
			ConfigMap *cmSource  `yaml:"configMap"`
			Secret    *secSource `yaml:"secret"`
		} `yaml:"sources"`
	} `yaml:"projected"`
	EmptyDir any `yaml:"emptyDir"`
}

type cmSource struct {
	Name  string    `yaml:"name"`
	Items []keyPath `yaml:"items"`
}

type secSource struct {
	SecretName string    `yaml:"secretName"` // in a volume
	Name       string    `yaml:"name"`       // in a projection
	Items      []keyPath `yaml:"items"`
}

func decodeObjects(t *testing.T, name string, docs []byte) []object {
	t.Helper()
	var out []object
	dec := yaml.NewDecoder(bytes.NewReader(docs))
	for {
		var o object
		if err := dec.Decode(&o); errors.Is(err, io.EOF) {
			return out
		} else if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		out = append(out, o)
	}
}

// secretValues stand in for the values of Secrets variables are set from
// (secretKeyRef), which no manifest holds. A new one fails the test until
// it is listed here.
var secretValues = map[string]string{
	"LOCKBOX_REDIS_URL": "redis://redis.lockbox.svc:6379/0",
}

// podEnv resolves c's environment and writes the files it names under a
// temporary root, rewriting every path under a mount to point there.
func podEnv(t *testing.T, c container, objs []object, volumes []volume) map[string]string {
	t.Helper()
	configMaps := map[string]map[string]string{}
	for _, o := range objs {
		if o.Kind == "ConfigMap" {
			configMaps[o.Metadata.Name] = o.Data
		}
	}
	configMap := func(name string) map[string]string {
		t.Helper()
		data, ok := configMaps[name]
		if !ok {
			t.Fatalf("ConfigMap %s is not in the render", name)
		}
		return data
	}

	env := map[string]string{}
	for _, ef := range c.EnvFrom {
		if ef.ConfigMapRef == nil {
			t.Fatalf("envFrom %+v: only configMapRef is modelled", ef)
		}
		for k, v := range configMap(ef.ConfigMapRef.Name) {
			env[ef.Prefix+k] = v
		}
	}
	for _, e := range c.Env {
		switch vf := e.ValueFrom; {
		case vf == nil:
			env[e.Name] = e.Value
		case vf.FieldRef != nil:
			env[e.Name] = "lockbox-0" // metadata.name, the only field used
		case vf.ConfigMapKeyRef != nil:
			env[e.Name] = configMap(vf.ConfigMapKeyRef.Name)[vf.ConfigMapKeyRef.Key]
		case vf.SecretKeyRef != nil:
			v, ok := secretValues[e.Name]
			if !ok {
				t.Fatalf("%s comes from Secret %s: add a stand-in value to secretValues", e.Name, vf.SecretKeyRef.Name)
			}
			env[e.Name] = v
		}
	}

	// Each mount's files: ConfigMap files with their contents; a Secret's
	// items, or (with no items) whichever of its files is named.
	type mount struct {
		path  string
		files map[string]string // relative path → content, from ConfigMaps
		items []string          // a Secret's listed files
		open  bool              // a Secret whose files are not listed
	}
	var mounts []mount
	for _, vm := range c.VolumeMounts {
		if vm.SubPath != "" {
			t.Fatalf("mount %s uses subPath, which this test does not model", vm.Name)
		}
		i := slices.IndexFunc(volumes, func(v volume) bool { return v.Name == vm.Name })
		if i < 0 {
			t.Fatalf("mount %s: no such volume", vm.Name)
		}
		m := mount{path: vm.MountPath, files: map[string]string{}}
		addCM := func(s *cmSource) {
			data := configMap(s.Name)
			if len(s.Items) == 0 {
				for k, v := range data {
					m.files[k] = v
				}
			}
			for _, it := range s.Items {
				m.files[it.Path] = data[it.Key]
			}
		}
		addSecret := func(s *secSource) {
			if len(s.Items) == 0 {
				m.open = true
			}
			for _, it := range s.Items {
				m.items = append(m.items, it.Path)
			}
		}
		switch v := volumes[i]; {
		case v.ConfigMap != nil:
			addCM(v.ConfigMap)
		case v.Secret != nil:
			addSecret(v.Secret)
		case v.Projected != nil:
			for _, s := range v.Projected.Sources {
				if s.ConfigMap != nil {
					addCM(s.ConfigMap)
				}
				if s.Secret != nil {
					addSecret(s.Secret)
				}
			}
		case v.EmptyDir != nil:
		default:
			t.Fatalf("volume %s: only configMap, secret, projected and emptyDir are modelled", v.Name)
		}
		mounts = append(mounts, m)
	}
	under := func(p string) int {
		best := -1
		for i, m := range mounts {
			if (p == m.path || strings.HasPrefix(p, m.path+"/")) && (best < 0 || len(m.path) > len(mounts[best].path)) {
				best = i
			}
		}
		return best
	}

	root := t.TempDir()
	absPath := regexp.MustCompile(`(/[A-Za-z0-9._-]+)+`)
	rewrite := func(s string) string {
		return absPath.ReplaceAllStringFunc(s, func(p string) string {
			if under(p) < 0 {
				return p
			}
			return filepath.Join(root, p)
		})
	}
	write := func(p, content string) {
		t.Helper()
		p = filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	// The paths the configuration names: in the variables, and in the
	// mounted ConfigMap files (the issuers file names key and secret files).
	var named []string
	for _, v := range env {
		named = append(named, absPath.FindAllString(v, -1)...)
	}
	for _, m := range mounts {
		for rel, content := range m.files {
			write(filepath.Join(m.path, rel), rewrite(content))
			named = append(named, absPath.FindAllString(content, -1)...)
		}
		for _, rel := range m.items {
			write(filepath.Join(m.path, rel), standIn(t, rel))
		}
	}
	for _, p := range named {
		if i := under(p); i >= 0 && mounts[i].open {
			write(p, standIn(t, p))
		}
	}
	for k, v := range env {
		env[k] = rewrite(v)
	}
	return env
}

var testPair struct{ cert, key string }

// standIn is the content of a Secret's file: a PEM certificate or key
// where the name says so (the Redis TLS settings are parsed at start-up),
// otherwise a few bytes.
func standIn(t *testing.T, name string) string {
	t.Helper()
	if testPair.cert == "" {
		k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "lockbox"},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true,
			KeyUsage: x509.KeyUsageCertSign | x509.KeyUsageDigitalSignature}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
		if err != nil {
			t.Fatal(err)
		}
		kder, err := x509.MarshalPKCS8PrivateKey(k)
		if err != nil {
			t.Fatal(err)
		}
		testPair.cert = string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}))
		testPair.key = string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: kder}))
	}
	switch ext := filepath.Ext(name); ext {
	case ".crt":
		return testPair.cert
	case ".key":
		return testPair.key
	}
	return "stand-in for a secret\n"
}

// TestHelmPolicyChangeRollsNoPod: a policy change through the chart
// (policy.files, policy.activities) reaches the pods as the kubelet swaps
// the ConfigMap's files, and Lockbox reloads it in place. It must not
// change the pod templates: that would restart every control-plane pod and
// every tenant service with a sidecar for a change that needs no restart.
// A settings change, read from the environment at start-up, must.
func TestHelmPolicyChangeRollsNoPod(t *testing.T) {
	kube := kubeVersion(t)
	dir := t.TempDir()
	write := func(name, content string) string { return writeIn(t, dir, name, content) }
	policy := write("policy.yaml", "policy:\n"+
		"  files:\n    authz.rego: |\n      package lockbox.authz\n      default decision := {\"allow\": false, \"reasons\": [\"changed\"]}\n"+
		"  activities: |\n    {\"services\": {}}\n")
	settings := write("settings.yaml", "config:\n  LOCKBOX_LOG_LEVEL: debug\n")

	type rendered struct {
		pods     map[string]map[string]string // Deployment → its pod template's annotations
		policies map[string]map[string]string // ConfigMap *-policy, *-activities → data
	}
	render := func(release string, values ...string) rendered {
		t.Helper()
		args := []string{"helm", "template", release, "../deploy/helm/lockbox", "--namespace", release, "--kube-version", kube}
		for _, v := range values {
			args = append(args, "-f", v)
		}
		r := rendered{pods: map[string]map[string]string{}, policies: map[string]map[string]string{}}
		dec := yaml.NewDecoder(bytes.NewReader(goTool(t, args...)))
		for {
			var o struct {
				Kind     string
				Metadata struct{ Name string }
				Data     map[string]string
				Spec     struct {
					Template struct {
						Metadata struct{ Annotations map[string]string }
					}
				}
			}
			if err := dec.Decode(&o); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				t.Fatal(err)
			}
			switch {
			case o.Kind == "Deployment":
				r.pods[o.Metadata.Name] = o.Spec.Template.Metadata.Annotations
			case o.Kind == "ConfigMap" && (strings.HasSuffix(o.Metadata.Name, "-policy") || strings.HasSuffix(o.Metadata.Name, "-activities")):
				r.policies[o.Metadata.Name] = o.Data
			}
		}
		if len(r.pods) == 0 || len(r.policies) != 2 {
			t.Fatalf("%s: %d Deployments, policy ConfigMaps %v", release, len(r.pods), slices.Collect(maps.Keys(r.policies)))
		}
		return r
	}
	for _, release := range []struct{ name, values string }{
		{"lockbox", ""}, {"control-plane", "helm/examples/control-plane.yaml"}, {"exchange", "helm/examples/exchange.yaml"},
	} {
		var base []string
		if release.values != "" {
			base = []string{"../deploy/" + release.values}
		}
		before := render(release.name, base...)
		changed := render(release.name, append(base, policy)...)
		if reflect.DeepEqual(before.policies, changed.policies) {
			t.Fatalf("%s: the policy values changed no policy ConfigMap", release.name)
		}
		if !reflect.DeepEqual(before.pods, changed.pods) {
			t.Errorf("%s: a policy change alters the pod templates, so every pod restarts for it:\n%v\n%v", release.name, before.pods, changed.pods)
		}
		if reconfigured := render(release.name, append(base, settings)...); reflect.DeepEqual(before.pods, reconfigured.pods) {
			t.Errorf("%s: a settings change leaves the pod templates alone, so no pod reads it", release.name)
		}
	}
}

// TestWebhooksStart: webhooks are a setting of the control plane's own
// (the Helm chart's controlPlane.config, with networkPolicy.webhookCIDRs
// for their egress; kustomize's ConfigMap lockbox-control-plane). A control
// plane given LOCKBOX_WEBHOOK_URLS must start, which takes the key that
// signs the deliveries (LOCKBOX_WEBHOOK_SECRET_FILE) from a mounted Secret,
// as the SMTP password is.
func TestWebhooksStart(t *testing.T) {
	kube := kubeVersion(t)
	dir := t.TempDir()
	write := func(name, content string) string { return writeIn(t, dir, name, content) }
	const url = "https://hooks.provider.example/lockbox"
	values := write("webhooks.yaml", "controlPlane:\n  config:\n    LOCKBOX_WEBHOOK_URLS: "+url+"\n")
	// The kustomize example with the two settings base/control-plane.env
	// shows for webhooks.
	example, err := filepath.Abs("kubernetes/examples/control-plane")
	if err != nil {
		t.Fatal(err)
	}
	var settings []string
	for _, l := range strings.Split(string(readFile(t, "kubernetes/base/control-plane.env")), "\n") {
		if v, ok := strings.CutPrefix(l, "# LOCKBOX_WEBHOOK_"); ok {
			settings = append(settings, "      - LOCKBOX_WEBHOOK_"+v+"\n")
		}
	}
	helm := []string{"helm", "template", "lockbox", "../deploy/helm/lockbox", "--namespace", "lockbox", "--kube-version", kube}
	renders := map[string][]string{
		"helm default":                          append(slices.Clone(helm), "-f", values),
		"helm helm/examples/control-plane.yaml": append(slices.Clone(helm), "-f", "../deploy/helm/examples/control-plane.yaml", "-f", values),
	}
	if len(settings) != 2 {
		t.Errorf("kubernetes/base/control-plane.env shows %d LOCKBOX_WEBHOOK_ settings, want the URLs and the secret file", len(settings))
	} else {
		// kustomize takes a relative path to a base only.
		rel, err := filepath.Rel(filepath.Join(dir, "overlay"), example)
		if err != nil {
			t.Fatal(err)
		}
		overlay := filepath.Dir(write("overlay/kustomization.yaml", "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"+
			"resources:\n  - "+filepath.ToSlash(rel)+"\n"+
			"configMapGenerator:\n  - name: lockbox-control-plane\n    behavior: merge\n    literals:\n"+strings.Join(settings, "")))
		renders["kustomize examples/control-plane"] = []string{"kustomize", "build", overlay}
	}
	for name, args := range renders {
		objs := decodeObjects(t, name, goTool(t, args...))
		found := false
		for _, o := range objs {
			pod := o.Spec.Template.Spec
			for _, c := range pod.Containers {
				if o.Kind != "Deployment" || c.Name != "lockbox" {
					continue
				}
				found = true
				env := podEnv(t, c, objs, pod.Volumes)
				if env["LOCKBOX_WEBHOOK_URLS"] != url {
					t.Fatalf("%s: LOCKBOX_WEBHOOK_URLS=%q did not reach the container", name, env["LOCKBOX_WEBHOOK_URLS"])
				}
				if _, err := config.LoadFor(env, config.ModeServe); err != nil {
					t.Errorf("%s: with webhooks, lockbox serve would not start:\n%v", name, err)
				}
			}
		}
		if !found {
			t.Fatalf("%s: no control plane rendered", name)
		}
	}
}

// TestHelmTrustedProxies: the chart's trustedProxies reach every Lockbox
// of the release as LOCKBOX_TRUSTED_PROXIES (the control plane's API and
// the sidecars' proxy both see callers through the load balancers and
// ingress controllers listed), and Lockbox starts with them. Without them
// the variable is not set at all: no header is read. The chart refuses
// the variable in config, which would bypass the list.
func TestHelmTrustedProxies(t *testing.T) {
	kube := kubeVersion(t)
	dir := t.TempDir()
	write := func(name, content string) string { return writeIn(t, dir, name, content) }
	trusted := write("trusted.yaml", "trustedProxies: [10.0.0.0/8, \"2001:db8::/32\", 192.0.2.10]\n")
	inConfig := write("in-config.yaml", "config:\n  LOCKBOX_TRUSTED_PROXIES: 10.0.0.0/8\n")
	helm := func(release string, values ...string) []string {
		args := []string{"helm", "template", release, "../deploy/helm/lockbox", "--namespace", release, "--kube-version", kube}
		for _, v := range values {
			args = append(args, "-f", v)
		}
		return args
	}
	for _, tc := range []struct {
		name   string
		values []string
		want   string
	}{
		{"control plane, default", nil, ""},
		{"sidecar, default", []string{"../deploy/helm/examples/exchange.yaml"}, ""},
		{"control plane", []string{trusted}, "10.0.0.0/8,2001:db8::/32,192.0.2.10"},
		{"control plane example", []string{"../deploy/helm/examples/control-plane.yaml", trusted}, "10.0.0.0/8,2001:db8::/32,192.0.2.10"},
		{"sidecar", []string{"../deploy/helm/examples/exchange.yaml", trusted}, "10.0.0.0/8,2001:db8::/32,192.0.2.10"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			objs := decodeObjects(t, tc.name, goTool(t, helm("lockbox", tc.values...)...))
			found := 0
			for _, o := range objs {
				pod := o.Spec.Template.Spec
				for _, c := range slices.Concat(pod.InitContainers, pod.Containers) {
					if c.Name != "lockbox" {
						continue
					}
					found++
					env := podEnv(t, c, objs, pod.Volumes)
					if got, set := env["LOCKBOX_TRUSTED_PROXIES"]; got != tc.want || set != (tc.want != "") {
						t.Errorf("%s: LOCKBOX_TRUSTED_PROXIES = %q (set: %v), want %q", o.Metadata.Name, got, set, tc.want)
					}
					if _, err := config.LoadFor(env, config.ModeServe); err != nil {
						t.Errorf("%s: lockbox serve would not start:\n%v", o.Metadata.Name, err)
					}
				}
			}
			if found == 0 {
				t.Fatal("no lockbox container rendered")
			}
		})
	}
	hargs := helm("lockbox", inConfig)
	cmd := toolCommand(t, hargs[0], hargs[1:]...)
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "trustedProxies") {
		t.Errorf("config.LOCKBOX_TRUSTED_PROXIES: helm template %v, want a failure naming trustedProxies:\n%s", err, out)
	}
}

// TestHelmNumericSettings: a setting written in values as a YAML number,
// as one writes a count of bytes, reaches Lockbox as that number. Helm
// reads the numbers of a values file as floats, whose default format
// writes a million or more with an exponent ("1.34217728e+08"), which no
// integer setting parses: every pod of the release would fail to start.
func TestHelmNumericSettings(t *testing.T) {
	kube := kubeVersion(t)
	dir := t.TempDir()
	values := writeIn(t, dir, "numbers.yaml", "config:\n"+
		"  LOCKBOX_PROXY_BODY_BUFFER_BYTES: 134217728\n"+
		"  LOCKBOX_AUDIT_REPLICAS: 1\n")
	for _, release := range []struct{ name, values string }{
		{"lockbox", ""}, {"exchange", "helm/examples/exchange.yaml"},
	} {
		args := []string{"helm", "template", release.name, "../deploy/helm/lockbox", "--namespace", release.name, "--kube-version", kube}
		if release.values != "" {
			args = append(args, "-f", "../deploy/"+release.values)
		}
		objs := decodeObjects(t, release.name, goTool(t, append(args, "-f", values)...))
		found := 0
		for _, o := range objs {
			pod := o.Spec.Template.Spec
			for _, c := range slices.Concat(pod.InitContainers, pod.Containers) {
				if c.Name != "lockbox" {
					continue
				}
				found++
				env := podEnv(t, c, objs, pod.Volumes)
				cfg, err := config.LoadFor(env, config.ModeServe)
				if err != nil {
					t.Errorf("%s: %s: lockbox serve would not start:\n%v", release.name, o.Metadata.Name, err)
					continue
				}
				if cfg.ProxyBodyBufferBytes != 134217728 || cfg.AuditReplicas != 1 {
					t.Errorf("%s: %s: LOCKBOX_PROXY_BODY_BUFFER_BYTES=%q, LOCKBOX_AUDIT_REPLICAS=%q read as %d, %d; want 134217728, 1",
						release.name, o.Metadata.Name, env["LOCKBOX_PROXY_BODY_BUFFER_BYTES"], env["LOCKBOX_AUDIT_REPLICAS"], cfg.ProxyBodyBufferBytes, cfg.AuditReplicas)
				}
			}
		}
		if found == 0 {
			t.Fatalf("%s: no lockbox container rendered", release.name)
		}
	}
}

// TestHelmHMACSecretFile: the chart takes LOCKBOX_JWT_HMAC_SECRET_FILE in
// config in place of the JWKS file, so the file it names, a key of
// secrets.keys, must be mounted in every Lockbox of the release, control
// plane and sidecar; otherwise "lockbox serve" finds no file and no pod
// starts.
func TestHelmHMACSecretFile(t *testing.T) {
	kube := kubeVersion(t)
	dir := t.TempDir()
	const file = "/etc/lockbox/keys/hmac-secret"
	values := writeIn(t, dir, "hmac.yaml", "config:\n  LOCKBOX_JWT_HMAC_SECRET_FILE: "+file+"\n")
	sidecar := writeIn(t, dir, "sidecar.yaml", "controlPlane: {enabled: false}\n"+
		"sidecar:\n  enabled: true\n  service: exchange\n  workload: {name: exchange, image: registry.tenant.example/exchange:1.0}\n")
	for _, release := range []struct{ name, values string }{{"lockbox", ""}, {"exchange", sidecar}} {
		args := []string{"helm", "template", release.name, "../deploy/helm/lockbox", "--namespace", release.name, "--kube-version", kube}
		if release.values != "" {
			args = append(args, "-f", release.values)
		}
		objs := decodeObjects(t, release.name, goTool(t, append(args, "-f", values)...))
		found := 0
		for _, o := range objs {
			pod := o.Spec.Template.Spec
			for _, c := range slices.Concat(pod.InitContainers, pod.Containers) {
				if c.Name != "lockbox" {
					continue
				}
				found++
				env := podEnv(t, c, objs, pod.Volumes)
				cfg, err := config.LoadFor(env, config.ModeServe)
				if err != nil {
					t.Errorf("%s: %s: lockbox serve would not start:\n%v", release.name, o.Metadata.Name, err)
				} else if cfg.JWTHMACSecretFile == "" {
					t.Errorf("%s: %s: LOCKBOX_JWT_HMAC_SECRET_FILE did not reach the container", release.name, o.Metadata.Name)
				}
			}
		}
		if found == 0 {
			t.Fatalf("%s: no lockbox container rendered", release.name)
		}
	}
}

// TestHelmOIDCSignIn: the chart sends the admin center's single-issuer
// sign-in (LOCKBOX_OIDC_*) to controlPlane.config, and the client secret
// LOCKBOX_OIDC_CLIENT_SECRET_FILE names is a key of secrets.consoleClients,
// as the issuers' client_secret_file is: the control plane must mount it
// then too, or it never starts.
func TestHelmOIDCSignIn(t *testing.T) {
	kube := kubeVersion(t)
	dir := t.TempDir()
	values := writeIn(t, dir, "oidc.yaml", "controlPlane:\n  config:\n"+
		"    LOCKBOX_OIDC_ISSUER: https://login.provider.example/\n"+
		"    LOCKBOX_OIDC_CLIENT_ID: lockbox-console\n"+
		"    LOCKBOX_OIDC_CLIENT_SECRET_FILE: /etc/lockbox/console-clients/provider\n"+
		"    LOCKBOX_CONSOLE_URL: https://lockbox.provider.example\n")
	objs := decodeObjects(t, "oidc", goTool(t, "helm", "template", "lockbox", "../deploy/helm/lockbox", "--namespace", "lockbox",
		"--kube-version", kube, "-f", values))
	found := 0
	for _, o := range objs {
		pod := o.Spec.Template.Spec
		for _, c := range pod.Containers {
			if o.Kind != "Deployment" || c.Name != "lockbox" {
				continue
			}
			found++
			cfg, err := config.LoadFor(podEnv(t, c, objs, pod.Volumes), config.ModeServe)
			if err != nil {
				t.Errorf("%s: with OIDC sign-in, lockbox serve would not start:\n%v", o.Metadata.Name, err)
			} else if cfg.OIDCIssuer == "" || cfg.OIDCClientSecret.Value() == "" {
				t.Errorf("%s: the OIDC settings did not reach the container", o.Metadata.Name)
			}
		}
	}
	if found == 0 {
		t.Fatal("no control plane rendered")
	}
}

// kubeVersion is the Kubernetes version the Makefile renders for.
func kubeVersion(t *testing.T) string {
	t.Helper()
	m := regexp.MustCompile(`(?m)^KUBE_VERSION \?= (\S+)$`).FindSubmatch(readFile(t, "../Makefile"))
	if m == nil {
		t.Fatal("no KUBE_VERSION ?= in the Makefile")
	}
	return string(m[1])
}

// writeIn writes content to name (a path under dir) and returns its path.
func writeIn(t *testing.T, dir, name, content string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

// TestHelmDisruptionBudgetAllowsADrain: the control plane's
// PodDisruptionBudget lets at least one of controlPlane.replicas be
// evicted. One that keeps them all (one replica beside the default
// minAvailable 1, or 100%) renders and installs without a word, and every
// "kubectl drain" of their nodes, cluster upgrades included, then waits on
// it forever; the chart refuses it instead, naming both values.
func TestHelmDisruptionBudgetAllowsADrain(t *testing.T) {
	kube := kubeVersion(t)
	for _, tc := range []struct {
		name string
		set  []string
		want string // "" renders
	}{
		{"one replica", []string{"controlPlane.replicas=1"}, "controlPlane.podDisruptionBudget.minAvailable 1 keeps all 1 of controlPlane.replicas"},
		{"every replica", []string{"controlPlane.replicas=3", "controlPlane.podDisruptionBudget.minAvailable=3"}, "controlPlane.podDisruptionBudget.minAvailable 3 keeps all 3"},
		{"every replica by percentage", []string{"controlPlane.podDisruptionBudget.minAvailable=100%"}, "controlPlane.podDisruptionBudget.minAvailable 100% keeps all 2"},
		{"a percentage rounded up to all", []string{"controlPlane.replicas=3", "controlPlane.podDisruptionBudget.minAvailable=70%"}, "minAvailable 70% keeps all 3"},
		{"not a number", []string{"controlPlane.podDisruptionBudget.minAvailable=most"}, `controlPlane.podDisruptionBudget.minAvailable "most"`},
		{"one replica without a budget to keep", []string{"controlPlane.replicas=1", "controlPlane.podDisruptionBudget.minAvailable=0"}, ""},
		{"one of three may go", []string{"controlPlane.replicas=3", "controlPlane.podDisruptionBudget.minAvailable=2"}, ""},
		{"half", []string{"controlPlane.podDisruptionBudget.minAvailable=50%"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := []string{"template", "lockbox", "../deploy/helm/lockbox", "--namespace", "lockbox", "--kube-version", kube}
			for _, s := range tc.set {
				args = append(args, "--set", s)
			}
			cmd := toolCommand(t, "helm", args...)
			out, err := cmd.CombinedOutput()
			switch {
			case tc.want == "" && err != nil:
				t.Errorf("helm template: %v, want it to render:\n%s", err, out)
			case tc.want == "" && !strings.Contains(string(out), "kind: PodDisruptionBudget"):
				t.Errorf("helm template rendered no PodDisruptionBudget:\n%s", out)
			case tc.want != "" && (err == nil || !strings.Contains(string(out), tc.want)):
				t.Errorf("helm template: %v, want a failure containing %q:\n%s", err, tc.want, out)
			}
		})
	}
}

// TestHelmSidecarDisruptionBudget: the tenant data service the chart
// deploys with its sidecar (helm/examples/exchange.yaml) had no
// PodDisruptionBudget, so a node drain could evict all its replicas at
// once and the tenant's service, behind its proxy, was gone until they
// rescheduled. With more than one replica the chart renders one that
// selects exactly the workload's pods and, as the control plane's, lets
// at least one of them be evicted (it refuses one that keeps them all,
// naming both values); with one replica it renders none, since any budget
// for a single pod either blocks every drain or promises nothing.
func TestHelmSidecarDisruptionBudget(t *testing.T) {
	kube := kubeVersion(t)
	type budget struct {
		Kind     string `yaml:"kind"`
		Metadata struct {
			Name string `yaml:"name"`
		} `yaml:"metadata"`
		Spec struct {
			MinAvailable any `yaml:"minAvailable"`
			Selector     struct {
				MatchLabels map[string]string `yaml:"matchLabels"`
			} `yaml:"selector"`
			// A Deployment's selector, read through the same shape.
			Template struct {
				Metadata struct {
					Labels map[string]string `yaml:"labels"`
				} `yaml:"metadata"`
			} `yaml:"template"`
		} `yaml:"spec"`
	}
	for _, tc := range []struct {
		name    string
		set     []string
		min     any    // the budget's minAvailable; nil: no budget
		failure string // "" renders
	}{
		{"two replicas", nil, 1, ""},
		{"three replicas, two kept", []string{"sidecar.workload.replicas=3", "sidecar.workload.podDisruptionBudget.minAvailable=2"}, 2, ""},
		{"a percentage", []string{"sidecar.workload.podDisruptionBudget.minAvailable=50%"}, "50%", ""},
		{"one replica", []string{"sidecar.workload.replicas=1"}, nil, ""},
		{"every replica", []string{"sidecar.workload.podDisruptionBudget.minAvailable=2"}, nil, "sidecar.workload.podDisruptionBudget.minAvailable 2 keeps all 2 of sidecar.workload.replicas"},
		{"every replica by percentage", []string{"sidecar.workload.replicas=3", "sidecar.workload.podDisruptionBudget.minAvailable=70%"}, nil, "minAvailable 70% keeps all 3"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			args := []string{"template", "exchange", "../deploy/helm/lockbox", "--namespace", "exchange",
				"--kube-version", kube, "-f", "../deploy/helm/examples/exchange.yaml"}
			for _, s := range tc.set {
				args = append(args, "--set", s)
			}
			cmd := toolCommand(t, "helm", args...)
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			out, err := cmd.Output()
			if tc.failure != "" {
				if err == nil || !strings.Contains(stderr.String(), tc.failure) {
					t.Fatalf("helm template: %v, want a failure containing %q:\n%s", err, tc.failure, stderr.Bytes())
				}
				return
			}
			if err != nil {
				t.Fatalf("helm template: %v\n%s", err, stderr.Bytes())
			}
			var budgets []budget
			var pods map[string]string
			dec := yaml.NewDecoder(bytes.NewReader(out))
			for {
				var b budget
				if err := dec.Decode(&b); errors.Is(err, io.EOF) {
					break
				} else if err != nil {
					t.Fatal(err)
				}
				switch {
				case b.Kind == "PodDisruptionBudget":
					budgets = append(budgets, b)
				case b.Kind == "Deployment" && b.Metadata.Name == "exchange":
					pods = b.Spec.Template.Metadata.Labels
				}
			}
			if pods == nil {
				t.Fatalf("no Deployment exchange rendered:\n%s", out)
			}
			if tc.min == nil {
				if len(budgets) != 0 {
					t.Errorf("rendered %d PodDisruptionBudgets for one replica, want none", len(budgets))
				}
				return
			}
			if len(budgets) != 1 {
				t.Fatalf("rendered %d PodDisruptionBudgets, want the tenant service's", len(budgets))
			}
			b := budgets[0]
			if b.Spec.MinAvailable != tc.min {
				t.Errorf("minAvailable %v (%T), want %v", b.Spec.MinAvailable, b.Spec.MinAvailable, tc.min)
			}
			sel := b.Spec.Selector.MatchLabels
			if len(sel) == 0 {
				t.Fatalf("PodDisruptionBudget %s selects every pod of the namespace", b.Metadata.Name)
			}
			for k, v := range sel {
				if pods[k] != v {
					t.Errorf("PodDisruptionBudget %s selects %s=%s, which the tenant service's pods (%v) lack", b.Metadata.Name, k, v, pods)
				}
			}
		})
	}
}

// TestKustomizeSidecarDisruptionBudget: the kustomize sidecar component
// gave the tenant data service behind it no PodDisruptionBudget, as the
// chart's sidecar release does, so a node drain could evict all its
// replicas at once. The component cannot know how many replicas the
// tenant runs, or will scale to, so its budget may not keep a count
// (minAvailable 1 of one replica blocks every drain): it lets one pod go
// at a time, whatever the replicas, and lets unready pods go at once, as
// a sidecar that can't reach Redis is unready (closed) in every pod and a
// budget counting them healthy-or-nothing would stall the drain for the
// whole outage. Exactly one budget selects the pods: the eviction API
// refuses a pod two budgets select.
func TestKustomizeSidecarDisruptionBudget(t *testing.T) {
	type doc struct {
		Kind     string `yaml:"kind"`
		Metadata struct {
			Name      string `yaml:"name"`
			Namespace string `yaml:"namespace"`
		} `yaml:"metadata"`
		Spec struct {
			MinAvailable               any    `yaml:"minAvailable"`
			MaxUnavailable             any    `yaml:"maxUnavailable"`
			UnhealthyPodEvictionPolicy string `yaml:"unhealthyPodEvictionPolicy"`
			Selector                   struct {
				MatchLabels map[string]string `yaml:"matchLabels"`
			} `yaml:"selector"`
			Template struct {
				Metadata struct {
					Labels map[string]string `yaml:"labels"`
				} `yaml:"metadata"`
			} `yaml:"template"`
		} `yaml:"spec"`
	}
	for _, dir := range []string{"kubernetes/examples/exchange", "kubernetes/examples/sentinel/exchange"} {
		t.Run(dir, func(t *testing.T) {
			out := goTool(t, "kustomize", "build", "../deploy/"+dir)
			var budgets []doc
			var tenant *doc
			dec := yaml.NewDecoder(bytes.NewReader(out))
			for {
				var d doc
				if err := dec.Decode(&d); errors.Is(err, io.EOF) {
					break
				} else if err != nil {
					t.Fatal(err)
				}
				switch {
				case d.Kind == "PodDisruptionBudget":
					budgets = append(budgets, d)
				case d.Kind == "Deployment" && d.Metadata.Name == "exchange":
					tenant = &d
				}
			}
			if tenant == nil {
				t.Fatalf("no Deployment exchange rendered:\n%s", out)
			}
			pods := tenant.Spec.Template.Metadata.Labels
			var selecting []doc
			for _, b := range budgets {
				sel := b.Spec.Selector.MatchLabels
				matches := b.Metadata.Namespace == tenant.Metadata.Namespace && len(sel) > 0
				for k, v := range sel {
					matches = matches && pods[k] == v
				}
				if matches {
					selecting = append(selecting, b)
				}
			}
			if len(selecting) != 1 {
				t.Fatalf("%d of %d PodDisruptionBudgets select the tenant service's pods (%v), want one", len(selecting), len(budgets), pods)
			}
			b := selecting[0]
			if b.Spec.MinAvailable != nil {
				t.Errorf("PodDisruptionBudget %s keeps minAvailable %v, which blocks every drain once the tenant runs that many replicas", b.Metadata.Name, b.Spec.MinAvailable)
			}
			if n, ok := b.Spec.MaxUnavailable.(int); !ok || n < 1 {
				t.Errorf("PodDisruptionBudget %s: maxUnavailable %v (%T), want a count of at least 1, which lets a drain evict a pod whatever the replicas", b.Metadata.Name, b.Spec.MaxUnavailable, b.Spec.MaxUnavailable)
			}
			if got := b.Spec.UnhealthyPodEvictionPolicy; got != "AlwaysAllow" {
				t.Errorf("PodDisruptionBudget %s: unhealthyPodEvictionPolicy %q, want AlwaysAllow", b.Metadata.Name, got)
			}
		})
	}
}

// TestRendersPassKubecheck: every form the manifests render passes
// kubecheck, the gate make deploy-check runs: each kustomization and the
// chart with its default values and each example's (renderAll), and the
// chart with the values an operator most often changes beside an example
// (the replicas and the budgets kept through node drains). Without it a
// manifest kubecheck refuses, or a kubecheck rule the manifests break,
// passed go test and surfaced only in make deploy-check.
func TestRendersPassKubecheck(t *testing.T) {
	renders := renderAll(t)
	kube := kubeVersion(t)
	for _, v := range []struct {
		name, example string
		set           []string
	}{
		{"exchange with one replica", "exchange", []string{"sidecar.workload.replicas=1"}},
		{"exchange with three replicas, half kept", "exchange", []string{"sidecar.workload.replicas=3", "sidecar.workload.podDisruptionBudget.minAvailable=50%"}},
		{"control plane with three replicas, two kept", "control-plane", []string{"controlPlane.replicas=3", "controlPlane.podDisruptionBudget.minAvailable=2"}},
	} {
		args := []string{"helm", "template", v.example, "../deploy/helm/lockbox", "--namespace", v.example,
			"--kube-version", kube, "-f", "../deploy/helm/examples/" + v.example + ".yaml"}
		for _, s := range v.set {
			args = append(args, "--set", s)
		}
		renders["helm "+v.name] = goTool(t, args...)
	}
	dir := t.TempDir()
	var files []string
	for name, out := range renders {
		file := filepath.Join(dir, strings.NewReplacer("/", "-", " ", "-", ",", "").Replace(name)+".yaml")
		if err := os.WriteFile(file, out, 0o600); err != nil {
			t.Fatal(err)
		}
		files = append(files, file)
	}
	slices.Sort(files)
	cmd := toolCommand(t, "kubecheck", files...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("(cd tools && go tool kubecheck ...): %v\n%s", err, out)
	}
	// Each render was read and found whole, none skipped.
	for _, f := range files {
		if !regexp.MustCompile(`(?m)^kubecheck: ` + regexp.QuoteMeta(f) + `: [1-9][0-9]* objects OK$`).Match(out) {
			t.Errorf("kubecheck did not pass %s:\n%s", f, out)
		}
	}
}

// TestKustomizeSidecarBudgetPerWorkload: the sidecar component's budget was
// PodDisruptionBudget lockbox-sidecar selecting every pod with the sidecar
// in the namespace. Two tenant services in one namespace, each deployed
// from a kustomization of its own with the component (examples/exchange,
// and sharepoint beside it), applied one budget under that one name, the
// second apply rewriting the first, counting both services' pods
// together: one service's unready or evicted pods spent the other's
// disruptions, and a service given a budget of its own had its pods
// selected twice, which no drain gets past. Each service's budget now bears
// its Deployment's name and its Deployment's selector: it selects that
// service's pods alone, and the namespace, applied as the API server
// keeps it (the last object of a name wins), passes kubecheck.
func TestKustomizeSidecarBudgetPerWorkload(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string { return writeIn(t, dir, name, content) }
	rel := relFrom(t, dir)
	sharepoint := sharepointBeside(t, dir)

	// Both applied to the namespace: an object of a kind, namespace and
	// name already there is replaced.
	type key struct{ kind, ns, name string }
	applied := map[key]map[string]any{}
	var order []key
	for _, out := range [][]byte{
		goTool(t, "kustomize", "build", "../deploy/kubernetes/examples/exchange"),
		goTool(t, "kustomize", "build", sharepoint),
	} {
		dec := yaml.NewDecoder(bytes.NewReader(out))
		for {
			var o map[string]any
			if err := dec.Decode(&o); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				t.Fatal(err)
			}
			meta, _ := o["metadata"].(map[string]any)
			k := key{fmt.Sprint(o["kind"]), fmt.Sprint(meta["namespace"]), fmt.Sprint(meta["name"])}
			if _, ok := applied[k]; !ok {
				order = append(order, k)
			}
			applied[k] = o
		}
	}

	// Each budget selects the pods of one Deployment, and each Deployment
	// with the sidecar has one budget.
	labelsAt := func(o map[string]any, path ...string) map[string]any {
		for _, p := range path {
			o, _ = o[p].(map[string]any)
		}
		return o
	}
	matches := func(sel, pods map[string]any) bool {
		for k, v := range sel {
			if pods[k] != v {
				return false
			}
		}
		return len(sel) > 0
	}
	budgets := map[string][]string{} // Deployment → budgets selecting its pods
	for _, k := range order {
		if k.kind != "PodDisruptionBudget" {
			continue
		}
		p := applied[k]
		if exprs := labelsAt(p, "spec", "selector")["matchExpressions"]; exprs != nil {
			t.Fatalf("PodDisruptionBudget %s selects by expressions %v: this test reads matchLabels only", k.name, exprs)
		}
		var selected []string
		for _, d := range order {
			if d.kind == "Deployment" && d.ns == k.ns && matches(labelsAt(p, "spec", "selector", "matchLabels"), labelsAt(applied[d], "spec", "template", "metadata", "labels")) {
				selected = append(selected, d.name)
				budgets[d.name] = append(budgets[d.name], k.name)
			}
		}
		if len(selected) != 1 {
			t.Errorf("PodDisruptionBudget %s selects the pods of Deployments %v, want its own service's alone", k.name, selected)
		}
	}
	for _, d := range []string{"exchange", "sharepoint"} {
		if len(budgets[d]) != 1 {
			t.Errorf("Deployment %s: PodDisruptionBudgets %v select its pods, want one", d, budgets[d])
		}
	}

	// The component reads the selector from the one Deployment beside it:
	// with two it refuses to build, never rendering a budget spanning both.
	write("two/a.yaml", string(readFile(t, "kubernetes/examples/exchange/exchange.yaml")))
	write("two/b.yaml", strings.ReplaceAll(string(readFile(t, "kubernetes/examples/exchange/exchange.yaml")), "exchange", "sharepoint"))
	two := filepath.Dir(write("two/kustomization.yaml", "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"+
		"resources:\n  - a.yaml\n  - b.yaml\ncomponents:\n  - "+rel("two", "kubernetes/components/sidecar")+"\n"+
		"configMapGenerator:\n  - name: lockbox-sidecar\n    literals:\n      - LOCKBOX_UPSTREAMS=exchange=http://127.0.0.1:9001\n"))
	cmd := toolCommand(t, "kustomize", "build", two)
	if out, err := cmd.CombinedOutput(); err == nil || !strings.Contains(string(out), "multiple matches for selector Deployment") {
		t.Errorf("kustomize build of the component beside two Deployments: %v, want it refused (multiple matches for selector Deployment):\n%s", err, out)
	}

	var bundle bytes.Buffer
	enc := yaml.NewEncoder(&bundle)
	for _, k := range order {
		if err := enc.Encode(applied[k]); err != nil {
			t.Fatal(err)
		}
	}
	if err := enc.Close(); err != nil {
		t.Fatal(err)
	}
	file := write("namespace.yaml", bundle.String())
	cmd = toolCommand(t, "kubecheck", file)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Errorf("kubecheck of namespace exchange with both services: %v\n%s", err, out)
	}
}

// relFrom returns a function giving the path of p (relative to deploy/) from
// the directory sub of dir: kustomize takes a relative path to a component
// only.
func relFrom(t *testing.T, dir string) func(sub, p string) string {
	return func(sub, p string) string {
		t.Helper()
		abs, err := filepath.Abs(p)
		if err != nil {
			t.Fatal(err)
		}
		r, err := filepath.Rel(filepath.Join(dir, sub), abs)
		if err != nil {
			t.Fatal(err)
		}
		return filepath.ToSlash(r)
	}
}

// sharepointBeside writes, in dir/sharepoint, the kustomization of a second
// tenant service with the sidecar in examples/exchange's namespace, as its
// team would make it from that example: the service renamed sharepoint
// (listening on 9002), the same components, and the example's Certificate
// copied unchanged. It returns the kustomization's directory.
func sharepointBeside(t *testing.T, dir string) string {
	t.Helper()
	write := func(name, content string) string { return writeIn(t, dir, name, content) }
	rel := relFrom(t, dir)
	ex := "kubernetes/examples/exchange/"
	write("sharepoint/sharepoint.yaml", strings.ReplaceAll(strings.ReplaceAll(
		string(readFile(t, ex+"exchange.yaml")), "exchange", "sharepoint"), "9001", "9002"))
	write("sharepoint/certificate.yaml", string(readFile(t, ex+"certificate.yaml")))
	write("sharepoint/grant-signing-key.pub.pem", string(readFile(t, ex+"grant-signing-key.pub.pem")))
	return filepath.Dir(write("sharepoint/kustomization.yaml", "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\n"+
		"namespace: exchange\nresources:\n  - sharepoint.yaml\n  - certificate.yaml\ncomponents:\n"+
		"  - "+rel("sharepoint", "kubernetes/components/sidecar")+"\n  - "+rel("sharepoint", "kubernetes/examples/settings")+"\n"+
		"  - "+rel("sharepoint", "kubernetes/components/tls")+"\n  - "+rel("sharepoint", "kubernetes/components/issuers")+"\n"+
		"configMapGenerator:\n  - name: lockbox-sidecar\n    literals:\n      - LOCKBOX_UPSTREAMS=sharepoint=http://127.0.0.1:9002\n"+
		"  - name: sharepoint-grant-key\n    files:\n      - grant-signing-key.pub.pem\n"))
}
