package together_test

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/lockbox-oss/lockbox/internal/together"
)

// TestSubtestsRunAtOnce: every subtest has started before any may end, so
// they can't have run one after the other; each ran, under its own name.
func TestSubtestsRunAtOnce(t *testing.T) {
	const n = 4
	var started atomic.Int32
	all := make(chan struct{})
	var ran [n]atomic.Bool
	var g together.Group
	for i := range n {
		g.Run(t, string(rune('a'+i)), func(t *testing.T) {
			if started.Add(1) == n {
				close(all)
			}
			select {
			case <-all:
			case <-time.After(10 * time.Second):
				t.Fatal("the other subtests never started: they run one after the other")
			}
			ran[i].Store(t.Name() == "TestSubtestsRunAtOnce/"+string(rune('a'+i)))
		})
	}
	g.Wait()
	for i := range ran {
		if !ran[i].Load() {
			t.Errorf("subtest %d did not run under its name", i)
		}
	}
}
