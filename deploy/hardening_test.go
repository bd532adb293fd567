package deploy_test

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestDockerContextSendsNoWalkthroughSecrets: README's kustomize
// walk-through runs from the repository root (its kubectl apply -k paths
// are relative to it) and leaves there the grant signing private key it
// generates (openssl genpkey -out grant-signing-key.pem), the secret files
// it reads (--from-file=..., --cert/--key) and the CA it writes; the
// auditing walk-through leaves a tenant's audit export (contoso-audit.csv,
// personal data), the published keys and the seal files. README's image
// step then builds from that same root (docker build -f deploy/Dockerfile
// ... .), and the build stage runs COPY . . : whatever
// Dockerfile.dockerignore does not exclude is sent to the builder and
// written into the build stage's layer, the private key that signs
// X-Lockbox-Grant included (kept in the builder's cache, and pushed with
// it by any registry cache export of all stages, cache-to mode=max). The
// ignore file now takes back only the module and its source directories.
func TestDockerContextSendsNoWalkthroughSecrets(t *testing.T) {
	readme := string(readFile(t, "../README.md"))
	_, section, ok := strings.Cut(readme, "### From zero to a sidecar in front of a tenant service (kustomize)")
	if !ok {
		t.Fatal("README.md has no kustomize walk-through")
	}
	_, block, _ := strings.Cut(section, "```sh\n")
	block, _, _ = strings.Cut(block, "```")
	block = strings.ReplaceAll(block, "\\\n", " ")
	var commands []string // the lines it runs, not its comments
	for line := range strings.SplitSeq(block, "\n") {
		if l := strings.TrimSpace(line); l != "" && !strings.HasPrefix(l, "#") {
			commands = append(commands, l)
		}
	}
	block = strings.Join(commands, "\n")
	var files []string
	for _, re := range []*regexp.Regexp{
		regexp.MustCompile(`-out\s+(\S+)`),
		regexp.MustCompile(`>\s*([A-Za-z0-9._-]+)`),
		regexp.MustCompile(`--from-file=(?:[A-Za-z0-9._-]+=)?([A-Za-z0-9._/-]+)`),
		regexp.MustCompile(`--(?:cert|key)=(\S+)`),
	} {
		for _, m := range re.FindAllStringSubmatch(block, -1) {
			files = append(files, m[1])
		}
	}
	if !strings.Contains(strings.Join(files, " "), "grant-signing-key.pem") {
		t.Fatalf("the walk-through no longer writes grant-signing-key.pem (found %q): update this test", files)
	}
	// What README's auditing walk-through writes where it runs (listed as
	// such in .gitignore).
	files = append(files, "contoso-audit.csv", "lockbox-keys.json", "audit-seals/contoso.seal")
	if !strings.Contains(readme, "docker build -f deploy/Dockerfile") {
		t.Fatal("README.md no longer builds the image from the repository root: update this test")
	}
	ignore := readDockerignore(t, "Dockerfile.dockerignore")
	// And anything else the root may come to hold.
	files = append(files, "new-signing-key.pem", "notes/secret.txt", "bin/lockbox", ".lockbox-dev/dev-signing-key.pem", "deploy/README.md")
	for _, f := range []string{"go.mod", "go.sum", "cmd/lockbox/main.go", "api/openapi.yaml", "rego/lockbox/authz/authz.rego", "internal/keys/keys.go"} {
		if ignore.excludes(f) {
			t.Errorf("%s is excluded from the build context: the image is built from it", f)
		}
	}
	if !ignore.excludes("proxy/handler_test.go") {
		t.Error("tests are sent to the builder")
	}
	slices.Sort(files)
	for _, f := range slices.Compact(files) {
		if !ignore.excludes(f) {
			t.Errorf("%s, which may be in the repository root (README's walk-through leaves it there), is not excluded by deploy/Dockerfile.dockerignore: docker build sends it and COPY . . writes it into the build stage", f)
		}
	}
}

// helmTemplate runs helm template and returns its output and error.
func helmTemplate(t *testing.T, release string, values ...string) ([]byte, error) {
	t.Helper()
	args := []string{"template", release, "../deploy/helm/lockbox", "--namespace", release, "--kube-version", kubeVersion(t)}
	for _, v := range values {
		args = append(args, "-f", v)
	}
	cmd := toolCommand(t, "helm", args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		return nil, errors.New(stderr.String())
	}
	return out, nil
}

// TestHelmRefusesSidecarWithControlPlane: controlPlane.enabled defaults to
// true, and nothing refused it beside sidecar.enabled. A sidecar release
// written as values.yaml describes one, installed as the examples are
// (release named after its service), rendered a second control plane in
// the tenant's namespace and two NetworkPolicies named "<release>-lockbox":
// helm install failed half-way on the second, and helm template | kubectl
// apply kept the last, leaving the control-plane pods without one. The
// chart now refuses the combination, saying what to set.
func TestHelmRefusesSidecarWithControlPlane(t *testing.T) {
	values := writeIn(t, t.TempDir(), "sidecar.yaml", "sidecar:\n  enabled: true\n  service: exchange\n"+
		"  workload:\n    name: exchange\n    image: registry.tenant.example/exchange:1.0\n"+
		"    args: [\"--listen=127.0.0.1:9001\"]\n")
	_, err := helmTemplate(t, "exchange", values)
	if err == nil || !strings.Contains(err.Error(), "controlPlane.enabled: false") {
		t.Errorf("a sidecar release with the control plane enabled: %v; want it refused, naming controlPlane.enabled: false", err)
	}
	if _, err := helmTemplate(t, "exchange", "../deploy/helm/examples/exchange.yaml"); err != nil {
		t.Errorf("the sidecar example: %v", err)
	}
}

