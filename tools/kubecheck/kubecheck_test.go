package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// testdata/good.yaml is the two example builds (control plane and the
// exchange sidecar) rendered into one bundle. Each case breaks one thing in
// it, the way a careless edit would, and kubecheck must name it.
func TestKubecheck(t *testing.T) {
	good, err := os.ReadFile("testdata/good.yaml")
	if err != nil {
		t.Fatal(err)
	}
	const (
		controlPlane = "kind: Deployment\nmetadata:\n  labels:\n    app.kubernetes.io/component: control-plane"
		sidecar      = "initContainers:"
		tenant       = "  name: exchange\n  namespace: exchange\nspec:\n  replicas: 2"
	)
	cases := []struct {
		name string
		// The first old after the first occurrence of after becomes new.
		after, old, new string
		want            string
	}{
		{name: "unknown field", old: "  replicas: 2\n", new: "  replicas: 2\n  replica: 2\n", want: `unknown field "spec.replica"`},
		{name: "duplicate field", old: "  replicas: 2\n", new: "  replicas: 2\n  replicas: 3\n", want: `key "replicas" already set`},
		{name: "unknown kind", old: "kind: ServiceAccount", new: "kind: Widget", want: "unknown kind"},
		{name: "no kind", old: "kind: ServiceAccount\n", new: "", want: "'Kind' is missing"},
		{name: "privilege escalation", after: sidecar, old: "allowPrivilegeEscalation: false", new: "allowPrivilegeEscalation: true", want: `violates the Pod Security Standard "restricted"`},
		{name: "root", after: tenant, old: "runAsUser: 10001", new: "runAsUser: 0", want: "runAsUser=0"},
		{name: "not a native sidecar", after: sidecar, old: "        restartPolicy: Always\n", new: "", want: "not a native sidecar"},
		{name: "service bypasses the proxy", old: "targetPort: 8081", new: "targetPort: 9001", want: "targets 9001, not the proxy port 8081"},
		{name: "ingress to another port", old: "    - port: 8081\n      protocol: TCP", new: "    - port: 9001\n      protocol: TCP", want: "admits port 9001, which is not Lockbox's proxy or metrics port"},
		{name: "ingress to every port", old: "  ingress:\n  - ports:\n    - port: 8081\n      protocol: TCP\n", new: "  ingress:\n  - {}\n", want: "admits every port"},
		{name: "sidecar without egress policy", after: "kind: NetworkPolicy\nmetadata:\n  name: lockbox-exchange\n  namespace: exchange", old: "  - Ingress\n  - Egress", new: "  - Ingress", want: "does not restrict both Ingress and Egress"},
		{name: "control plane without egress policy", old: "  - Ingress\n  - Egress", new: "  - Ingress", want: "NetworkPolicy lockbox does not restrict both Ingress and Egress"},
		{name: "sidecar without network policy", old: "      app.kubernetes.io/name: exchange\n  policyTypes", new: "      app.kubernetes.io/name: other\n  policyTypes", want: "no NetworkPolicy selects its pods"},
		{name: "upstream off the pod", old: "exchange=http://127.0.0.1:9001", new: "exchange=http://exchange-backend:9001", want: "is not a loopback address in the same pod"},
		{name: "sidecar runs the API", after: sidecar, old: "value: proxy\n", new: "value: proxy,api\n", want: "a sidecar runs the proxy alone"},
		{name: "sidecar runs the jobs", after: sidecar, old: "value: proxy\n", new: "value: jobs,proxy\n", want: "a sidecar runs the proxy alone"},
		{name: "sidecar without LOCKBOX_SERVE", after: sidecar, old: "        - name: LOCKBOX_SERVE\n          value: proxy\n", new: "", want: `LOCKBOX_SERVE "": a sidecar runs the proxy alone`},
		{
			name: "sidecar mounts the SMTP secret", after: sidecar,
			old:  "name: lockbox-keys\n          readOnly: true\n      securityContext:\n        runAsNonRoot: true\n        seccompProfile:\n          type: RuntimeDefault\n      volumes:\n",
			new:  "name: lockbox-keys\n          readOnly: true\n        - mountPath: /etc/lockbox/smtp\n          name: lockbox-smtp\n          readOnly: true\n      securityContext:\n        runAsNonRoot: true\n        seccompProfile:\n          type: RuntimeDefault\n      volumes:\n      - name: lockbox-smtp\n        secret:\n          optional: true\n          secretName: lockbox-smtp\n",
			want: "mounts Secret volume lockbox-smtp at /etc/lockbox/smtp, which no setting of the proxy reads",
		},
		{name: "sidecar reads the SMTP password", after: sidecar, old: "value: proxy\n", new: "value: proxy\n        - name: LOCKBOX_SMTP_PASSWORD_FILE\n          value: /etc/lockbox/keys/smtp-password\n", want: "LOCKBOX_SMTP_PASSWORD_FILE is set: a sidecar runs the proxy alone"},
		{name: "two volumes of one name", after: tenant, old: "      volumes:\n", new: "      volumes:\n      - name: lockbox-keys\n        emptyDir: {}\n", want: "two volumes named lockbox-keys"},
		{name: "assertion secret outside a Secret", after: sidecar, old: "value: proxy\n", new: "value: proxy\n        - name: LOCKBOX_PROXY_ASSERTION_SECRET_FILES\n          value: exchange=/etc/lockbox/policy/assertion.secret\n", want: "LOCKBOX_PROXY_ASSERTION_SECRET_FILES (exchange) /etc/lockbox/policy/assertion.secret is not on a mounted Secret"},
		{name: "assertion secret not projected", after: sidecar, old: "value: proxy\n", new: "value: proxy\n        - name: LOCKBOX_PROXY_ASSERTION_SECRET_FILES\n          value: exchange=/etc/lockbox/keys/assertion.secret\n", want: "LOCKBOX_PROXY_ASSERTION_SECRET_FILES (exchange) /etc/lockbox/keys/assertion.secret is not among the items volume lockbox-keys projects"},
		{name: "sidecar without its signing key", after: sidecar, old: "        - name: LOCKBOX_PROXY_SIGNING_KEY_FILE\n          value: /etc/lockbox/keys/grant-signing-key.pem\n", new: "", want: "LOCKBOX_PROXY_SIGNING_KEY_FILE is not set"},
		{name: "signing key not projected", after: sidecar, old: "          - key: grant-signing-key.pem\n            path: grant-signing-key.pem\n", new: "", want: "LOCKBOX_PROXY_SIGNING_KEY_FILE /etc/lockbox/keys/grant-signing-key.pem is not among the items volume lockbox-keys projects"},
		{name: "control plane runs the proxy", after: controlPlane, old: "value: api,jobs", new: "value: proxy,api,jobs", want: `LOCKBOX_SERVE "proxy,api,jobs" runs the proxy`},
		{name: "control plane without LOCKBOX_SERVE", after: controlPlane, old: "        - name: LOCKBOX_SERVE\n          value: api,jobs\n", new: "", want: `LOCKBOX_SERVE "" runs the proxy`},
		{name: "control plane without jobs", after: controlPlane, old: "value: api,jobs", new: "value: api", want: `LOCKBOX_SERVE "api" lacks jobs`},
		{name: "control plane without the API", after: controlPlane, old: "value: api,jobs", new: "value: jobs", want: `LOCKBOX_SERVE "jobs" lacks api`},
		{name: "unknown component", after: controlPlane, old: "value: api,jobs", new: "value: api,jobs,console", want: `"console" is not one of proxy, api, jobs`},
		{name: "control plane holds the signing key", old: "  LOCKBOX_AUDIT_RETENTION: 8760h\n", new: "  LOCKBOX_AUDIT_RETENTION: 8760h\n  LOCKBOX_PROXY_SIGNING_KEY_FILE: /etc/lockbox/keys/grant-signing-key.pem\n", want: "control plane runs no proxy and holds no grant signing key"},
		{name: "control plane API on loopback", after: controlPlane, old: "value: 0.0.0.0:8080", new: "value: 127.0.0.1:8080", want: "LOCKBOX_API_ADDR 127.0.0.1:8080 is loopback"},
		{name: "tenant port declared", after: tenant, old: "        name: exchange\n", new: "        name: exchange\n        ports:\n        - containerPort: 9001\n", want: "container exchange declares ports"},
		{name: "tenant HTTP probe", after: tenant, old: "        livenessProbe:\n          exec:\n            command:\n            - /exchange\n            - healthcheck\n            - --addr=127.0.0.1:9001\n", new: "        livenessProbe:\n          httpGet:\n            path: /healthz\n            port: 9001\n", want: "has a network probe"},
		{name: "missing ConfigMap", after: sidecar, old: "name: lockbox-sidecar-", new: "name: lockbox-sidekick-", want: `names ConfigMap "lockbox-sidekick-`},
		{name: "policy on subPath", after: sidecar, old: "name: lockbox-policy\n          readOnly: true", new: "name: lockbox-policy\n          subPath: lockbox\n          readOnly: true", want: "subPath mount"},
		{name: "no token keys", old: "  LOCKBOX_JWT_JWKS_FILE: /etc/lockbox/keys/jwks.json\n", new: "", want: "nothing verifies tokens"},
		{name: "two token key settings", old: "  LOCKBOX_JWT_JWKS_FILE: /etc/lockbox/keys/jwks.json\n", new: "  LOCKBOX_JWT_JWKS_FILE: /etc/lockbox/keys/jwks.json\n  LOCKBOX_JWT_JWKS_URL: https://login.provider.example/keys\n", want: "more than one of LOCKBOX_JWT_JWKS_URL"},
		{name: "issuers file on a Secret", old: "  LOCKBOX_JWT_JWKS_FILE: /etc/lockbox/keys/jwks.json\n", new: "  LOCKBOX_ISSUERS_FILE: /etc/lockbox/keys/issuers.yaml\n", want: "LOCKBOX_ISSUERS_FILE /etc/lockbox/keys/issuers.yaml is not on a mounted ConfigMap"},
		{name: "key outside a Secret", old: "LOCKBOX_JWT_JWKS_FILE: /etc/lockbox/keys/jwks.json", new: "LOCKBOX_JWT_JWKS_FILE: /etc/lockbox/policy/jwks.json", want: "LOCKBOX_JWT_JWKS_FILE /etc/lockbox/policy/jwks.json is not on a mounted Secret"},
		{name: "metrics on loopback", after: controlPlane, old: "value: 0.0.0.0:8082", new: "value: 127.0.0.1:8082", want: "is loopback: probes and Prometheus can't reach it"},
		{name: "probe on the proxy port", after: sidecar, old: "path: /readyz\n            port: 8082", new: "path: /readyz\n            port: 8081", want: "readiness probe port 8081 is not the metrics port 8082"},
		{name: "no limits", after: sidecar, old: "          limits:\n            cpu: 500m\n            memory: 256Mi\n", new: "", want: "no cpu limit"},
		{name: "writable root", after: sidecar, old: "readOnlyRootFilesystem: true", new: "readOnlyRootFilesystem: false", want: "root file system is not read-only"},
		{name: "TLS certificate on subPath", after: sidecar, old: "- mountPath: /etc/lockbox/tls\n          name: lockbox-tls\n          readOnly: true",
			new:  "- mountPath: /etc/lockbox/tls/tls.key\n          name: lockbox-tls\n          readOnly: true\n          subPath: tls.key\n        - mountPath: /etc/lockbox/tls/tls.crt\n          name: lockbox-tls\n          readOnly: true\n          subPath: tls.crt",
			want: "LOCKBOX_TLS_KEY_FILE /etc/lockbox/tls/tls.key is a subPath mount, which never sees the Secret's updates"},
		{name: "TLS key not projected", after: sidecar, old: "          - key: tls.key\n            path: tls.key\n", new: "",
			want: "LOCKBOX_TLS_KEY_FILE /etc/lockbox/tls/tls.key is not among the items volume lockbox-tls projects"},
		{name: "TLS key in a ConfigMap", old: "LOCKBOX_TLS_KEY_FILE: /etc/lockbox/tls/tls.key", new: "LOCKBOX_TLS_KEY_FILE: /etc/lockbox/policy/tls.key",
			want: "LOCKBOX_TLS_KEY_FILE /etc/lockbox/policy/tls.key is not on a mounted Secret"},
		{name: "HTTP probes of a TLS metrics port", after: sidecar, old: "value: proxy\n", new: "value: proxy\n        - name: LOCKBOX_TLS_LISTENERS\n          value: proxy,metrics\n",
			want: "readiness probe scheme HTTP, but the metrics port serves HTTPS"},
		{name: "HTTPS probe of a plain metrics port", after: sidecar, old: "path: /livez\n            port: 8082\n          periodSeconds: 1\n        volumeMounts", new: "path: /livez\n            port: 8082\n            scheme: HTTPS\n          periodSeconds: 1\n        volumeMounts",
			want: "startup probe scheme HTTPS, but the metrics port serves HTTP"},
		{name: "unknown Certificate field", after: "kind: Certificate", old: "  renewBefore: 720h", new: "  renewBfore: 720h", want: `unknown field "spec.renewBfore"`},
		{name: "no Redis", after: controlPlane, old: "        - name: LOCKBOX_REDIS_URL\n", new: "        - name: LOCKBOX_REDIS_NOTHING\n", want: "sets []: exactly one of LOCKBOX_REDIS_URL, LOCKBOX_REDIS_SENTINEL_ADDRS, LOCKBOX_REDIS_CLUSTER_ADDRS names its Redis"},
		{name: "two Redis", after: sidecar, old: "value: proxy\n", new: "value: proxy\n        - name: LOCKBOX_REDIS_CLUSTER_ADDRS\n          value: redis-0.redis:6379\n", want: "sets [LOCKBOX_REDIS_URL LOCKBOX_REDIS_CLUSTER_ADDRS]: exactly one"},
		{name: "Redis password outside a Secret", after: sidecar, old: "value: proxy\n", new: "value: proxy\n        - name: LOCKBOX_REDIS_PASSWORD_FILE\n          value: /etc/lockbox/policy/redis-password\n", want: "LOCKBOX_REDIS_PASSWORD_FILE /etc/lockbox/policy/redis-password is not on a mounted Secret"},
		{name: "one replica", after: controlPlane, old: "replicas: 2", new: "replicas: 1", want: "fewer than 2 replicas"},
		{name: "disruption budget evicts none", after: "kind: PodDisruptionBudget", old: "minAvailable: 1", new: "minAvailable: 2", want: "PodDisruptionBudget lockbox lets none of its 2 replicas be evicted"},
		{name: "disruption budget of every replica", after: "kind: PodDisruptionBudget", old: "minAvailable: 1", new: "minAvailable: 100%", want: "lets none of its 2 replicas be evicted"},
		{
			name: "tenant disruption budget evicts none", after: "kind: PodDisruptionBudget",
			old:  "  name: lockbox\n  namespace: lockbox\nspec:\n  minAvailable: 1\n  selector:\n    matchLabels:\n      app.kubernetes.io/component: control-plane\n      app.kubernetes.io/name: lockbox\n",
			new:  "  name: exchange\n  namespace: exchange\nspec:\n  minAvailable: 2\n  selector:\n    matchLabels:\n      app.kubernetes.io/name: exchange\n",
			want: "(Deployment exchange): PodDisruptionBudget exchange lets none of its 2 replicas be evicted",
		},
		{name: "tenant without disruption budget", after: "name: lockbox-exchange\n  namespace: exchange\nspec:\n  maxUnavailable: 1", old: "      app.kubernetes.io/name: exchange\n  unhealthy", new: "      app.kubernetes.io/name: other\n  unhealthy", want: "(Deployment exchange): no PodDisruptionBudget selects its pods: a node drain may evict all 2 replicas at once"},
		{
			name: "two disruption budgets", after: "name: lockbox-exchange\n  namespace: exchange\nspec:\n  maxUnavailable: 1", old: "---\n",
			new:  "---\napiVersion: policy/v1\nkind: PodDisruptionBudget\nmetadata:\n  name: exchange\n  namespace: exchange\nspec:\n  maxUnavailable: 1\n  selector:\n    matchLabels:\n      app.kubernetes.io/name: exchange\n  unhealthyPodEvictionPolicy: AlwaysAllow\n---\n",
			want: "(Deployment exchange): PodDisruptionBudgets lockbox-exchange, exchange all select its pods: the eviction API refuses a pod more than one budget selects",
		},
		{name: "disruption budget waits for unready pods", after: "kind: PodDisruptionBudget", old: "  unhealthyPodEvictionPolicy: AlwaysAllow\n", new: "", want: "(PodDisruptionBudget lockbox): unhealthyPodEvictionPolicy unset (IfHealthyBudget), want AlwaysAllow"},
		{
			name: "tenant disruption budget waits for unready pods", after: "name: lockbox-exchange\n  namespace: exchange\nspec:\n  maxUnavailable: 1",
			old: "unhealthyPodEvictionPolicy: AlwaysAllow", new: "unhealthyPodEvictionPolicy: IfHealthyBudget",
			want: "(PodDisruptionBudget lockbox-exchange): unhealthyPodEvictionPolicy IfHealthyBudget, want AlwaysAllow",
		},
		{
			// As the sidecar component's budget was: every pod with the
			// sidecar in the namespace, another service's too.
			name: "disruption budget of two workloads", after: "name: lockbox-exchange\n  namespace: exchange\nspec:\n  maxUnavailable: 1",
			old:  "      app.kubernetes.io/name: exchange\n  unhealthyPodEvictionPolicy: AlwaysAllow\n---\n",
			new:  "      lockbox/sidecar: \"true\"\n  unhealthyPodEvictionPolicy: AlwaysAllow\n---\napiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: sharepoint\n  namespace: exchange\nspec:\n  replicas: 2\n  selector:\n    matchLabels:\n      app.kubernetes.io/name: sharepoint\n  template:\n    metadata:\n      labels:\n        app.kubernetes.io/name: sharepoint\n        lockbox/sidecar: \"true\"\n    spec:\n      containers:\n      - image: registry.tenant.example/sharepoint:1.0\n        name: sharepoint\n        securityContext:\n          allowPrivilegeEscalation: false\n          capabilities:\n            drop:\n            - ALL\n          runAsNonRoot: true\n          seccompProfile:\n            type: RuntimeDefault\n---\n",
			want: "(PodDisruptionBudget lockbox-exchange): selects the pods of 2 workloads",
		},
		{
			// A budget for the exchange service's pods in the control
			// plane's namespace, where none of them run.
			name: "disruption budget of no workload", after: "name: lockbox-exchange\n  namespace: exchange\nspec:\n  maxUnavailable: 1", old: "---\n",
			new:  "---\napiVersion: policy/v1\nkind: PodDisruptionBudget\nmetadata:\n  name: lockbox-exchange\n  namespace: lockbox\nspec:\n  maxUnavailable: 1\n  selector:\n    matchLabels:\n      app.kubernetes.io/name: exchange\n  unhealthyPodEvictionPolicy: AlwaysAllow\n---\n",
			want: "(PodDisruptionBudget lockbox-exchange): selects no pod of any workload rendered with it",
		},
		{
			// As components/issuers rendered in a tenant's namespace: a
			// policy for the control plane's pods, none of which run there.
			name: "network policy of no workload", after: "name: lockbox-exchange\n  namespace: exchange\nspec:\n  maxUnavailable: 1", old: "---\n",
			new:  "---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n  name: lockbox-identity-providers\n  namespace: exchange\nspec:\n  egress:\n  - ports:\n    - port: 443\n      protocol: TCP\n    to:\n    - ipBlock:\n        cidr: 0.0.0.0/0\n  podSelector:\n    matchLabels:\n      app.kubernetes.io/component: control-plane\n      app.kubernetes.io/name: lockbox\n  policyTypes:\n  - Ingress\n  - Egress\n---\n",
			want: "(NetworkPolicy lockbox-identity-providers): selects no pod of any workload rendered with it",
		},
		{
			// An empty selector selects every pod of its namespace: this
			// budget covers the exchange pods their own budget does.
			name: "disruption budget of the whole namespace", after: "name: lockbox-exchange\n  namespace: exchange\nspec:\n  maxUnavailable: 1", old: "---\n",
			new:  "---\napiVersion: policy/v1\nkind: PodDisruptionBudget\nmetadata:\n  name: everything\n  namespace: exchange\nspec:\n  maxUnavailable: 1\n  selector: {}\n  unhealthyPodEvictionPolicy: AlwaysAllow\n---\n",
			want: "PodDisruptionBudgets lockbox-exchange, everything all select its pods",
		},
		{name: "no disruption budget", after: "kind: PodDisruptionBudget", old: "    matchLabels:\n      app.kubernetes.io/component: control-plane", new: "    matchLabels:\n      app.kubernetes.io/component: other", want: "no PodDisruptionBudget selects its pods"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			doc := string(good)
			start := strings.Index(doc, tc.after)
			i := -1
			if start >= 0 {
				i = strings.Index(doc[start:], tc.old)
			}
			if i < 0 {
				t.Fatalf("the fixture has no %q after %q", tc.old, tc.after)
			}
			i += start
			doc = doc[:i] + tc.new + doc[i+len(tc.old):]
			errs := check(t, doc)
			found := false
			for _, err := range errs {
				found = found || strings.Contains(err.Error(), tc.want)
			}
			if !found {
				t.Fatalf("errors %v\nwant one containing %q", errs, tc.want)
			}
		})
	}
	// Each case's change is what failed it: the fixture alone passes.
	if errs := check(t, string(good)); len(errs) > 0 {
		t.Fatalf("the good fixture: %v", errs)
	}
	// A policy with an empty pod selector (a namespace's default deny)
	// selects every pod of its namespace, the workloads there included.
	denyAll := "\n---\napiVersion: networking.k8s.io/v1\nkind: NetworkPolicy\nmetadata:\n  name: default-deny\n  namespace: exchange\nspec:\n  podSelector: {}\n  policyTypes:\n  - Ingress\n  - Egress\n"
	if errs := check(t, string(good)+denyAll); len(errs) > 0 {
		t.Fatalf("the good fixture and a default deny: %v", errs)
	}
	if errs := check(t, "# nothing\n---\n"); len(errs) != 1 || !strings.Contains(errs[0].Error(), "no objects") {
		t.Fatalf("an empty render: %v", errs)
	}
}

func check(t *testing.T, doc string) []error {
	t.Helper()
	name := filepath.Join(t.TempDir(), "bundle.yaml")
	if err := os.WriteFile(name, []byte(doc), 0o600); err != nil {
		t.Fatal(err)
	}
	_, errs := checkFile(name)
	return errs
}
