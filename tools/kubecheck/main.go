// Command kubecheck is the gate every rendered Lockbox manifest passes in
// "make deploy-check". Each argument is one rendered bundle (the output of
// kustomize build or helm template), and every document in it must:
//
//   - decode strictly into a Kubernetes, Prometheus Operator or cert-manager
//     API type: an
//     unknown or duplicate field, or a kind this program does not know, is an
//     error, never a skip, because the API server would drop such a field
//     silently or refuse the object at apply time;
//   - if it carries a pod template, meet the Pod Security Standard
//     "restricted" (latest);
//   - keep the properties Lockbox's sidecar deployment relies on (see
//     lockbox.go): the tenant service reachable only through the proxy,
//     the sidecar running the proxy alone and the control plane everything
//     but the proxy (LOCKBOX_SERVE), no secret in a pod that does not read
//     it, policy hot reload, secrets as files, probes on the metrics port;
//   - if it is a PodDisruptionBudget, let a node drain through: it selects
//     the pods of one workload, evicts unready pods whatever the budget
//     (unhealthyPodEvictionPolicy: AlwaysAllow), keeps fewer than all of
//     the workload's replicas, and no pod is selected by a second budget;
//   - if it is a PodDisruptionBudget or a NetworkPolicy, select the pods of
//     a workload in the bundle: one selecting none protects nothing, and is
//     most often written for pods another build renders.
//
// ConfigMaps a pod refers to must be in the same bundle; Secrets are created
// out of band and are not looked for.
//
// usage: kubecheck FILE...
package main

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	certmanagerv1 "github.com/cert-manager/cert-manager/pkg/apis/certmanager/v1"
	monitoringv1 "github.com/prometheus-operator/prometheus-operator/pkg/apis/monitoring/v1"
	"k8s.io/apimachinery/pkg/runtime"
	"k8s.io/apimachinery/pkg/runtime/schema"
	kjson "k8s.io/apimachinery/pkg/runtime/serializer/json"
	utilyaml "k8s.io/apimachinery/pkg/util/yaml"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: kubecheck FILE...")
		os.Exit(2)
	}
	failed := false
	for _, name := range os.Args[1:] {
		n, errs := checkFile(name)
		for _, err := range errs {
			fmt.Fprintf(os.Stderr, "kubecheck: %s: %v\n", name, err)
		}
		if len(errs) > 0 {
			failed = true
			continue
		}
		fmt.Printf("kubecheck: %s: %d objects OK\n", name, n)
	}
	if failed {
		os.Exit(1)
	}
}

// object is one decoded document of a bundle.
type object struct {
	doc int // 1-based position in the file, for messages
	gvk schema.GroupVersionKind
	obj runtime.Object
}

func (o object) String() string {
	name := "?"
	if m, ok := o.obj.(interface{ GetName() string }); ok {
		name = m.GetName()
	}
	return fmt.Sprintf("document %d (%s %s)", o.doc, o.gvk.Kind, name)
}

func checkFile(name string) (int, []error) {
	b, err := os.ReadFile(name)
	if err != nil {
		return 0, []error{err}
	}
	objs, errs := decodeAll(b)
	if len(objs) == 0 && len(errs) == 0 {
		return 0, []error{errors.New("no objects: an empty render is never what was meant")}
	}
	for _, o := range objs {
		errs = append(errs, checkPodSecurity(o)...)
	}
	errs = append(errs, checkLockbox(newBundle(objs))...)
	return len(objs), errs
}

var codec = func() runtime.Decoder {
	scheme := runtime.NewScheme()
	for _, add := range []func(*runtime.Scheme) error{clientgoscheme.AddToScheme, monitoringv1.AddToScheme, certmanagerv1.AddToScheme} {
		if err := add(scheme); err != nil {
			panic(err)
		}
	}
	return kjson.NewSerializerWithOptions(kjson.DefaultMetaFactory, scheme, scheme,
		kjson.SerializerOptions{Yaml: true, Strict: true})
}()

// decodeAll decodes every non-empty document of a multi-document YAML
// stream.
func decodeAll(b []byte) ([]object, []error) {
	var (
		objs []object
		errs []error
	)
	r := utilyaml.NewYAMLReader(bufio.NewReader(bytes.NewReader(b)))
	for doc := 1; ; doc++ {
		raw, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			errs = append(errs, fmt.Errorf("document %d: %w", doc, err))
			break
		}
		if isEmpty(raw) {
			doc--
			continue
		}
		obj, gvk, err := codec.Decode(raw, nil, nil)
		switch {
		case runtime.IsNotRegisteredError(err):
			errs = append(errs, fmt.Errorf("document %d: unknown kind (add its API types to kubecheck, never skip it): %w", doc, err))
			continue
		case err != nil:
			errs = append(errs, fmt.Errorf("document %d: %w", doc, err))
			continue
		}
		objs = append(objs, object{doc: doc, gvk: *gvk, obj: obj})
	}
	return objs, errs
}

// isEmpty reports whether a document holds only comments and blank lines,
// as helm template prints for a template that rendered nothing.
func isEmpty(doc []byte) bool {
	for line := range strings.SplitSeq(string(doc), "\n") {
		line = strings.TrimSpace(line)
		if line != "" && line != "---" && !strings.HasPrefix(line, "#") {
			return false
		}
	}
	return true
}
