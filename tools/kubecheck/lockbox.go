package main

import (
	"cmp"
	"fmt"
	"maps"
	"net"
	"net/url"
	"path"
	"slices"
	"strconv"
	"strings"

	appsv1 "k8s.io/api/apps/v1"
	corev1 "k8s.io/api/core/v1"
	networkingv1 "k8s.io/api/networking/v1"
	policyv1 "k8s.io/api/policy/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"
	"k8s.io/apimachinery/pkg/util/intstr"
)

// lockboxContainer is the name of Lockbox's container in every pod that
// runs it: as a regular container in the control plane, as a native sidecar
// (an init container that keeps running) beside a tenant data service.
const lockboxContainer = "lockbox"

// secretFileVars name files that hold secrets; each must be read from a
// mounted Secret, never baked into an image or a ConfigMap.
var secretFileVars = []string{
	"LOCKBOX_JWT_JWKS_FILE", "LOCKBOX_JWT_HMAC_SECRET_FILE", "LOCKBOX_PROXY_SIGNING_KEY_FILE",
	"LOCKBOX_SMTP_PASSWORD_FILE", "LOCKBOX_WEBHOOK_SECRET_FILE", "LOCKBOX_OIDC_CLIENT_SECRET_FILE",
	"LOCKBOX_TLS_CERT_FILE", "LOCKBOX_TLS_KEY_FILE", "LOCKBOX_UPSTREAM_CLIENT_CERT_FILE", "LOCKBOX_UPSTREAM_CLIENT_KEY_FILE",
	"LOCKBOX_REDIS_PASSWORD_FILE", "LOCKBOX_REDIS_SENTINEL_PASSWORD_FILE",
	// The CA and the client certificate are no secret, but they come
	// with the key, in the Secret cert-manager writes.
	"LOCKBOX_REDIS_TLS_CA_FILE", "LOCKBOX_REDIS_TLS_CERT_FILE", "LOCKBOX_REDIS_TLS_KEY_FILE",
}

// secretFile is a file a setting names that holds a secret.
type secretFile struct{ setting, file string }

// secretFiles are the secret files env names: those of secretFileVars, and
// each of LOCKBOX_PROXY_ASSERTION_SECRET_FILES's service=file pairs.
func secretFiles(env map[string]string) []secretFile {
	var out []secretFile
	for _, v := range secretFileVars {
		if env[v] != "" {
			out = append(out, secretFile{v, env[v]})
		}
	}
	for pair := range strings.SplitSeq(env["LOCKBOX_PROXY_ASSERTION_SECRET_FILES"], ",") {
		if svc, file, ok := strings.Cut(strings.TrimSpace(pair), "="); ok && strings.TrimSpace(file) != "" {
			out = append(out, secretFile{"LOCKBOX_PROXY_ASSERTION_SECRET_FILES (" + strings.TrimSpace(svc) + ")", strings.TrimSpace(file)})
		}
	}
	return out
}

// renewedFileVars name certificates Lockbox re-reads when they change
// (cert-manager renewing them): the kubelet never updates a subPath mount,
// so on one the renewal would never be served.
var renewedFileVars = []string{
	"LOCKBOX_TLS_CERT_FILE", "LOCKBOX_TLS_KEY_FILE", "LOCKBOX_UPSTREAM_CLIENT_CERT_FILE", "LOCKBOX_UPSTREAM_CLIENT_KEY_FILE",
}

// metricsTLS reports whether the metrics port serves TLS, as config
// decides it: a certificate is set and LOCKBOX_TLS_LISTENERS (all three
// listeners when unset) names metrics.
func metricsTLS(env map[string]string) bool {
	if env["LOCKBOX_TLS_CERT_FILE"] == "" {
		return false
	}
	list, ok := env["LOCKBOX_TLS_LISTENERS"]
	if !ok {
		list = "proxy,api,metrics"
	}
	for l := range strings.SplitSeq(list, ",") {
		if strings.TrimSpace(l) == "metrics" {
			return true
		}
	}
	return false
}

// redisVars name the Redis of a deployment: "lockbox serve" needs exactly
// one of them.
var redisVars = []string{"LOCKBOX_REDIS_URL", "LOCKBOX_REDIS_SENTINEL_ADDRS", "LOCKBOX_REDIS_CLUSTER_ADDRS"}

// controlPlaneSecretVars name secrets only the API or the jobs read. A
// sidecar runs neither, so in a tenant's pod they would be exposure for
// nothing.
var controlPlaneSecretVars = []string{
	"LOCKBOX_SMTP_PASSWORD_FILE", "LOCKBOX_WEBHOOK_SECRET_FILE", "LOCKBOX_OIDC_CLIENT_SECRET_FILE",
}

