package deploy_test

import (
	"bytes"
	"errors"
	"io"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// TestHelmSidecarAssertionSecret: sidecar.assertionSecret mounts the named
// Secret's key in the Lockbox container alone and names it, for the
// service, in LOCKBOX_PROXY_ASSERTION_SECRET_FILES; without it, neither is
// rendered and the service's assertions stay signed.
func TestHelmSidecarAssertionSecret(t *testing.T) {
	type container struct {
		Name string `yaml:"name"`
		Env  []struct {
			Name  string `yaml:"name"`
			Value string `yaml:"value"`
		} `yaml:"env"`
		VolumeMounts []struct {
			Name      string `yaml:"name"`
			MountPath string `yaml:"mountPath"`
		} `yaml:"volumeMounts"`
	}
	type deployment struct {
		Kind     string `yaml:"kind"`
		Metadata struct {
			Name string `yaml:"name"`
		} `yaml:"metadata"`
		Spec struct {
			Template struct {
				Spec struct {
					InitContainers []container `yaml:"initContainers"`
					Containers     []container `yaml:"containers"`
					Volumes        []struct {
						Name   string `yaml:"name"`
						Secret *struct {
							SecretName string `yaml:"secretName"`
							Items      []struct{ Key, Path string }
						} `yaml:"secret"`
					} `yaml:"volumes"`
				} `yaml:"spec"`
			} `yaml:"template"`
		} `yaml:"spec"`
	}
	render := func(extra string) deployment {
		t.Helper()
		files := []string{"../deploy/helm/examples/exchange.yaml"}
		if extra != "" {
			files = append(files, writeIn(t, t.TempDir(), "extra.yaml", extra))
		}
		out, err := helmTemplate(t, "exchange", files...)
		if err != nil {
			t.Fatalf("helm template: %v", err)
		}
		dec := yaml.NewDecoder(bytes.NewReader(out))
		for {
			var d deployment
			if err := dec.Decode(&d); errors.Is(err, io.EOF) {
				break
			} else if err != nil {
				t.Fatal(err)
			}
			if d.Kind == "Deployment" && d.Metadata.Name == "exchange" {
				return d
			}
		}
		t.Fatalf("no Deployment exchange rendered:\n%s", out)
		return deployment{}
	}
	envOf := func(c container, name string) (string, bool) {
		for _, e := range c.Env {
			if e.Name == name {
				return e.Value, true
			}
		}
		return "", false
	}
	mounts := func(c container) bool {
		return slices.ContainsFunc(c.VolumeMounts, func(m struct {
			Name      string `yaml:"name"`
			MountPath string `yaml:"mountPath"`
		}) bool {
			return m.Name == "lockbox-assertion"
		})
	}

	withSecret := "sidecar:\n  assertionSecret:\n    name: exchange-assertion\n"
	// kubecheck takes the mount: the sidecar reads it.
	out, err := helmTemplate(t, "exchange", "../deploy/helm/examples/exchange.yaml", writeIn(t, t.TempDir(), "extra.yaml", withSecret))
	if err != nil {
		t.Fatal(err)
	}
	check := toolCommand(t, "kubecheck", writeIn(t, t.TempDir(), "render.yaml", string(out)))
	if msg, err := check.CombinedOutput(); err != nil {
		t.Errorf("kubecheck: %v\n%s", err, msg)
	}
	d := render(withSecret)
	spec := d.Spec.Template.Spec
	if len(spec.InitContainers) != 1 {
		t.Fatalf("init containers %d, want the Lockbox sidecar", len(spec.InitContainers))
	}
	lb := spec.InitContainers[0]
	if v, _ := envOf(lb, "LOCKBOX_PROXY_ASSERTION_SECRET_FILES"); v != "exchange=/etc/lockbox/assertion/assertion.secret" {
		t.Errorf("LOCKBOX_PROXY_ASSERTION_SECRET_FILES=%q", v)
	}
	if !mounts(lb) {
		t.Error("the Lockbox container does not mount the assertion secret")
	}
	for _, c := range spec.Containers {
		if mounts(c) {
			t.Errorf("container %s mounts Lockbox's copy of the secret: the service mounts its own", c.Name)
		}
	}
	i := slices.IndexFunc(spec.Volumes, func(v struct {
		Name   string `yaml:"name"`
		Secret *struct {
			SecretName string `yaml:"secretName"`
			Items      []struct{ Key, Path string }
		} `yaml:"secret"`
	}) bool {
		return v.Name == "lockbox-assertion"
	})
	if i < 0 || spec.Volumes[i].Secret == nil || spec.Volumes[i].Secret.SecretName != "exchange-assertion" ||
		len(spec.Volumes[i].Secret.Items) != 1 || spec.Volumes[i].Secret.Items[0].Path != "assertion.secret" {
		t.Errorf("volumes %+v, want lockbox-assertion from Secret exchange-assertion, key assertion.secret", spec.Volumes)
	}

	// Another key names another file.
	d = render("sidecar:\n  assertionSecret:\n    name: exchange-assertion\n    key: hs256\n")
	if v, _ := envOf(d.Spec.Template.Spec.InitContainers[0], "LOCKBOX_PROXY_ASSERTION_SECRET_FILES"); !strings.HasSuffix(v, "/etc/lockbox/assertion/hs256") {
		t.Errorf("with key hs256: LOCKBOX_PROXY_ASSERTION_SECRET_FILES=%q", v)
	}

	// Without it: nothing.
	d = render("")
	if _, ok := envOf(d.Spec.Template.Spec.InitContainers[0], "LOCKBOX_PROXY_ASSERTION_SECRET_FILES"); ok || mounts(d.Spec.Template.Spec.InitContainers[0]) {
		t.Error("no assertionSecret, yet the sidecar is given one")
	}
}
