package proxy

import (
	"sync"
	"testing"
)

// together runs subtests all at once, for tests that spend their time
// waiting out real timeouts (a stall cut after ClientTimeout, a call kept
// moving for longer than it). t.Parallel would run only -parallel of them
// at a time, GOMAXPROCS (two on CI), and leave the package waiting alone
// at the end of "go test ./..." for a minute; testing.T.Run may be called
// from several goroutines at once.
type together struct{ wg sync.WaitGroup }

// run starts the subtest name of t and returns at once.
func (g *together) run(t *testing.T, name string, f func(*testing.T)) {
	g.wg.Add(1)
	go func() {
		defer g.wg.Done()
		t.Run(name, f)
	}()
}

// wait returns once every subtest started has ended.
func (g *together) wait() { g.wg.Wait() }