// The components LOCKBOX_SERVE names, and what "lockbox serve" runs when it
// is unset or empty (config.Config.Serve).
const (
	serveProxy   = "proxy"
	serveAPI     = "api"
	serveJobs    = "jobs"
	serveDefault = "proxy,api,jobs"
)

// serves parses a container's LOCKBOX_SERVE as config does.
func serves(env map[string]string) (map[string]bool, error) {
	list := env["LOCKBOX_SERVE"]
	if strings.TrimSpace(list) == "" {
		list = serveDefault
	}
	out := map[string]bool{}
	for name := range strings.SplitSeq(list, ",") {
		switch c := strings.TrimSpace(name); c {
		case serveProxy, serveAPI, serveJobs:
			out[c] = true
		case "":
		default:
			return nil, fmt.Errorf("LOCKBOX_SERVE %q: %q is not one of proxy, api, jobs", list, c)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("LOCKBOX_SERVE %q names nothing to run", list)
	}
	return out, nil
}

// workload is an object with a pod template.
type workload struct {
	object
	ns       string
	pod      *metav1.ObjectMeta
	spec     *corev1.PodSpec
	replicas *int32 // Deployments only
}

type bundle struct {
	workloads  []workload
	configMaps map[string]*corev1.ConfigMap // by namespace/name
	services   []*corev1.Service
	netpols    []netpol
	pdbs       []budget
}

// budget is a PodDisruptionBudget and where the bundle holds it.
type budget struct {
	*policyv1.PodDisruptionBudget
	at object
}

// netpol is a NetworkPolicy and where the bundle holds it.
type netpol struct {
	*networkingv1.NetworkPolicy
	at object
}

func newBundle(objs []object) *bundle {
	b := &bundle{configMaps: map[string]*corev1.ConfigMap{}}
	for _, o := range objs {
		switch v := o.obj.(type) {
		case *corev1.ConfigMap:
			b.configMaps[v.Namespace+"/"+v.Name] = v
		case *corev1.Service:
			b.services = append(b.services, v)
		case *networkingv1.NetworkPolicy:
			b.netpols = append(b.netpols, netpol{v, o})
		case *policyv1.PodDisruptionBudget:
			b.pdbs = append(b.pdbs, budget{v, o})
		}
		if meta, spec, ok := podTemplate(o.obj); ok {
			w := workload{object: o, pod: meta, spec: spec}
			if m, ok := o.obj.(metav1.Object); ok {
				w.ns = m.GetNamespace()
			}
			if d, ok := o.obj.(*appsv1.Deployment); ok {
				w.replicas = d.Spec.Replicas
			}
			b.workloads = append(b.workloads, w)
		}
	}
	return b
}

func checkLockbox(b *bundle) []error {
	var errs []error
	for _, w := range b.workloads {
		errs = append(errs, b.checkConfigMapRefs(w)...)
		// The API server refuses a pod with two volumes of one name, which
		// a tenant's own volumes beside the chart's can make.
		seen := map[string]bool{}
		for _, v := range w.spec.Volumes {
			if seen[v.Name] {
				errs = append(errs, fmt.Errorf("%s: two volumes named %s: the API server refuses the pod; rename one", w, v.Name))
			}
			seen[v.Name] = true
		}
		if c, ok := findContainer(w.spec.Containers); ok {
			errs = append(errs, b.checkLockboxContainer(w, c)...)
			errs = append(errs, b.checkControlPlane(w, c)...)
		}
		if c, ok := findContainer(w.spec.InitContainers); ok {
			errs = append(errs, b.checkLockboxContainer(w, c)...)
			errs = append(errs, b.checkSidecar(w, c)...)
		}
	}
	for _, p := range b.pdbs {
		errs = append(errs, b.checkBudget(p)...)
		if !b.selectsAny(p.Namespace, p.Spec.Selector) {
			errs = append(errs, fmt.Errorf("%s: selects no pod of any workload rendered with it: it keeps no pod through a drain, and the workload it was written for has no budget of it (a selector its pods' labels lack, or a budget for another build's pods)", p.at))
		}
	}
	for _, np := range b.netpols {
		if !b.selectsAny(np.Namespace, &np.Spec.PodSelector) {
			errs = append(errs, fmt.Errorf("%s: selects no pod of any workload rendered with it: what it admits applies to none of them (a selector their labels lack, or a policy for another build's pods)", np.at))
		}
	}
	return errs
}

// selectsAny reports whether sel selects the pods of a workload of the
// bundle in namespace ns. A policy or budget that selects none is
// rendered for nothing: a selector the pods' labels lack, or an object
// meant for pods another build renders, here under that build's name in
// the wrong namespace.
func (b *bundle) selectsAny(ns string, sel *metav1.LabelSelector) bool {
	return slices.ContainsFunc(b.workloads, func(w workload) bool {
		return w.ns == ns && selects(sel, w.pod.Labels)
	})
}

// checkBudget holds every PodDisruptionBudget to what a drain needs of it,
// whichever pods it selects.
//
// It selects the pods of one workload: the disruption controller counts
// all it selects together, so one workload's evicted or unready pods would
// spend another's disruptions (with minAvailable, all of one may go while
// the other keeps the count), and a workload given a budget of its own
// would have its pods selected twice, which the eviction API refuses.
//
// Its unready pods must be evictable whatever the budget: under the
// default policy (IfHealthyBudget) the eviction API refuses to evict an
// unready pod while the budget is short of healthy ones, and every Lockbox
// pod is unready, closed, while Redis does not answer. A drain would then
// wait for Redis, evicting pods that serve nothing anyway. Ready pods
// stay protected.
func (b *bundle) checkBudget(p budget) []error {
	var errs []error
	var selected []string
	for _, w := range b.workloads {
		if w.ns == p.Namespace && selects(p.Spec.Selector, w.pod.Labels) {
			selected = append(selected, w.String())
		}
	}
	if len(selected) > 1 {
		errs = append(errs, fmt.Errorf("%s: selects the pods of %d workloads (%s), which it counts together: one's evicted or unready pods spend the others' disruptions, and a workload with a budget of its own has its pods selected twice, which no drain gets past; give each workload a budget selecting its own pods", p.at, len(selected), strings.Join(selected, ", ")))
	}
	if got := p.Spec.UnhealthyPodEvictionPolicy; got == nil || *got != policyv1.AlwaysAllow {
		policy := "unset (IfHealthyBudget)"
		if got != nil {
			policy = string(*got)
		}
		errs = append(errs, fmt.Errorf("%s: unhealthyPodEvictionPolicy %s, want AlwaysAllow: a node drain would wait on its unready pods, every Lockbox pod while Redis does not answer, until they are ready again", p.at, policy))
	}
	return errs
}

func findContainer(cs []corev1.Container) (corev1.Container, bool) {
	i := slices.IndexFunc(cs, func(c corev1.Container) bool { return c.Name == lockboxContainer })
	if i < 0 {
		return corev1.Container{}, false
	}
	return cs[i], true
}

// checkConfigMapRefs: a pod whose ConfigMap is missing never starts, so a
// bundle must carry every ConfigMap its pods need (Secrets are created out
// of band).
func (b *bundle) checkConfigMapRefs(w workload) []error {
	var errs []error
	need := func(name string, optional *bool, where string) {
		if optional != nil && *optional {
			return
		}
		if _, ok := b.configMaps[w.ns+"/"+name]; !ok {
			errs = append(errs, fmt.Errorf("%s: %s names ConfigMap %q, which the bundle lacks", w, where, name))
		}
	}
	for _, c := range slices.Concat(w.spec.InitContainers, w.spec.Containers) {
		for _, ef := range c.EnvFrom {
			if ef.ConfigMapRef != nil {
				need(ef.ConfigMapRef.Name, ef.ConfigMapRef.Optional, "container "+c.Name+" envFrom")
			}
		}
		for _, e := range c.Env {
			if e.ValueFrom != nil && e.ValueFrom.ConfigMapKeyRef != nil {
				need(e.ValueFrom.ConfigMapKeyRef.Name, e.ValueFrom.ConfigMapKeyRef.Optional, "container "+c.Name+" env "+e.Name)
			}
		}
	}
	for _, v := range w.spec.Volumes {
		if v.ConfigMap != nil {
			need(v.ConfigMap.Name, v.ConfigMap.Optional, "volume "+v.Name)
		}
		if v.Projected != nil {
			for _, s := range v.Projected.Sources {
				if s.ConfigMap != nil {
					need(s.ConfigMap.Name, s.ConfigMap.Optional, "volume "+v.Name)
				}
			}
		}
	}
	return errs
}

// env resolves a container's environment as the kubelet would, as far as
// the bundle tells: envFrom in order, then env on top. Values from Secrets
// or the downward API are known to be set, not what they are.
func (b *bundle) env(ns string, c corev1.Container) map[string]string {
	out := map[string]string{}
	for _, ef := range c.EnvFrom {
		switch {
		case ef.ConfigMapRef != nil:
			if cm, ok := b.configMaps[ns+"/"+ef.ConfigMapRef.Name]; ok {
				for k, v := range cm.Data {
					out[ef.Prefix+k] = v
				}
			}
		case ef.SecretRef != nil:
			// Its keys are unknown here.
		}
	}
	for _, e := range c.Env {
		switch {
		case e.ValueFrom == nil:
			out[e.Name] = e.Value
		case e.ValueFrom.ConfigMapKeyRef != nil:
			if cm, ok := b.configMaps[ns+"/"+e.ValueFrom.ConfigMapKeyRef.Name]; ok {
				out[e.Name] = cm.Data[e.ValueFrom.ConfigMapKeyRef.Key]
			}
		default:
			out[e.Name] = "(set at run time)"
		}
	}
	return out
}

func (b *bundle) checkLockboxContainer(w workload, c corev1.Container) []error {
	var errs []error
	fail := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: container %s: %s", w, c.Name, fmt.Sprintf(format, args...)))
	}
	env := b.env(w.ns, c)
	if !slices.Contains(slices.Concat(c.Command, c.Args), "serve") {
		fail(`does not run "lockbox serve"`)
	}
	runs, err := serves(env)
	if err != nil {
		fail("%v", err)
	}
	// The control plane needs the policy too: the API checks requested
	// activities against the catalog beside it.
	required := []string{"LOCKBOX_POLICY_DIR"}
	var redis []string
	for _, v := range redisVars {
		if env[v] != "" {
			redis = append(redis, v)
		}
	}
	if len(redis) != 1 {
		fail("sets %v: exactly one of %s names its Redis", redis, strings.Join(redisVars, ", "))
	}
	if runs[serveProxy] {
		required = append(required, "LOCKBOX_UPSTREAMS", "LOCKBOX_PROXY_SIGNING_KEY_FILE")
	}
	for _, v := range required {
		if env[v] == "" {
			fail("%s is not set", v)
		}
	}
	keySettings := []string{"LOCKBOX_JWT_JWKS_URL", "LOCKBOX_JWT_JWKS_FILE", "LOCKBOX_JWT_HMAC_SECRET_FILE", "LOCKBOX_ISSUERS_FILE"}
	switch n := len(slices.DeleteFunc(slices.Clone(keySettings), func(v string) bool { return env[v] == "" })); {
	case n == 0:
		fail("none of %s is set: nothing verifies tokens", strings.Join(keySettings, ", "))
	case n > 1:
		fail("more than one of %s is set", strings.Join(keySettings, ", "))
	}
	// The issuers file is configuration, not a secret: a ConfigMap.
	if file := env["LOCKBOX_ISSUERS_FILE"]; file != "" {
		if _, v, ok := mountOf(w.spec, c, file); !ok || !onlyConfigMaps(v) {
			fail("LOCKBOX_ISSUERS_FILE %s is not on a mounted ConfigMap", file)
		}
	}

	// The defaults bind 127.0.0.1, where neither the kubelet's probes nor
	// Prometheus reach: the metrics address must be set and declared.
	metricsHost, metricsPort, err := splitAddr(env["LOCKBOX_METRICS_ADDR"])
	switch {
	case err != nil:
		fail("LOCKBOX_METRICS_ADDR: %v", err)
	case isLoopback(metricsHost):
		fail("LOCKBOX_METRICS_ADDR %s is loopback: probes and Prometheus can't reach it", env["LOCKBOX_METRICS_ADDR"])
	case !hasPort(c, metricsPort):
		fail("LOCKBOX_METRICS_ADDR port %d is not a declared container port", metricsPort)
	}
	wantScheme := corev1.URISchemeHTTP
	if metricsTLS(env) {
		wantScheme = corev1.URISchemeHTTPS
	}
	for _, p := range []struct {
		kind  string
		probe *corev1.Probe
		path  string
	}{{"liveness", c.LivenessProbe, "/livez"}, {"readiness", c.ReadinessProbe, "/readyz"}, {"startup", c.StartupProbe, "/livez"}} {
		if p.kind == "startup" && p.probe == nil {
			continue // optional
		}
		if p.probe == nil || p.probe.HTTPGet == nil {
			fail("no HTTP %s probe", p.kind)
			continue
		}
		// A probe speaking the wrong protocol fails: the pod would never
		// be ready, or be restarted forever.
		if scheme := cmp.Or(p.probe.HTTPGet.Scheme, corev1.URISchemeHTTP); scheme != wantScheme {
			fail("%s probe scheme %s, but the metrics port serves %s (LOCKBOX_TLS_CERT_FILE, LOCKBOX_TLS_LISTENERS)", p.kind, scheme, wantScheme)
		}
		if p.probe.HTTPGet.Path != p.path {
			fail("%s probe path %q, want %q", p.kind, p.probe.HTTPGet.Path, p.path)
		}
		if n, ok := portNumber([]corev1.Container{c}, p.probe.HTTPGet.Port); !ok || n != metricsPort {
			fail("%s probe port %s is not the metrics port %d (health is never on the proxy port)", p.kind, p.probe.HTTPGet.Port.String(), metricsPort)
		}
	}
	for _, r := range []corev1.ResourceName{corev1.ResourceCPU, corev1.ResourceMemory} {
		if q, ok := c.Resources.Requests[r]; !ok || q.IsZero() {
			fail("no %s request", r)
		}
		if q, ok := c.Resources.Limits[r]; !ok || q.IsZero() {
			fail("no %s limit", r)
		}
	}
	if sc := c.SecurityContext; sc == nil || sc.ReadOnlyRootFilesystem == nil || !*sc.ReadOnlyRootFilesystem {
		fail("root file system is not read-only")
	}

	// Hot reload: the kubelet swaps a ConfigMap volume's files in place,
	// but never updates a subPath mount.
	if dir := env["LOCKBOX_POLICY_DIR"]; dir != "" {
		m, v, ok := mountOf(w.spec, c, dir)
		switch {
		case !ok:
			fail("LOCKBOX_POLICY_DIR %s is not on a mounted volume", dir)
		case m.SubPath != "" || m.SubPathExpr != "":
			fail("LOCKBOX_POLICY_DIR %s is a subPath mount, which never sees ConfigMap updates", dir)
		case !onlyConfigMaps(v):
			fail("LOCKBOX_POLICY_DIR %s is not on a ConfigMap volume that security teams edit", dir)
		}
	}
	for _, sf := range secretFiles(env) {
		name, file := sf.setting, sf.file
		m, v, ok := mountOf(w.spec, c, file)
		switch {
		case !ok || !onlySecrets(v):
			fail("%s %s is not on a mounted Secret", name, file)
		case !projects(v, m, file):
			fail("%s %s is not among the items volume %s projects", name, file, v.Name)
		case slices.Contains(renewedFileVars, name) && (m.SubPath != "" || m.SubPathExpr != ""):
			fail("%s %s is a subPath mount, which never sees the Secret's updates: a renewed certificate would never be served", name, file)
		}
	}
	return errs
}