// TestHelmRefusesPrivateGrantKeys: controlPlane.grantPublicKeys and
// sidecar.grantPublicKey are documented as the public halves of the grant
// signing key, and the chart writes them to ConfigMaps: the sidecar's is
// mounted in the tenant service's own container, and Lockbox reads
// LOCKBOX_PROXY_PUBLISHED_KEY_FILES as "public (or private) keys". Given
// the private key (the PEM in Secret lockbox-keys, the file an operator
// has at hand), the chart renders it into those ConfigMaps without a word:
// anyone who may read ConfigMaps in either namespace, and the tenant
// service's container, can then mint X-Lockbox-Grant assertions the
// upstream trusts, and the control plane, which must never hold the
// signing key, holds it. The chart now refuses it, naming the value.
func TestHelmRefusesPrivateGrantKeys(t *testing.T) {
	_, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	privPEM := string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}))
	indent := func(s, pad string) string {
		return pad + strings.ReplaceAll(strings.TrimSuffix(s, "\n"), "\n", "\n"+pad) + "\n"
	}
	dir := t.TempDir()
	pubDER, err := x509.MarshalPKIXPublicKey(priv.Public())
	if err != nil {
		t.Fatal(err)
	}
	pubPEM := string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: pubDER}))
	for _, tc := range []struct{ release, base, values, field string }{
		{"control-plane", "helm/examples/control-plane.yaml", "controlPlane:\n  grantPublicKeys:\n    - |\n%s", "controlPlane.grantPublicKeys[0]"},
		{"exchange", "helm/examples/exchange.yaml", "sidecar:\n  grantPublicKey: |\n%s", "sidecar.grantPublicKey"},
	} {
		pad := "    "
		if tc.release == "control-plane" {
			pad = "      "
		}
		f := writeIn(t, dir, tc.release+".yaml", fmt.Sprintf(tc.values, indent(privPEM, pad)))
		out, err := helmTemplate(t, tc.release, "../deploy/"+tc.base, f)
		if err == nil || !strings.Contains(err.Error(), tc.field+" is a private key") {
			t.Errorf("%s: a private key given as the grant public key: %v; want it refused, naming %s", tc.release, err, tc.field)
		}
		if bytes.Contains(out, []byte("PRIVATE KEY")) {
			t.Errorf("%s: the private key is rendered", tc.release)
		}
		f = writeIn(t, dir, tc.release+"-pub.yaml", fmt.Sprintf(tc.values, indent(pubPEM, pad)))
		if out, err := helmTemplate(t, tc.release, "../deploy/"+tc.base, f); err != nil || !bytes.Contains(out, []byte(strings.Split(pubPEM, "\n")[1])) {
			t.Errorf("%s: the public key: %v, rendered %t", tc.release, err, err == nil)
		}
	}
}

// TestEnsureDepsLeavesNoPolicyRcD: scripts/ensure-deps.sh, run as
// root (a CI container, a dev VM), writes /usr/sbin/policy-rc.d ("exit
// 101": start no service) when there is none, so that apt does not start
// prometheus, and removes it after apt-get install. Under "set -eu" a
// failing apt-get install (a mirror down, no network) exited the script
// before the removal, and the file stayed: from then on every package the
// machine installs is silently left stopped (invoke-rc.d obeys it), long
// after make test failed and was forgotten. Run in a private mount
// namespace with an empty directory over /usr/sbin, so the host's is
// untouched.
func TestEnsureDepsLeavesNoPolicyRcD(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root, as the script's apt-get branch does")
	}
	if err := exec.Command("unshare", "-m", "--propagation", "private", "true").Run(); err != nil {
		t.Skipf("no private mount namespace here: %v", err)
	}
	script, err := filepath.Abs("../scripts/ensure-deps.sh")
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	sbin, bin := filepath.Join(dir, "sbin"), filepath.Join(dir, "bin")
	for _, d := range []string{sbin, bin} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// The script's own commands, and a go and an apt-get whose install
	// fails; nothing else, so the tools it looks for are missing.
	for _, c := range []string{"id", "chmod", "rm"} {
		p, err := exec.LookPath(c)
		if err != nil {
			t.Skip(err)
		}
		if err := os.Symlink(p, filepath.Join(bin, c)); err != nil {
			t.Fatal(err)
		}
	}
	fake := map[string]string{
		"go":      "#!/bin/sh\nexit 0\n",
		"apt-get": "#!/bin/sh\ncase \"$1\" in update) exit 0;; esac\necho 'E: Unable to fetch some archives' >&2\nexit 100\n",
	}
	for name, body := range fake {
		if err := os.WriteFile(filepath.Join(bin, name), []byte(body), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command("unshare", "-m", "--propagation", "private", "/bin/sh", "-c",
		`mount --bind "$1" /usr/sbin && env -i PATH="$2" /bin/sh "$3"`, "sh", sbin, bin, script)
	out, err := cmd.CombinedOutput()
	if err == nil {
		t.Fatalf("ensure-deps.sh succeeded with apt-get install failing:\n%s", out)
	}
	if _, err := os.Stat(filepath.Join(sbin, "policy-rc.d")); err == nil {
		t.Errorf("ensure-deps.sh failed (apt-get install failed) and left /usr/sbin/policy-rc.d behind: every later apt install on this machine starts no service\n%s", out)
	}
}
