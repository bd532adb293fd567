package policy

import (
	"encoding/binary"
	"sync"
	"sync/atomic"
	"time"
)

// memoMaxEntries bounds the decisions one memo generation keeps: the
// distinct inputs decided within one second. Past it, decisions are still
// made (by evaluating), only not remembered, so memory stays bounded
// whatever the traffic.
const memoMaxEntries = 1 << 16

// memoMaxBytes bounds the bytes of keys and reasons one generation keeps.
// The count alone does not bound memory: a key holds every field the policy
// reads, and a policy that reads input.call.path makes the caller choose
// its length (a request line may carry a megabyte). The default policy's
// keys are about 200 bytes, so memoMaxEntries of them fit well within it;
// past it, as past memoMaxEntries, decisions are evaluated, not remembered.
const memoMaxBytes = 32 << 20

// memo remembers the decisions of one policy version for identical inputs.
// A policy is a function of the input fields it reads (and of the evaluation
// time, which is input.now): inputs alike in those get the same decision, so
// a decision made once can be served again without evaluating. The memo belongs to a Snapshot,
// so a reloaded policy starts with an empty one: nothing is ever carried
// from one version to another.
//
// Inputs differ at least by input.now, so the memo keeps one generation:
// the decisions made for one value of input.now (the proxy passes the time
// truncated to the second, so a generation lasts a second). An input for a
// later time replaces the generation; one for an earlier time (a call that
// read the clock just before another) is evaluated and not remembered,
// unless it is more than memoStepBack earlier: then the clock stepped back,
// and the generation's time will not come round again until the clock has
// caught up with it.
type memo struct {
	gen atomic.Pointer[generation]
}

// generation is the decisions made for one input.now.
type generation struct {
	now   string
	mu    sync.RWMutex
	m     map[string]Decision
	bytes int // of m's keys and reasons, at most memoMaxBytes
}

// lookup returns the remembered decision for key at now.
func (mm *memo) lookup(now string, key []byte) (Decision, bool) {
	g := mm.gen.Load()
	if g == nil || g.now != now {
		return Decision{}, false
	}
	g.mu.RLock()
	d, ok := g.m[string(key)] // no allocation: the compiler looks up []byte keys in place
	g.mu.RUnlock()
	return d, ok
}

// store remembers d for key at now.
func (mm *memo) store(now string, key []byte, d Decision) {
	for {
		g := mm.gen.Load()
		switch {
		case g != nil && g.now == now:
			size := len(key)
			for _, r := range d.Reasons {
				size += len(r)
			}
			g.mu.Lock()
			if _, ok := g.m[string(key)]; !ok && len(g.m) < memoMaxEntries && g.bytes+size <= memoMaxBytes {
				g.m[string(key)] = d
				g.bytes += size
			}
			g.mu.Unlock()
			return
		case g != nil && now < g.now && !steppedBack(now, g.now):
			// RFC 3339 UTC times of one layout sort as strings: this call's
			// time is already past.
			return
		}
		next := &generation{now: now, m: make(map[string]Decision, 64)}
		if mm.gen.CompareAndSwap(g, next) {
			continue // store into the generation just published
		}
	}
}

// memoStepBack is how much earlier than the generation's an input's time
// must be to replace it. Calls that read the clock one just before another
// are a second apart, a few at most if one waited on its grant lookup; a
// clock stepped back (NTP correcting one that ran ahead, a VM resumed) is
// further, and without this every call would be evaluated, none
// remembered, until the clock caught up with the time before the step.
const memoStepBack = 10 * time.Second

// steppedBack reports whether now is more than memoStepBack before genNow.
// Both were parsed before (Decide evaluates an input before storing it), so
// an error means only "no".
func steppedBack(now, genNow string) bool {
	t, err := time.Parse(time.RFC3339Nano, now)
	if err != nil {
		return false
	}
	g, err := time.Parse(time.RFC3339Nano, genNow)
	return err == nil && g.Sub(t) > memoStepBack
}

// keyPool recycles the buffers memo keys are built in.
var keyPool = sync.Pool{New: func() any { b := make([]byte, 0, 512); return &b }}

// appendKey appends an encoding of the fields of in that reads names
// (input.now aside: the memo generation holds that) to b. Each string is
// length-prefixed and each list counted, so two inputs that differ in a
// field read never encode alike. Whether there is a grant is always part of
// the key: a policy may test it without reading any of its fields.
//
// Every field of Input must be here: a field left out would let two inputs
// that differ in it share one decision. TestMemoKeyCoversEveryField fails
// when a field is added to Input and not to this function (or to
// fieldPaths).
func appendKey(b []byte, in *Input, reads inputFields) []byte {
	str := func(f inputFields, s string) {
		if reads.has(f) {
			b = appendStr(b, s)
		}
	}
	str(fOperatorID, in.Operator.ID)
	if reads.has(fOperatorRoles) {
		b = appendStrs(b, in.Operator.Roles)
	}
	c := &in.Call
	str(fCallMethod, c.Method)
	str(fCallPath, c.Path)
	str(fCallService, c.Service)
	str(fCallActivity, c.Activity)
	str(fCallAccess, c.Access)
	str(fCallTenant, c.Tenant)
	str(fCallClientIP, c.ClientIP)
	if g := in.Grant; g == nil {
		b = append(b, 0)
	} else {
		b = append(b, 1)
		str(fGrantRequestID, g.RequestID)
		str(fGrantTenant, g.Tenant)
		str(fGrantOperator, g.Operator)
		str(fGrantService, g.Service)
		if reads.has(fGrantActivities) {
			b = appendStrs(b, g.Activities)
		}
		str(fGrantApprover, g.Approver)
		if reads.has(fGrantTenantApproved) {
			b = appendBool(b, g.TenantApproved)
		}
		str(fGrantApprovedAt, g.ApprovedAt)
		str(fGrantExpiresAt, g.ExpiresAt)
	}
	str(fTenantID, in.Tenant.ID)
	if reads.has(fTenantLockboxEnabled) {
		b = appendBool(b, in.Tenant.LockboxEnabled)
	}
	return b
}

func appendStr(b []byte, s string) []byte {
	b = binary.AppendUvarint(b, uint64(len(s)))
	return append(b, s...)
}

func appendStrs(b []byte, ss []string) []byte {
	if ss == nil {
		// nil and empty are one value to the policy (both are [] in the
		// input), but keep them apart anyway: it costs nothing and makes
		// the encoding a plain function of the Go value.
		return append(b, 0)
	}
	b = append(b, 1)
	b = binary.AppendUvarint(b, uint64(len(ss)))
	for _, s := range ss {
		b = appendStr(b, s)
	}
	return b
}

func appendBool(b []byte, v bool) []byte {
	if v {
		return append(b, 1)
	}
	return append(b, 0)
}
