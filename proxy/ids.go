package proxy

import (
	"crypto/rand"
	"strconv"
	"sync/atomic"
)

// decisionIDs names each call's decision for the log and the client: a
// random prefix per process (so replicas never collide) and a counter.
// Decision ids need to be unique, not unguessable; reading crypto/rand for
// every call cost more than the rest of naming it.
type decisionIDs struct {
	prefix string
	n      atomic.Uint64
}

func newDecisionIDs() *decisionIDs {
	return &decisionIDs{prefix: rand.Text()[:13]}
}

func (d *decisionIDs) next() string {
	var b [13 + 13]byte
	out := append(b[:0], d.prefix...)
	return string(strconv.AppendUint(out, d.n.Add(1), 32))
}