// checkControlPlane: the control plane serves the API and runs the jobs,
// never the proxy, survives a node drain and talks only to what it needs.
func (b *bundle) checkControlPlane(w workload, c corev1.Container) []error {
	_, errs := b.networkPolicies(w)
	if _, ok := w.obj.(*appsv1.Deployment); !ok {
		return []error{fmt.Errorf("%s: the control plane runs as a Deployment", w)}
	}
	fail := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: container %s: %s", w, c.Name, fmt.Sprintf(format, args...)))
	}
	env := b.env(w.ns, c)
	if runs, err := serves(env); err == nil {
		// Unset, LOCKBOX_SERVE runs the proxy too, which would need an
		// upstream and the grant signing key here.
		if runs[serveProxy] {
			fail("LOCKBOX_SERVE %q runs the proxy: operators reach tenant data through the sidecars, so the control plane runs api,jobs", env["LOCKBOX_SERVE"])
		}
		if !runs[serveAPI] {
			fail("LOCKBOX_SERVE %q lacks api: the control plane's Service leads to the /v1 API and the admin center", env["LOCKBOX_SERVE"])
		}
		// Sidecars run the proxy alone: without jobs here nothing expires
		// requests, delivers notifications or feeds the SIEM.
		if !runs[serveJobs] {
			fail("LOCKBOX_SERVE %q lacks jobs: no sidecar expires requests or delivers notifications", env["LOCKBOX_SERVE"])
		}
	}
	// Whoever holds the key can mint X-Lockbox-Grant headers that tenant
	// services trust: it stays with the proxies.
	if env["LOCKBOX_PROXY_SIGNING_KEY_FILE"] != "" {
		fail("LOCKBOX_PROXY_SIGNING_KEY_FILE is set: the control plane runs no proxy and holds no grant signing key")
	}
	host, port, err := splitAddr(env["LOCKBOX_API_ADDR"])
	switch {
	case err != nil:
		fail("LOCKBOX_API_ADDR: %v", err)
	case isLoopback(host):
		fail("LOCKBOX_API_ADDR %s is loopback: the Service can't reach the API", env["LOCKBOX_API_ADDR"])
	case !hasPort(c, port):
		fail("LOCKBOX_API_ADDR port %d is not a declared container port", port)
	}
	if w.replicas == nil || *w.replicas < 2 {
		errs = append(errs, fmt.Errorf("%s: fewer than 2 replicas", w))
	}
	covered, budgetErrs := b.checkBudgets(w)
	errs = append(errs, budgetErrs...)
	if !covered {
		errs = append(errs, fmt.Errorf("%s: no PodDisruptionBudget selects its pods", w))
	}
	return errs
}

