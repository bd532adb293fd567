package policy

import (
	"errors"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/rego"
)

// A panic inside OPA must deny the one call, not crash the proxy. A zero
// prepared query panics when evaluated, which stands in for a bug in a
// builtin.
func TestDecideRecoversPanic(t *testing.T) {
	e, err := NewEngine(EngineConfig{})
	if err != nil {
		t.Fatal(err)
	}
	good := e.current.Load()
	e.current.Store(&bundle{query: rego.PreparedEvalQuery{}, catalog: good.catalog, revision: "broken", loaded: time.Now()})
	d, err := e.Decide(t.Context(), Input{Now: "2026-03-01T11:00:00Z"})
	if !errors.Is(err, ErrEvaluation) || d.Allow {
		t.Fatalf("Decide = %+v, %v; want ErrEvaluation", d, err)
	}
}
