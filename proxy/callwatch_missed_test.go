package proxy

import "testing"

// TestCallWatchAddChecksWhatItMissed: an invalidation of a call's tenant,
// or a Reset, heard after the call's grant read began but before the call
// was kept, was checked by a pass that could not find the call yet. The
// call, once kept, is checked as if told again (Run is woken with its
// tenant), not a second later by age; a call whose tenant no one changed
// wakes nothing.
func TestCallWatchAddChecksWhatItMissed(t *testing.T) {
	for _, tt := range []struct {
		name   string
		missed func(w *CallWatch)
		want   bool
	}{
		{name: "nothing heard", missed: func(*CallWatch) {}},
		{name: "its tenant invalidated", missed: func(w *CallWatch) { w.Invalidate("contoso") }, want: true},
		{name: "a reset", missed: func(w *CallWatch) { w.Reset() }, want: true},
	} {
		t.Run(tt.name, func(t *testing.T) {
			w := newCallWatch(nil)
			c := &call{}
			c.Tenant = "contoso"
			w.note(c)
			tt.missed(w)
			// Run's pass took what was heard, and found no call to check.
			select {
			case <-w.wake:
			default:
			}
			w.mu.Lock()
			clear(w.tenants)
			w.all = false
			w.mu.Unlock()
			other := &call{}
			other.Tenant = "contoso"
			w.note(other)

			w.add(c)
			defer w.remove(c)
			woken := len(w.wake) == 1
			w.mu.Lock()
			_, queued := w.tenants["contoso"]
			w.mu.Unlock()
			if woken != tt.want || queued != tt.want {
				t.Errorf("after add: Run woken %v, contoso queued %v; want %v", woken, queued, tt.want)
			}
			if c.heard() != tt.want {
				t.Errorf("heard() = %v, want %v", c.heard(), tt.want)
			}
			// Checking c counts no invalidation of its own: a call of the
			// tenant noted after the change, before c was kept, heard of
			// nothing (counted, one change would have every call in
			// flight, and each the next, read its grant again).
			if other.heard() {
				t.Error("a call noted after the change heard of another: keeping a call counted an invalidation")
			}
		})
	}
}