// checkBudgets reports whether a PodDisruptionBudget selects w's pods, and
// each one that lets none of its replicas be evicted: a node drain waits on
// it forever. So it does on pods more than one budget selects, which the
// eviction API refuses outright. The control plane must have one, and so
// must a tenant service behind a sidecar with more than one replica.
func (b *bundle) checkBudgets(w workload) (bool, []error) {
	var errs []error
	var names []string
	for _, p := range b.pdbs {
		if p.Namespace != w.ns || !selects(p.Spec.Selector, w.pod.Labels) {
			continue
		}
		names = append(names, p.Name)
		if w.replicas != nil && !allowsDisruption(p.PodDisruptionBudget, int(*w.replicas)) {
			errs = append(errs, fmt.Errorf("%s: PodDisruptionBudget %s lets none of its %d replicas be evicted: a node drain waits on it forever", w, p.Name, *w.replicas))
		}
	}
	if len(names) > 1 {
		errs = append(errs, fmt.Errorf("%s: PodDisruptionBudgets %s all select its pods: the eviction API refuses a pod more than one budget selects, so a node drain waits on them forever", w, strings.Join(names, ", ")))
	}
	return len(names) > 0, errs
}

// allowsDisruption says whether p lets one of replicas healthy pods be
// evicted, scaling percentages as the disruption controller does
// (minAvailable rounded up, maxUnavailable rounded up too).
func allowsDisruption(p *policyv1.PodDisruptionBudget, replicas int) bool {
	if m := p.Spec.MaxUnavailable; m != nil {
		n, err := intstr.GetScaledValueFromIntOrPercent(m, replicas, true)
		return err == nil && n > 0
	}
	if m := p.Spec.MinAvailable; m != nil {
		n, err := intstr.GetScaledValueFromIntOrPercent(m, replicas, true)
		return err == nil && n < replicas
	}
	// Neither: the API server refuses such a budget; nothing to add.
	return true
}

