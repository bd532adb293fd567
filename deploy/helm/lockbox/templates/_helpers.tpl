{{/* Names and labels. */}}
{{- define "lockbox.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "lockbox.labels" -}}
app.kubernetes.io/part-of: lockbox
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{/* The selectors add the instance to these, which lockbox.labels has. */}}
{{- define "lockbox.controlPlaneLabels" -}}
app.kubernetes.io/name: lockbox
app.kubernetes.io/component: control-plane
{{- end -}}

{{- define "lockbox.controlPlaneSelector" -}}
{{ include "lockbox.controlPlaneLabels" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "lockbox.workloadLabels" -}}
app.kubernetes.io/name: {{ required "sidecar.workload.name is required" .Values.sidecar.workload.name }}
{{- end -}}

{{- define "lockbox.workloadSelector" -}}
{{ include "lockbox.workloadLabels" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{/*
lockbox.tlsSecretName is the Secret of the release's certificate:
tls.secretName, or one per service with the sidecar, named as its
Certificate, since several sidecar releases may share a namespace.
*/}}
{{- define "lockbox.tlsSecretName" -}}
{{- if .Values.tls.secretName -}}
{{- .Values.tls.secretName -}}
{{- else if .Values.sidecar.enabled -}}
{{- required "sidecar.workload.name is required" .Values.sidecar.workload.name }}-lockbox-tls
{{- else -}}
lockbox-tls
{{- end -}}
{{- end -}}

{{/* lockbox.metricsTLS is "true" when the metrics port serves TLS. */}}
{{- define "lockbox.metricsTLS" -}}
{{- if and .Values.tls.enabled (has "metrics" (splitList "," (.Values.tls.listeners | replace " " ""))) -}}true{{- end -}}
{{- end -}}

{{/* lockbox.probeScheme is the scheme of probes on the metrics port. */}}
{{- define "lockbox.probeScheme" -}}
{{- if include "lockbox.metricsTLS" . }}HTTPS{{ else }}HTTP{{ end -}}
{{- end -}}

{{/*
lockbox.envValue is a setting of config or controlPlane.config as its
variable's text. Helm reads a values file's numbers as floats, which
toString writes with an exponent from a million up ("1.34217728e+08"),
and no integer setting parses that: a whole number is written whole.
*/}}
{{- define "lockbox.envValue" -}}
{{- if and (kindIs "float64" .) (eq . (. | int64 | float64)) -}}
{{- . | int64 | toString -}}
{{- else -}}
{{- . | toString -}}
{{- end -}}
{{- end -}}

{{- define "lockbox.image" -}}
{{ .Values.image.repository }}:{{ .Values.image.tag | default .Chart.AppVersion }}
{{- end -}}

{{/*
lockbox.container is the lockbox container of both pod kinds. Call with
(dict "root" $ "sidecar" true|false). The sidecar runs the proxy alone; the
control plane runs the API and the jobs (request expiry, notifications, the
SIEM stream), so it needs no upstream and never holds the grant signing key,
and the SMTP secret never enters a tenant's pod.
*/}}
{{- define "lockbox.container" -}}
{{- $ := .root -}}
{{- $p := $.Values.ports -}}
- name: lockbox
  image: {{ include "lockbox.image" $ }}
  imagePullPolicy: {{ $.Values.image.pullPolicy }}
  args: ["serve"]
  {{- if .sidecar }}
  restartPolicy: Always
  {{- end }}
  ports:
    {{- if .sidecar }}
    - name: lockbox-proxy
      containerPort: {{ $p.proxy }}
    {{- else }}
    - name: lockbox-api
      containerPort: {{ $p.api }}
    {{- end }}
    - name: lockbox-metrics
      containerPort: {{ $p.metrics }}
  envFrom:
    - configMapRef:
        name: {{ include "lockbox.fullname" $ }}-config
    {{- if not .sidecar }}
    - configMapRef:
        name: {{ include "lockbox.fullname" $ }}-control-plane
    {{- end }}
  env:
    - name: LOCKBOX_METRICS_ADDR
      value: "0.0.0.0:{{ $p.metrics }}"
    {{- if .sidecar }}
    - name: LOCKBOX_SERVE
      value: "proxy"
    - name: LOCKBOX_PROXY_ADDR
      value: "0.0.0.0:{{ $p.proxy }}"
    - name: LOCKBOX_UPSTREAMS
      value: "{{ required "sidecar.service is required" $.Values.sidecar.service }}=http://127.0.0.1:{{ $.Values.sidecar.workload.port }}"
    - name: LOCKBOX_PROXY_SIGNING_KEY_FILE
      value: /etc/lockbox/keys/grant-signing-key.pem
    {{- if $.Values.sidecar.assertionSecret.name }}
    - name: LOCKBOX_PROXY_ASSERTION_SECRET_FILES
      value: "{{ $.Values.sidecar.service }}=/etc/lockbox/assertion/{{ required "sidecar.assertionSecret.key is required" $.Values.sidecar.assertionSecret.key }}"
    {{- end }}
    {{- else }}
    - name: LOCKBOX_SERVE
      value: "api,jobs"
    - name: LOCKBOX_API_ADDR
      value: "0.0.0.0:{{ $p.api }}"
    # Replicas share the SIEM consumer group; each needs a stable name.
    - name: LOCKBOX_SIEM_CONSUMER
      valueFrom:
        fieldRef:
          fieldPath: metadata.name
    {{- with $.Values.controlPlane.grantPublicKeys }}
    # Published at GET /v1/keys: the public halves only.
    - name: LOCKBOX_PROXY_PUBLISHED_KEY_FILES
      value: "{{ range $i, $_ := . }}{{ if $i }},{{ end }}/etc/lockbox/grant-keys/key-{{ $i }}.pem{{ end }}"
    {{- end }}
    {{- end }}
    {{- include "lockbox.redisEnv" $ | nindent 4 }}
    {{- if $.Values.tls.enabled }}
    # Re-read when the kubelet updates the Secret: renewals need no restart.
    - name: LOCKBOX_TLS_CERT_FILE
      value: /etc/lockbox/tls/tls.crt
    - name: LOCKBOX_TLS_KEY_FILE
      value: /etc/lockbox/tls/tls.key
    - name: LOCKBOX_TLS_LISTENERS
      value: {{ $.Values.tls.listeners | quote }}
    {{- if and (not .sidecar) $.Values.tls.clientCA.secretName }}
    - name: LOCKBOX_TLS_CLIENT_CA_FILE
      value: /etc/lockbox/client-ca/{{ $.Values.tls.clientCA.key }}
    {{- end }}
    {{- end }}
  livenessProbe:
    httpGet:
      path: /livez
      port: {{ $p.metrics }}
      scheme: {{ include "lockbox.probeScheme" $ }}
    periodSeconds: 10
    failureThreshold: 3
  # 503 while Redis does not answer or no policy is loaded.
  readinessProbe:
    httpGet:
      path: /readyz
      port: {{ $p.metrics }}
      scheme: {{ include "lockbox.probeScheme" $ }}
    # Each check may take a second and still pass: wait for the answer.
    timeoutSeconds: 2
    periodSeconds: 5
    failureThreshold: 2
  {{- if .sidecar }}
  # The tenant service starts only once this passes.
  startupProbe:
    httpGet:
      path: /livez
      port: {{ $p.metrics }}
      scheme: {{ include "lockbox.probeScheme" $ }}
    periodSeconds: 1
    failureThreshold: 30
  {{- end }}
  resources:
    {{- toYaml (ternary $.Values.sidecar.resources $.Values.controlPlane.resources .sidecar) | nindent 4 }}
  securityContext:
    allowPrivilegeEscalation: false
    readOnlyRootFilesystem: true
    runAsNonRoot: true
    runAsUser: 65532
    runAsGroup: 65532
    capabilities:
      drop: ["ALL"]
    seccompProfile:
      type: RuntimeDefault
  volumeMounts:
    - name: lockbox-policy
      mountPath: /etc/lockbox/policy
      readOnly: true
    {{- if include "lockbox.keyItems" . }}
    - name: lockbox-keys
      mountPath: /etc/lockbox/keys
      readOnly: true
    {{- end }}
    {{- if $.Values.identity.issuers }}
    - name: lockbox-issuers
      mountPath: /etc/lockbox/issuers
      readOnly: true
    {{- end }}
    {{- if not .sidecar }}
    - name: lockbox-smtp
      mountPath: /etc/lockbox/smtp
      readOnly: true
    {{- if hasKey ($.Values.controlPlane.config | default dict) "LOCKBOX_WEBHOOK_URLS" }}
    - name: lockbox-webhook
      mountPath: /etc/lockbox/webhook
      readOnly: true
    {{- end }}
    {{- if include "lockbox.consoleClients" $ }}
    - name: lockbox-console-clients
      mountPath: /etc/lockbox/console-clients
      readOnly: true
    {{- end }}
    {{- if $.Values.controlPlane.grantPublicKeys }}
    - name: lockbox-grant-keys
      mountPath: /etc/lockbox/grant-keys
      readOnly: true
    {{- end }}
    {{- end }}
    {{- if and .sidecar $.Values.sidecar.assertionSecret.name }}
    - name: lockbox-assertion
      mountPath: /etc/lockbox/assertion
      readOnly: true
    {{- end }}
    {{- if $.Values.redis.auth.secret }}
    - name: lockbox-redis-auth
      mountPath: /etc/lockbox/redis-auth
      readOnly: true
    {{- end }}
    {{- if $.Values.redis.tls.secret }}
    - name: lockbox-redis-tls
      mountPath: /etc/lockbox/redis-tls
      readOnly: true
    {{- end }}
    {{- if $.Values.tls.enabled }}
    - name: lockbox-tls
      mountPath: /etc/lockbox/tls
      readOnly: true
    {{- if and (not .sidecar) $.Values.tls.clientCA.secretName }}
    - name: lockbox-client-ca
      mountPath: /etc/lockbox/client-ca
      readOnly: true
    {{- end }}
    {{- end }}
{{- end -}}

{{/*
lockbox.redisEnv: the LOCKBOX_REDIS_ settings of redis (values.yaml), for
every Lockbox of the release.
*/}}
{{- define "lockbox.redisEnv" -}}
{{- $r := .Values.redis -}}
{{- if eq $r.topology "url" }}
- name: LOCKBOX_REDIS_URL
  valueFrom:
    secretKeyRef:
      name: {{ .Values.secrets.redis.name }}
      key: {{ .Values.secrets.redis.key }}
{{- else if eq $r.topology "sentinel" }}
{{- if or (not $r.sentinel.addrs) (not $r.sentinel.master) }}
{{- fail "redis.sentinel.addrs and redis.sentinel.master are required with redis.topology sentinel" }}
{{- end }}
- name: LOCKBOX_REDIS_SENTINEL_ADDRS
  value: {{ join "," $r.sentinel.addrs | quote }}
- name: LOCKBOX_REDIS_SENTINEL_MASTER
  value: {{ $r.sentinel.master | quote }}
{{- else if eq $r.topology "cluster" }}
{{- if not $r.cluster.addrs }}
{{- fail "redis.cluster.addrs is required with redis.topology cluster" }}
{{- end }}
- name: LOCKBOX_REDIS_CLUSTER_ADDRS
  value: {{ join "," $r.cluster.addrs | quote }}
{{- else }}
{{- fail (printf "redis.topology %q is not one of url, sentinel, cluster" $r.topology) }}
{{- end }}
{{- with $r.username }}
- name: LOCKBOX_REDIS_USERNAME
  value: {{ . | quote }}
{{- end }}
{{- if $r.auth.secret }}
- name: LOCKBOX_REDIS_PASSWORD_FILE
  value: /etc/lockbox/redis-auth/password
{{- end }}
{{- if $r.auth.sentinelPassword }}
{{- if or (ne $r.topology "sentinel") (not $r.auth.secret) }}
{{- fail "redis.auth.sentinelPassword needs redis.topology sentinel and redis.auth.secret" }}
{{- end }}
- name: LOCKBOX_REDIS_SENTINEL_PASSWORD_FILE
  value: /etc/lockbox/redis-auth/sentinel-password
{{- end }}
{{- if $r.tls.enabled }}
{{- if eq $r.topology "url" }}
{{- fail "redis.tls.enabled: with redis.topology url, say TLS with a rediss:// URL" }}
{{- end }}
- name: LOCKBOX_REDIS_TLS
  value: "true"
{{- end }}
{{- if $r.tls.secret }}
- name: LOCKBOX_REDIS_TLS_CA_FILE
  value: /etc/lockbox/redis-tls/ca.crt
{{- if $r.tls.clientCertificate }}
- name: LOCKBOX_REDIS_TLS_CERT_FILE
  value: /etc/lockbox/redis-tls/tls.crt
- name: LOCKBOX_REDIS_TLS_KEY_FILE
  value: /etc/lockbox/redis-tls/tls.key
{{- end }}
{{- end }}
{{- end -}}

{{/*
lockbox.volumes are the volumes lockbox.container mounts. Call with
(dict "root" $ "sidecar" true|false).
*/}}
{{- define "lockbox.volumes" -}}
{{- $ := .root -}}
# Never mount the policy with subPath: such mounts are not updated and hot
# reload would never see a change. The proxy decides with the policy; the
# API checks requested activities against the catalog.
- name: lockbox-policy
  projected:
    sources:
      - configMap:
          name: {{ include "lockbox.fullname" $ }}-policy
      - configMap:
          name: {{ include "lockbox.fullname" $ }}-activities
          items:
            - key: data.json
              path: activities/data.json
# Only the lockbox container mounts these, so they can be readable by its
# user without touching the pod's fsGroup.
{{- with include "lockbox.keyItems" . }}
- name: lockbox-keys
  secret:
    secretName: {{ $.Values.secrets.keys.name }}
    defaultMode: 0444
    items:
      {{- . | nindent 6 }}
{{- end }}
{{- if $.Values.identity.issuers }}
- name: lockbox-issuers
  configMap:
    name: {{ include "lockbox.fullname" $ }}-issuers
{{- end }}
{{- if not .sidecar }}
- name: lockbox-smtp
  secret:
    secretName: {{ $.Values.secrets.smtp.name }}
    defaultMode: 0444
    optional: true
{{- if hasKey ($.Values.controlPlane.config | default dict) "LOCKBOX_WEBHOOK_URLS" }}
# The key that signs webhook deliveries (LOCKBOX_WEBHOOK_SECRET_FILE).
- name: lockbox-webhook
  secret:
    secretName: {{ $.Values.secrets.webhook.name }}
    defaultMode: 0444
    items:
      - key: secret
        path: secret
{{- end }}
{{- if include "lockbox.consoleClients" $ }}
- name: lockbox-console-clients
  secret:
    secretName: {{ $.Values.secrets.consoleClients.name }}
    defaultMode: 0444
    optional: true
{{- end }}
{{- if $.Values.controlPlane.grantPublicKeys }}
- name: lockbox-grant-keys
  configMap:
    name: {{ include "lockbox.fullname" $ }}-grant-keys
{{- end }}
{{- end }}
{{- if and .sidecar $.Values.sidecar.assertionSecret.name }}
# The service's assertion secret (LOCKBOX_PROXY_ASSERTION_SECRET_FILES).
- name: lockbox-assertion
  secret:
    secretName: {{ $.Values.sidecar.assertionSecret.name }}
    defaultMode: 0444
    items:
      - key: {{ $.Values.sidecar.assertionSecret.key }}
        path: {{ $.Values.sidecar.assertionSecret.key }}
{{- end }}
{{- if $.Values.tls.enabled }}
# Never with subPath: such mounts miss the kubelet's updates, and a renewed
# certificate would never be served.
- name: lockbox-tls
  secret:
    secretName: {{ include "lockbox.tlsSecretName" $ }}
    defaultMode: 0444
    items:
      - key: tls.crt
        path: tls.crt
      - key: tls.key
        path: tls.key
{{- if and (not .sidecar) $.Values.tls.clientCA.secretName }}
- name: lockbox-client-ca
  secret:
    secretName: {{ $.Values.tls.clientCA.secretName }}
    defaultMode: 0444
    items:
      - key: {{ $.Values.tls.clientCA.key }}
        path: {{ $.Values.tls.clientCA.key }}
{{- end }}
{{- end }}
{{- with $.Values.redis.auth }}
{{- if .secret }}
- name: lockbox-redis-auth
  secret:
    secretName: {{ .secret }}
    defaultMode: 0444
    items:
      - key: password
        path: password
      {{- if .sentinelPassword }}
      - key: sentinel-password
        path: sentinel-password
      {{- end }}
{{- end }}
{{- end }}
{{- with $.Values.redis.tls }}
{{- if .secret }}
- name: lockbox-redis-tls
  secret:
    secretName: {{ .secret }}
    defaultMode: 0444
    items:
      - key: ca.crt
        path: ca.crt
      {{- if .clientCertificate }}
      - key: tls.crt
        path: tls.crt
      - key: tls.key
        path: tls.key
      {{- end }}
{{- end }}
{{- end }}
{{- end -}}

{{/*
lockbox.consoleClients is "true" when the control plane mounts
secrets.consoleClients: the admin center signs users in, with the issuers'
console sections or the single issuer controlPlane.config names
(LOCKBOX_OIDC_ISSUER), and reads the client secrets from it.
*/}}
{{- define "lockbox.consoleClients" -}}
{{- if or .Values.identity.issuers (hasKey (.Values.controlPlane.config | default dict) "LOCKBOX_OIDC_ISSUER") -}}true{{- end -}}
{{- end -}}

{{/*
lockbox.keyItems are the keys of secrets.keys a Lockbox container mounts:
the token verification keys it reads (jwks.json, the HMAC secret
config's LOCKBOX_JWT_HMAC_SECRET_FILE names, or with identity.issuers the
files they name), and for a sidecar the grant signing key. Empty when
it reads none. Call with (dict "root" $ "sidecar" true|false).
*/}}
{{- define "lockbox.keyItems" -}}
{{- $ := .root -}}
{{- $keys := list -}}
{{- if $.Values.identity.issuers -}}
{{- $keys = $.Values.identity.keyFiles -}}
{{- else if hasKey $.Values.config "LOCKBOX_JWT_HMAC_SECRET_FILE" -}}
{{- /* Nothing else mounts a Secret in Lockbox's container. */ -}}
{{- $file := index $.Values.config "LOCKBOX_JWT_HMAC_SECRET_FILE" | toString -}}
{{- if ne (dir $file) "/etc/lockbox/keys" -}}
{{- fail (printf "config.LOCKBOX_JWT_HMAC_SECRET_FILE %q: name a key of secrets.keys as /etc/lockbox/keys/<key>, which the chart mounts" $file) -}}
{{- end -}}
{{- $keys = list (base $file) -}}
{{- else if not (hasKey $.Values.config "LOCKBOX_JWT_JWKS_URL") -}}
{{- $keys = list "jwks.json" -}}
{{- end -}}
{{- if .sidecar -}}
{{- $keys = append $keys "grant-signing-key.pem" -}}
{{- end -}}
{{- range $keys }}
- key: {{ . }}
  path: {{ . }}
{{- end -}}
{{- end -}}

{{/*
lockbox.urlPort is the TCP port URL . is reached on: the one it names, or
its scheme's (443 for https, 80 for http); empty for any other URL.
*/}}
{{- define "lockbox.urlPort" -}}
{{- $u := urlParse . -}}
{{- $port := regexFind ":[0-9]+$" $u.host -}}
{{- if $port -}}{{ trimPrefix ":" $port }}
{{- else if eq $u.scheme "https" -}}443
{{- else if eq $u.scheme "http" -}}80
{{- end -}}
{{- end -}}

{{/*
lockbox.identityURLs are the identity providers' URLs a Lockbox pod
fetches, one a line: the JWKS URLs, and for the control plane (call with
controlPlane true) the issuers it signs users in with, whose discovery
documents it reads.
*/}}
{{- define "lockbox.identityURLs" -}}
{{- $controlPlane := .controlPlane -}}
{{- $ := .root -}}
{{- with index $.Values.config "LOCKBOX_JWT_JWKS_URL" }}
{{ . }}
{{- end }}
{{- if $controlPlane }}
{{- with index ($.Values.controlPlane.config | default dict) "LOCKBOX_OIDC_ISSUER" }}
{{ . }}
{{- end }}
{{- end }}
{{- range $.Values.identity.issuers }}
{{- with .jwks_url }}
{{ . }}
{{- end }}
{{- if and $controlPlane .console .issuer }}
{{ .issuer }}
{{- end }}
{{- end }}
{{- end -}}

{{/*
lockbox.egress: DNS, Redis and the identity providers, for every Lockbox
pod. Call with (dict "root" $ "controlPlane" true|false).
*/}}
{{- define "lockbox.egress" -}}
{{- $args := . -}}
{{- $ := .root -}}
{{- $np := $.Values.networkPolicy -}}
- to:
    - namespaceSelector:
        matchLabels:
          kubernetes.io/metadata.name: {{ $np.dns.namespace }}
      podSelector:
        matchLabels:
          {{- toYaml $np.dns.podLabels | nindent 10 }}
  ports:
    - port: 53
      protocol: UDP
    - port: 53
      protocol: TCP
- to:
    - namespaceSelector:
        matchLabels:
          kubernetes.io/metadata.name: {{ $np.redis.namespace }}
      podSelector:
        matchLabels:
          {{- toYaml $np.redis.podLabels | nindent 10 }}
  ports:
    {{- /*
    Beside networkPolicy.redis.ports, the ports the sentinels' or cluster
    nodes' addresses name: on fixed ones alone, Sentinels or nodes on
    others would be blocked, and no pod could start.
    */}}
    {{- $ports := list }}
    {{- range $np.redis.ports }}
    {{- $ports = append $ports (toString .) }}
    {{- end }}
    {{- $addrs := list }}
    {{- if eq $.Values.redis.topology "sentinel" }}
    {{- $addrs = $.Values.redis.sentinel.addrs }}
    {{- else if eq $.Values.redis.topology "cluster" }}
    {{- $addrs = $.Values.redis.cluster.addrs }}
    {{- end }}
    {{- range $addrs }}
    {{- $port := regexFind "[0-9]+$" (regexFind ":[0-9]+$" (toString .)) }}
    {{- if not $port }}
    {{- fail (printf "redis.%s.addrs: %q is not host:port, so networkPolicy can't let Lockbox reach its port" $.Values.redis.topology (toString .)) }}
    {{- end }}
    {{- $ports = append $ports $port }}
    {{- end }}
    {{- range uniq $ports }}
    - port: {{ . }}
      protocol: TCP
    {{- end }}
{{- with $.Values.identity.providerCIDRs }}
{{- /* The ports the URLs name; 443 when no URL is known here. */}}
{{- $ports := list }}
{{- range splitList "\n" (include "lockbox.identityURLs" $args) }}
{{- with trim . }}
{{- $port := include "lockbox.urlPort" . }}
{{- if not $port }}
{{- fail (printf "identity provider URL %q is not an https (or http) URL, so networkPolicy can't let Lockbox reach its port" .) }}
{{- end }}
{{- $ports = append $ports $port }}
{{- end }}
{{- end }}
# The identity providers: their JWKS URLs (and, for the control plane,
# OpenID Connect sign-in).
- to:
    {{- range . }}
    - ipBlock:
        cidr: {{ . }}
    {{- end }}
  ports:
    {{- range uniq (default (list "443") $ports) }}
    - port: {{ . }}
      protocol: TCP
    {{- end }}
{{- end }}
{{- end -}}
