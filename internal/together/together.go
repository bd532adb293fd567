// Package together runs a test's subtests all at once, for tests that
// spend their time waiting out real timeouts: a stall cut after a client
// timeout, a Redis Cluster node marked failing after its node timeout, an
// export read slowly for longer than a write timeout. t.Parallel would
// run only -parallel of them at a time (GOMAXPROCS, two on CI), one wait
// after another; testing.T.Run may be called from several goroutines at
// once, each subtest then waiting beside the others.
//
// Only subtests that share nothing mutable may run together: each builds
// its own servers, clients and Redis.
package together

import (
	"sync"
	"testing"
)

// Group starts subtests and waits for them. The zero Group is ready.
type Group struct{ wg sync.WaitGroup }

// Run starts the subtest name of t and returns at once.
func (g *Group) Run(t *testing.T, name string, f func(*testing.T)) {
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		t.Run(name, f)
	}()
}

// Wait returns once every subtest started has ended. A test calls it
// before it returns (defer g.Wait()): testing requires a test's subtests
// to end first.
func (g *Group) Wait() { g.wg.Wait() }