// checkSidecar holds what keeps a tenant data service reachable only
// through Lockbox. NetworkPolicy works at the pod's edge and can't tell
// its containers apart, so the tenant service's binding to loopback is
// what protects it; the policy closes every other port of the pod.
func (b *bundle) checkSidecar(w workload, lb corev1.Container) []error {
	var errs []error
	fail := func(format string, args ...any) {
		errs = append(errs, fmt.Errorf("%s: %s", w, fmt.Sprintf(format, args...)))
	}
	if lb.RestartPolicy == nil || *lb.RestartPolicy != corev1.ContainerRestartPolicyAlways {
		fail("init container %s is not a native sidecar (restartPolicy: Always): the pod would never start", lb.Name)
	}
	env := b.env(w.ns, lb)
	for pair := range strings.SplitSeq(env["LOCKBOX_UPSTREAMS"], ",") {
		svc, raw, _ := strings.Cut(strings.TrimSpace(pair), "=")
		u, err := url.Parse(raw)
		if err != nil || !isLoopback(u.Hostname()) {
			fail("LOCKBOX_UPSTREAMS: %s=%s is not a loopback address in the same pod", svc, raw)
		}
	}
	// The API and the jobs belong to the control plane: in a tenant's pod
	// they would listen beside the service, deliver mail and need the
	// control plane's secrets.
	if runs, err := serves(env); err == nil && !maps.Equal(runs, map[string]bool{serveProxy: true}) {
		fail("LOCKBOX_SERVE %q: a sidecar runs the proxy alone (LOCKBOX_SERVE=proxy)", env["LOCKBOX_SERVE"])
	}
	for _, v := range controlPlaneSecretVars {
		if env[v] != "" {
			fail("%s is set: a sidecar runs the proxy alone and has no use for that secret", v)
		}
	}
	// A Secret no setting reads is still readable by anyone who breaks into
	// the pod that holds tenant data.
	for _, m := range lb.VolumeMounts {
		i := slices.IndexFunc(w.spec.Volumes, func(v corev1.Volume) bool { return v.Name == m.Name })
		if i < 0 || !onlySecrets(w.spec.Volumes[i]) {
			continue
		}
		read := slices.ContainsFunc(secretFiles(env), func(sf secretFile) bool {
			holder, _, ok := mountOf(w.spec, lb, sf.file)
			return ok && holder.Name == m.Name
		})
		if !read {
			fail("mounts Secret volume %s at %s, which no setting of the proxy reads: keep it out of the tenant's pod", m.Name, m.MountPath)
		}
	}
	_, proxyPort, err := splitAddr(env["LOCKBOX_PROXY_ADDR"])
	if err != nil {
		fail("LOCKBOX_PROXY_ADDR: %v", err)
		return errs
	}
	if !hasPort(lb, proxyPort) {
		fail("LOCKBOX_PROXY_ADDR port %d is not a declared port of %s", proxyPort, lb.Name)
	}
	_, metricsPort, _ := splitAddr(env["LOCKBOX_METRICS_ADDR"])
	for _, c := range slices.Concat(w.spec.InitContainers, w.spec.Containers) {
		if c.Name == lb.Name {
			continue
		}
		if len(c.Ports) > 0 {
			fail("container %s declares ports: the tenant service listens on loopback only, behind the proxy", c.Name)
		}
		for _, p := range []*corev1.Probe{c.LivenessProbe, c.ReadinessProbe, c.StartupProbe} {
			if p != nil && (p.HTTPGet != nil || p.TCPSocket != nil || p.GRPC != nil) {
				fail("container %s has a network probe, which reaches the pod IP where it must not listen; use an exec probe", c.Name)
			}
		}
	}
	all := slices.Concat(w.spec.InitContainers, w.spec.Containers)
	for _, s := range b.services {
		if s.Namespace != w.ns || len(s.Spec.Selector) == 0 || !labels.SelectorFromSet(s.Spec.Selector).Matches(labels.Set(w.pod.Labels)) {
			continue
		}
		for _, p := range s.Spec.Ports {
			target := p.TargetPort
			if target.IntVal == 0 && target.StrVal == "" {
				target = intstr.FromInt32(p.Port)
			}
			if n, ok := portNumber(all, target); !ok || n != proxyPort {
				fail("Service %s port %d targets %s, not the proxy port %d", s.Name, p.Port, target.String(), proxyPort)
			}
		}
	}
	selecting, npErrs := b.networkPolicies(w)
	errs = append(errs, npErrs...)
	for _, np := range selecting {
		for i, r := range np.Spec.Ingress {
			if len(r.Ports) == 0 {
				fail("NetworkPolicy %s ingress rule %d admits every port", np.Name, i)
			}
			for _, p := range r.Ports {
				if p.Port == nil {
					fail("NetworkPolicy %s ingress rule %d admits every port", np.Name, i)
					continue
				}
				if n, ok := portNumber([]corev1.Container{lb}, *p.Port); !ok || (n != proxyPort && n != metricsPort) {
					fail("NetworkPolicy %s ingress rule %d admits port %s, which is not Lockbox's proxy or metrics port", np.Name, i, p.Port.String())
				}
			}
		}
		for i, r := range np.Spec.Egress {
			if len(r.Ports) == 0 {
				fail("NetworkPolicy %s egress rule %d allows every port", np.Name, i)
			}
		}
	}
	// The tenant service is reachable only through its proxy: a drain
	// evicting all its replicas at once takes it away until they
	// reschedule. A single replica has nothing to keep.
	covered, budgetErrs := b.checkBudgets(w)
	errs = append(errs, budgetErrs...)
	if !covered && w.replicas != nil && *w.replicas > 1 {
		errs = append(errs, fmt.Errorf("%s: no PodDisruptionBudget selects its pods: a node drain may evict all %d replicas at once", w, *w.replicas))
	}
	return errs
}

