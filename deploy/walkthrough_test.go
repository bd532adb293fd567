package deploy_test

import (
	"bytes"
	"errors"
	"io"
	"path"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// TestKustomizeWalkThroughSecrets: README's kustomize walk-through had
// users create jwks.json in Secret lockbox-keys in both namespaces, while
// both examples include components/issuers, whose issuers take their keys
// from a jwks_url: the control plane's Secret is optional and its
// LOCKBOX_JWT_JWKS_FILE empty, and the sidecar projects the grant signing
// key alone. A user without a JWKS file was stopped by a step that changed
// nothing. Each Secret key the walk-through creates must be read in the
// examples' rendering (a variable from it, or a file a setting names),
// and each Secret they need must be created, with the keys they project.
func TestKustomizeWalkThroughSecrets(t *testing.T) {
	created := walkThroughSecrets(t)
	for dir, ns := range map[string]string{"examples/control-plane": "lockbox", "examples/exchange": "exchange"} {
		t.Run(dir, func(t *testing.T) {
			r := readRendering(t, goTool(t, "kustomize", "build", "../deploy/kubernetes/"+dir))
			for secret, keys := range created[ns] {
				for _, key := range keys {
					if !r.reads(secret, key) {
						t.Errorf("the walk-through creates key %s of Secret %s in namespace %s, which nothing in %s reads", key, secret, ns, dir)
					}
				}
			}
			for secret, keys := range r.needs {
				if slices.Contains(r.issued, secret) {
					continue // a cert-manager Certificate's
				}
				have, ok := created[ns][secret]
				if !ok {
					t.Errorf("%s needs Secret %s, which the walk-through does not create in namespace %s", dir, secret, ns)
				}
				for _, key := range keys {
					if ok && !slices.Contains(have, key) {
						t.Errorf("%s needs key %s of Secret %s, which the walk-through does not create", dir, key, secret)
					}
				}
			}
		})
	}
}

// walkThroughSecrets returns, by namespace and Secret, the keys the
// walk-through's "kubectl create secret generic" commands create.
func walkThroughSecrets(t *testing.T) map[string]map[string][]string {
	t.Helper()
	_, section, ok := strings.Cut(string(readFile(t, "../README.md")), "### From zero to a sidecar in front of a tenant service (kustomize)")
	if !ok {
		t.Fatal("README.md has no kustomize walk-through")
	}
	_, block, ok := strings.Cut(section, "```sh\n")
	block, _, ok2 := strings.Cut(block, "```")
	if !ok || !ok2 {
		t.Fatal("README.md's kustomize walk-through has no sh block")
	}
	out := map[string]map[string][]string{}
	var loop []string // the namespaces of "for ns in ...; do"
	for line := range strings.SplitSeq(strings.ReplaceAll(block, "\\\n", " "), "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) == 0 || strings.HasPrefix(f[0], "#"):
		case f[0] == "for" && len(f) > 3 && f[1] == "ns" && f[2] == "in":
			for _, w := range f[3:] {
				if w = strings.TrimSuffix(w, ";"); w != "do" && w != "" {
					loop = append(loop, w)
				}
			}
		case f[0] == "done":
			loop = nil
		case len(f) > 6 && f[0] == "kubectl" && f[1] == "-n" && f[3] == "create" && f[4] == "secret" && f[5] == "generic":
			namespaces := []string{f[2]}
			if f[2] == "$ns" {
				namespaces = loop
			}
			var keys []string
			for _, a := range f[7:] {
				switch {
				case strings.HasPrefix(a, "--from-literal="):
					k, _, _ := strings.Cut(strings.TrimPrefix(a, "--from-literal="), "=")
					keys = append(keys, k)
				case strings.HasPrefix(a, "--from-file="):
					v := strings.TrimPrefix(a, "--from-file=")
					k, _, named := strings.Cut(v, "=")
					if !named {
						k = filepath.Base(v)
					}
					keys = append(keys, k)
				}
			}
			for _, ns := range namespaces {
				if out[ns] == nil {
					out[ns] = map[string][]string{}
				}
				out[ns][f[6]] = append(out[ns][f[6]], keys...)
			}
		}
	}
	if len(out) == 0 {
		t.Fatal("README.md's kustomize walk-through creates no Secret")
	}
	return out
}

// rendering is what one build's objects read of Secrets.
type rendering struct {
	values  []string            // every ConfigMap value and env value
	envKeys map[string][]string // Secret -> keys variables are set from
	files   map[string][]string // Secret -> paths its keys are mounted at; a path ending "/" holds every key
	needs   map[string][]string // Secret -> keys a pod can't start without
	issued  []string            // Secrets cert-manager Certificates issue
}

