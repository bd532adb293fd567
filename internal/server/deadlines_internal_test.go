package server

import (
	"testing"

	"github.com/lockbox-oss/lockbox/audit"
	"github.com/lockbox-oss/lockbox/config"
	"github.com/lockbox-oss/lockbox/policy"
	"github.com/lockbox-oss/lockbox/proxy"
)

// TestDeadlineBoundsFitTheListeners: config bounds the deadlines of the
// waits on Redis by the numbers of the servers built here, which it may
// not import; this holds the two together, so that neither changes alone.
// At their longest the deadlines still end in a 503 the client receives:
// a Redis call leaves an API call half its deadline, and a proxied call
// that waits on each of its checks as long as it may is refused before
// the deadline on its client passes. That deadline is at least three
// quarters of the client timeout ahead when the checks begin: set at the
// request's start, it is moved on while a body is read at most every
// quarter of it.
func TestDeadlineBoundsFitTheListeners(t *testing.T) {
	if half := requestTimeout / 2; config.MaxRedisTimeout > half {
		t.Errorf("config.MaxRedisTimeout is %s, more than half an API call's deadline (%s)", config.MaxRedisTimeout, half)
	}
	if requestTimeout >= DefaultAPIWriteTimeout {
		t.Errorf("an API call's deadline (%s) is not shorter than the API listener's write timeout (%s): its 503 could not be written", requestTimeout, DefaultAPIWriteTimeout)
	}
	if config.MaxGrantTimeout > config.MaxRedisTimeout {
		t.Errorf("config.MaxGrantTimeout (%s) is more than config.MaxRedisTimeout (%s), which cuts each of the lookup's reads anyway", config.MaxGrantTimeout, config.MaxRedisTimeout)
	}
	// The grant lookup twice (again after a slow audit write), the
	// policy, and the audit record, which waits about twice its timeout
	// (audit.GroupCommit.Append).
	checks := 2*config.MaxGrantTimeout + policy.DefaultEvalTimeout + 2*config.MaxAuditTimeout
	if ahead := proxy.DefaultClientTimeout * 3 / 4; checks >= ahead {
		t.Errorf("a proxied call's checks may take %s at the bounds of LOCKBOX_GRANT_TIMEOUT and LOCKBOX_AUDIT_TIMEOUT, not less than the %s its deadline on the client is ahead when they begin: its 503 could not be written", checks, ahead)
	}
}

// TestSIEMClaimFloorOutlastsADelivery: config's least
// LOCKBOX_SIEM_CLAIM_AFTER rests on how long the forwarder may take over
// one write before it gives the sink up as stalled, which config may not
// import; this holds the two together. A replica still writing a batch
// when another may take its records over writes them twice.
func TestSIEMClaimFloorOutlastsADelivery(t *testing.T) {
	if config.MinSIEMClaimAfter <= 2*audit.SinkWriteTimeout {
		t.Errorf("config.MinSIEMClaimAfter (%s) is not more than twice audit.SinkWriteTimeout (%s): a replica still writing could be taken over", config.MinSIEMClaimAfter, audit.SinkWriteTimeout)
	}
}