// networkPolicies returns the NetworkPolicies that select w's pods, and
// an error unless there is one and each restricts both directions.
func (b *bundle) networkPolicies(w workload) ([]*networkingv1.NetworkPolicy, []error) {
	var (
		selecting []*networkingv1.NetworkPolicy
		errs      []error
	)
	for _, np := range b.netpols {
		if np.Namespace == w.ns && selects(&np.Spec.PodSelector, w.pod.Labels) {
			selecting = append(selecting, np.NetworkPolicy)
		}
	}
	if len(selecting) == 0 {
		errs = append(errs, fmt.Errorf("%s: no NetworkPolicy selects its pods", w))
	}
	for _, np := range selecting {
		if !slices.Contains(np.Spec.PolicyTypes, networkingv1.PolicyTypeIngress) || !slices.Contains(np.Spec.PolicyTypes, networkingv1.PolicyTypeEgress) {
			errs = append(errs, fmt.Errorf("%s: NetworkPolicy %s does not restrict both Ingress and Egress", w, np.Name))
		}
	}
	return selecting, errs
}

// selects reports whether a PodDisruptionBudget's or a NetworkPolicy's
// selector selects pods labelled podLabels, as Kubernetes reads it: an
// empty selector ({}) every pod of the namespace, a missing one none.
func selects(sel *metav1.LabelSelector, podLabels map[string]string) bool {
	s, err := metav1.LabelSelectorAsSelector(sel)
	return err == nil && s.Matches(labels.Set(podLabels))
}

