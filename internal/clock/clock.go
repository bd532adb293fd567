// Package clock provides the fake clock tests inject wherever Lockbox reads
// the time, so boundaries (4 h grants, 12 h decision windows) are tested
// exactly and without sleeping.
package clock

import (
	"sync"
	"time"
)

// Fake is a settable clock, safe for concurrent use.
type Fake struct {
	mu sync.Mutex
	t  time.Time
}

// NewFake returns a clock stopped at t.
func NewFake(t time.Time) *Fake { return &Fake{t: t} }

// Now returns the clock's time. Its method value is a func() time.Time.
func (f *Fake) Now() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.t
}

// Advance moves the clock forward by d.
func (f *Fake) Advance(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.t = f.t.Add(d)
}

// Set moves the clock to t.
func (f *Fake) Set(t time.Time) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.t = t
}