func readRendering(t *testing.T, docs []byte) *rendering {
	t.Helper()
	type items []struct{ Key, Path string }
	type secretVol struct {
		SecretName string `yaml:"secretName"`
		Name       string `yaml:"name"`
		Optional   bool   `yaml:"optional"`
		Items      items  `yaml:"items"`
	}
	type ctr struct {
		Env []struct {
			Value     string `yaml:"value"`
			ValueFrom *struct {
				SecretKeyRef *struct {
					Name, Key string
					Optional  bool
				} `yaml:"secretKeyRef"`
			} `yaml:"valueFrom"`
		} `yaml:"env"`
		VolumeMounts []struct {
			Name      string `yaml:"name"`
			MountPath string `yaml:"mountPath"`
		} `yaml:"volumeMounts"`
	}
	var obj struct {
		Kind string            `yaml:"kind"`
		Data map[string]string `yaml:"data"`
		Spec struct {
			SecretName string `yaml:"secretName"`
			Template   struct {
				Spec struct {
					InitContainers []ctr `yaml:"initContainers"`
					Containers     []ctr `yaml:"containers"`
					Volumes        []struct {
						Name      string     `yaml:"name"`
						Secret    *secretVol `yaml:"secret"`
						Projected *struct {
							Sources []struct {
								Secret *secretVol `yaml:"secret"`
							} `yaml:"sources"`
						} `yaml:"projected"`
					} `yaml:"volumes"`
				} `yaml:"spec"`
			} `yaml:"template"`
		} `yaml:"spec"`
	}
	r := &rendering{envKeys: map[string][]string{}, files: map[string][]string{}, needs: map[string][]string{}}
	dec := yaml.NewDecoder(bytes.NewReader(docs))
	for {
		obj.Kind, obj.Data, obj.Spec.SecretName, obj.Spec.Template.Spec.InitContainers, obj.Spec.Template.Spec.Containers, obj.Spec.Template.Spec.Volumes = "", nil, "", nil, nil, nil
		if err := dec.Decode(&obj); errors.Is(err, io.EOF) {
			return r
		} else if err != nil {
			t.Fatal(err)
		}
		switch obj.Kind {
		case "ConfigMap":
			for _, v := range obj.Data {
				r.values = append(r.values, v)
			}
		case "Certificate":
			r.issued = append(r.issued, obj.Spec.SecretName)
		}
		pod := obj.Spec.Template.Spec
		vols := map[string][]*secretVol{}
		for _, v := range pod.Volumes {
			if v.Secret != nil {
				vols[v.Name] = append(vols[v.Name], v.Secret)
			}
			if v.Projected != nil {
				for _, s := range v.Projected.Sources {
					if s.Secret != nil {
						s.Secret.SecretName = s.Secret.Name
						vols[v.Name] = append(vols[v.Name], s.Secret)
					}
				}
			}
		}
		for _, c := range append(pod.InitContainers, pod.Containers...) {
			for _, e := range c.Env {
				r.values = append(r.values, e.Value)
				if e.ValueFrom != nil && e.ValueFrom.SecretKeyRef != nil {
					ref := e.ValueFrom.SecretKeyRef
					r.envKeys[ref.Name] = append(r.envKeys[ref.Name], ref.Key)
					if !ref.Optional {
						r.needs[ref.Name] = append(r.needs[ref.Name], ref.Key)
					}
				}
			}
			for _, m := range c.VolumeMounts {
				for _, s := range vols[m.Name] {
					if len(s.Items) == 0 {
						r.files[s.SecretName] = append(r.files[s.SecretName], m.MountPath+"/")
					}
					for _, it := range s.Items {
						r.files[s.SecretName] = append(r.files[s.SecretName], path.Join(m.MountPath, it.Path)+"\x00"+it.Key)
					}
					if !s.Optional {
						if _, ok := r.needs[s.SecretName]; !ok {
							r.needs[s.SecretName] = nil
						}
						for _, it := range s.Items {
							r.needs[s.SecretName] = append(r.needs[s.SecretName], it.Key)
						}
					}
				}
			}
		}
	}
}

// reads reports whether key of secret sets a variable, or is mounted as a
// file whose path a setting (a ConfigMap's value, a file a ConfigMap
// holds, a variable) names.
func (r *rendering) reads(secret, key string) bool {
	if slices.Contains(r.envKeys[secret], key) {
		return true
	}
	for _, f := range r.files[secret] {
		p, k, projected := strings.Cut(f, "\x00")
		switch {
		case projected && k != key:
			continue
		case !projected:
			p += key
		}
		for _, v := range r.values {
			if strings.Contains(v, p) {
				return true
			}
		}
	}
	return false
}