// splitAddr parses a host:port setting.
func splitAddr(addr string) (string, int32, error) {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return "", 0, fmt.Errorf("%q is not host:port", addr)
	}
	n, err := strconv.ParseUint(port, 10, 16)
	if err != nil || n == 0 {
		return "", 0, fmt.Errorf("%q has no fixed port", addr)
	}
	return host, int32(n), nil
}

func isLoopback(host string) bool {
	if host == "localhost" {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func hasPort(c corev1.Container, n int32) bool {
	return slices.ContainsFunc(c.Ports, func(p corev1.ContainerPort) bool { return p.ContainerPort == n })
}

// portNumber resolves a port given by number or by the name of a container
// port of cs.
func portNumber(cs []corev1.Container, p intstr.IntOrString) (int32, bool) {
	if p.Type == intstr.Int {
		return p.IntVal, p.IntVal > 0
	}
	for _, c := range cs {
		for _, cp := range c.Ports {
			if cp.Name == p.StrVal {
				return cp.ContainerPort, true
			}
		}
	}
	return 0, false
}

// mountOf finds the mount of c that holds file (the deepest one) and its
// volume.
func mountOf(spec *corev1.PodSpec, c corev1.Container, file string) (corev1.VolumeMount, corev1.Volume, bool) {
	var (
		best corev1.VolumeMount
		ok   bool
	)
	file = path.Clean(file)
	for _, m := range c.VolumeMounts {
		mp := path.Clean(m.MountPath)
		if (file == mp || strings.HasPrefix(file, mp+"/")) && len(mp) > len(best.MountPath) {
			best, ok = m, true
		}
	}
	if !ok {
		return best, corev1.Volume{}, false
	}
	i := slices.IndexFunc(spec.Volumes, func(v corev1.Volume) bool { return v.Name == best.Name })
	if i < 0 {
		return best, corev1.Volume{}, false
	}
	return best, spec.Volumes[i], true
}

func onlyConfigMaps(v corev1.Volume) bool {
	switch {
	case v.ConfigMap != nil:
		return true
	case v.Projected != nil:
		return len(v.Projected.Sources) > 0 && !slices.ContainsFunc(v.Projected.Sources, func(s corev1.VolumeProjection) bool { return s.ConfigMap == nil })
	}
	return false
}

// projects reports whether the Secret volume v, mounted by m, holds file:
// a volume that lists items holds those alone.
func projects(v corev1.Volume, m corev1.VolumeMount, file string) bool {
	rel := strings.TrimPrefix(path.Clean(file), path.Clean(m.MountPath)+"/")
	if path.Clean(file) == path.Clean(m.MountPath) {
		rel = "" // the mount is the file itself (subPath)
	}
	if m.SubPath != "" {
		rel = path.Join(m.SubPath, rel)
	}
	listed := func(items []corev1.KeyToPath) bool {
		return len(items) == 0 || slices.ContainsFunc(items, func(k corev1.KeyToPath) bool { return path.Clean(k.Path) == rel })
	}
	switch {
	case v.Secret != nil:
		return listed(v.Secret.Items)
	case v.Projected != nil:
		return slices.ContainsFunc(v.Projected.Sources, func(s corev1.VolumeProjection) bool {
			return s.Secret != nil && listed(s.Secret.Items)
		})
	}
	return false
}

func onlySecrets(v corev1.Volume) bool {
	switch {
	case v.Secret != nil:
		return true
	case v.Projected != nil:
		return len(v.Projected.Sources) > 0 && !slices.ContainsFunc(v.Projected.Sources, func(s corev1.VolumeProjection) bool { return s.Secret == nil })
	}
	return false
}
