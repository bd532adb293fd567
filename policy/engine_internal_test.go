package policy

import (
	"errors"
	"testing"
	"time"

	"github.com/open-policy-agent/opa/v1/rego"
)

// A panic inside OPA must deny the one call, not crash the proxy. A zero
// prepared query panics when evaluated, which stands in for a bug in a
// builtin. The proxy decides through a Snapshot, so the recovery must live
// there, not only in Engine.Decide.
func TestDecideRecoversPanic(t *testing.T) {
	e, err := NewEngine(EngineConfig{})
	if err != nil {
		t.Fatal(err)
	}
	good := e.Snapshot()
	e.current.Store(&Snapshot{e: e, b: &bundle{query: rego.PreparedEvalQuery{}, catalog: good.Catalog(), revision: "broken", loaded: time.Now()}})
	decide := map[string]func(Input) (Decision, error){
		"Engine.Decide":   func(in Input) (Decision, error) { return e.Decide(t.Context(), in) },
		"Snapshot.Decide": func(in Input) (Decision, error) { return e.Snapshot().Decide(t.Context(), in) },
	}
	for name, f := range decide {
		d, err := f(Input{Now: "2026-03-01T11:00:00Z"})
		if !errors.Is(err, ErrEvaluation) || d.Allow {
			t.Errorf("%s = %+v, %v; want ErrEvaluation", name, d, err)
		}
	}
}
