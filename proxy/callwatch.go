package proxy

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"hash/maphash"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lockbox-oss/lockbox/grants"
)

// RecheckInterval is how often CallWatch.Run, as "lockbox serve" runs it,
// looks for calls in flight whose grant was last read from the store more
// than a second ago (the cache's age limit), and reads it again: a call
// under a grant revoked on another replica, whose invalidation event this
// replica lost, is cut within that second plus this interval.
const RecheckInterval = 500 * time.Millisecond

// maxWatchReads bounds the grant reads a pass of CallWatch has in flight
// at once, each on a connection of go-redis's pool, which holds 10 per
// GOMAXPROCS (lockbox serve sets no other size): 16 leaves most of even a
// two-core replica's pool to the calls being judged meanwhile, and a pass
// over a stalled Redis still cuts the calls of 16 grants per GrantTimeout.
const maxWatchReads = 16

// watchShards is how many locks the calls in flight are spread over, by
// tenant: a forwarded call takes one of them twice (as it starts and ends),
// and calls of different tenants seldom share one.
const watchShards = 64

// CallWatch keeps a Handler's forwarded calls still under way, by tenant,
// and cuts those whose grant no longer allows them. A call is judged as it
// arrives; a download or an upload may then go on for hours, and its
// grant's expires_at cuts it (clientDeadline.grantEnds), but a revocation
// would not: the contract honours one within a second on every replica,
// calls in flight included.
//
// It is the events.Invalidator the proxy's grant cache is: an invalidation
// of a tenant has the tenant's calls' grants read again, as a new call's
// would be (the cache was cleared first: it must be told after the cache),
// and each call whose grant is gone, ended, or no longer the one it was
// judged and audited by is cut as its grant's end cuts it, with the reason
// a new call would be refused for. Reset, a subscription lost or regained,
// has every call read its grant again. Run does the reading, and also
// reads again the grant of every call whose grant was last read a second
// ago or more (through the cache, whose entries are at most that old), so
// that a lost event delays a cut by at most the cache's age limit and the
// interval. Its passes come one after the other; a pass reads each grant
// once for all its calls under it, and up to maxWatchReads grants at once,
// each within the grant timeout, so that a Redis that stalls cuts the
// calls in about that timeout, not in that timeout per grant, and an
// invalidation does not wait behind a pass reading grant after grant.
//
// A call pays for this as it is forwarded and as it ends: a lock of its
// tenant's shard, and two pointers of its own struct linked into the
// shard's list; no allocation.
type CallWatch struct {
	h      *Handler
	seed   maphash.Seed
	shards [watchShards]watchShard

	mu sync.Mutex
	// tenants were invalidated since Run last looked, all was set by a
	// Reset since then.
	tenants map[string]struct{}
	all     bool
	// wake has Run look at once: a value is waiting in it, or it is
	// looking already.
	wake chan struct{}

	// batch and reads are Run's own, kept between passes: the calls one
	// pass checks, ordered by grant, and the grants it reads.
	batch []*call
	reads []watchRead
}

// watchRead is a grant a pass reads again, for the calls batch[from:to].
type watchRead struct{ from, to int }

// watchShard holds the calls of some tenants in a list through the calls'
// own watchNext and watchPrev. It is padded to a cache line, so that two
// shards' locks taken on two cores do not share one.
type watchShard struct {
	mu   sync.Mutex
	head *call
	// gen counts the invalidations of the shard's tenants (and Resets):
	// a call notes it before its grant is read, and a call that finds it
	// moved by the time it is forwarded or kept heard of a change its read
	// may have missed (see heard).
	gen atomic.Uint64
	_   [40]byte
}

func newCallWatch(h *Handler) *CallWatch {
	return &CallWatch{h: h, seed: maphash.MakeSeed(), tenants: map[string]struct{}{}, wake: make(chan struct{}, 1)}
}

// CallWatch returns the handler's calls in flight: wire it to the cache
// invalidation events after the grant cache, and Run it while the handler
// serves.
func (h *Handler) CallWatch() *CallWatch { return h.watch }

func (w *CallWatch) shard(tenant string) *watchShard {
	return &w.shards[maphash.String(w.seed, tenant)%watchShards]
}

// note marks the start of c's grant read: an invalidation of c's tenant
// from then on is one the read may have missed. The listener clears the
// caches before it tells CallWatch, so one told before this was seen by
// the read.
func (w *CallWatch) note(c *call) {
	c.noted = w.shard(c.Tenant)
	c.watchGen = c.noted.gen.Load()
}

// heard says whether c's tenant was invalidated since note: this replica
// heard of a change (a revocation, the switch turned on) after c's read
// began, and what c read may be gone.
func (c *call) heard() bool {
	return c.noted != nil && c.noted.gen.Load() != c.watchGen
}

// add keeps c, a call about to be forwarded, until remove. Its grant was
// last read when the call read it (grantRead). An invalidation of its
// tenant heard after note and before c is in the shard's list found no c
// to check: c is checked now, as if told again, rather than once its read
// is a second old. (Invalidate counts before it queues and Run collects
// under the shard's lock, so either the pass finds c, or c sees the count
// moved.)
func (w *CallWatch) add(c *call) {
	c.confirmed = c.grantRead
	s := c.noted // hashed once per call
	if s == nil {
		s = w.shard(c.Tenant)
	}
	s.mu.Lock()
	c.watchNext = s.head
	if s.head != nil {
		s.head.watchPrev = c
	}
	s.head = c
	s.mu.Unlock()
	c.watchShard = s
	if c.noted == s && s.gen.Load() != c.watchGen {
		// Checked, without counting an invalidation: counted, it would
		// have every call in flight of the shard's tenants, and each of
		// those the next, read its grant again, for one change heard.
		w.recheck(c.Tenant)
	}
}

// remove forgets c as its handler returns, if add kept it.
func (w *CallWatch) remove(c *call) {
	s := c.watchShard
	if s == nil {
		return
	}
	s.mu.Lock()
	if c.watchPrev != nil {
		c.watchPrev.watchNext = c.watchNext
	} else {
		s.head = c.watchNext
	}
	if c.watchNext != nil {
		c.watchNext.watchPrev = c.watchPrev
	}
	c.watchNext, c.watchPrev = nil, nil
	s.mu.Unlock()
	c.watchShard = nil
}

// Invalidate has Run read again the grants of tenant's calls in flight
// (events.Invalidator). It does not wait for that.
func (w *CallWatch) Invalidate(tenant string) {
	w.shard(tenant).gen.Add(1)
	w.recheck(tenant)
}

// recheck has Run read again the grants of tenant's calls in flight.
func (w *CallWatch) recheck(tenant string) {
	w.mu.Lock()
	if !w.all {
		w.tenants[tenant] = struct{}{}
	}
	w.mu.Unlock()
	w.poke()
}

// Reset has Run read again the grant of every call in flight
// (events.Invalidator): events may have been lost.
func (w *CallWatch) Reset() {
	for i := range w.shards {
		w.shards[i].gen.Add(1)
	}
	w.mu.Lock()
	w.all = true
	clear(w.tenants)
	w.mu.Unlock()
	w.poke()
}

func (w *CallWatch) poke() {
	select {
	case w.wake <- struct{}{}:
	default:
	}
}

// Run reads again the grants of the calls of the tenants invalidated, as
// soon as it is told, and every interval those of the calls whose grant
// was last read maxGrantAge ago or more, and cuts the calls whose grant no
// longer allows them, until ctx ends; call it once. Without Run, calls in
// flight end only at their grant's end.
func (w *CallWatch) Run(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-w.wake:
			w.checkInvalidated(ctx)
		case <-t.C:
			w.checkStale(ctx)
		}
	}
}

// checkInvalidated checks the calls of the tenants invalidated since the
// last look.
func (w *CallWatch) checkInvalidated(ctx context.Context) {
	w.mu.Lock()
	all := w.all
	w.all = false
	var tenants map[string]struct{}
	if len(w.tenants) > 0 {
		// Taken whole: Invalidate fills a new one meanwhile.
		tenants, w.tenants = w.tenants, map[string]struct{}{}
	}
	w.mu.Unlock()
	batch := w.batch[:0]
	switch {
	case all:
		for i := range w.shards {
			batch = w.shards[i].collect(batch, func(*call) bool { return true })
		}
	default:
		for tenant := range tenants {
			batch = w.shard(tenant).collect(batch, func(c *call) bool { return c.Tenant == tenant })
		}
	}
	w.check(ctx, batch)
}

// checkStale checks the calls whose grant was last read maxGrantAge ago
// or more, by the handler's clock, or in its future (a clock set back: what
// was read can't be dated), as current does before a call is forwarded.
func (w *CallWatch) checkStale(ctx context.Context) {
	now := w.h.cfg.Now()
	batch := w.batch[:0]
	for i := range w.shards {
		batch = w.shards[i].collect(batch, func(c *call) bool {
			age := now.Sub(c.confirmed)
			return age < 0 || age >= maxGrantAge
		})
	}
	w.check(ctx, batch)
}

// collect appends the shard's calls that match to batch.
func (s *watchShard) collect(batch []*call, match func(*call) bool) []*call {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := s.head; c != nil; c = c.watchNext {
		if match(c) {
			batch = append(batch, c)
		}
	}
	return batch
}

// check reads again the grant of each call of batch and cuts the calls it
// no longer allows. A call that ended meanwhile is read for nothing, and
// not cut (clientDeadline.revoke). It returns once every read it started
// is done.
func (w *CallWatch) check(ctx context.Context, batch []*call) {
	// The calls under one grant side by side, to share its read.
	slices.SortFunc(batch, compareGrantKeys)
	reads := w.reads[:0]
	for from := 0; from < len(batch); {
		to := from + 1
		for to < len(batch) && compareGrantKeys(batch[from], batch[to]) == 0 {
			to++
		}
		reads = append(reads, watchRead{from, to})
		from = to
	}
	// Each reader takes the next grant not taken, so that a read that
	// waits out its timeout holds up no other; Run's goroutine is one of
	// them, and a pass over one grant starts no other.
	var next atomic.Int64
	read := func() {
		for ctx.Err() == nil {
			i := next.Add(1) - 1
			if i >= int64(len(reads)) {
				return
			}
			w.checkGrant(ctx, batch[reads[i].from:reads[i].to])
		}
	}
	var wg sync.WaitGroup
	for range min(maxWatchReads, len(reads)) - 1 {
		wg.Go(read)
	}
	read()
	wg.Wait()
	// Kept for the next pass, without keeping its calls alive.
	clear(batch)
	w.batch, w.reads = batch[:0], reads[:0]
}

// compareGrantKeys orders calls by the grant a call of theirs reads, as
// lookupGrant finds it: tenant, operator, service.
func compareGrantKeys(a, b *call) int {
	return cmp.Or(strings.Compare(a.Tenant, b.Tenant), strings.Compare(a.principal.Subject, b.principal.Subject),
		strings.Compare(a.Service, b.Service))
}

// checkGrant reads the grant of calls, calls under one grant, as a new call
// of theirs would read it (memory first, then the store within the grant
// timeout), and cuts each call, with the reason such a call would be
// refused for, when it is gone, ended, or no longer the grant the call was
// judged and audited by. Turning Customer Lockbox on ends, in its own
// transaction, every grant it no longer allows, so the grant alone tells
// whether the switch took the calls' access away.
func (w *CallWatch) checkGrant(ctx context.Context, calls []*call) {
	h, first := w.h, calls[0]
	now := h.cfg.Now()
	lookupCtx, cancel := context.WithTimeout(ctx, h.cfg.GrantTimeout)
	g, read, reason, err := h.lookupGrant(func() context.Context { return lookupCtx }, first.principal, first.Call, now)
	cancel()
	if ctx.Err() != nil {
		// Stopping: a read that failed for it says nothing of the grant.
		return
	}
	for _, c := range calls {
		switch {
		case reason != "":
			c.deadline.revoke(reason, err, time.Now())
		case !sameGrant(g, c.grant):
			// Each call was judged by the grant it read: one judged
			// after a new approval may hold on while another is cut.
			c.deadline.revoke(ReasonNoGrant, fmt.Errorf("the grant of request %s ended during the call", c.grant.RequestID), time.Now())
		default:
			c.confirmed = read
		}
	}
}

// sameGrant reports whether g, read again, is still the grant a call was
// judged and audited by: the call's record and assertion name that one.
func sameGrant(g, was grants.Grant) bool {
	return g.RequestID == was.RequestID && g.ExpiresAt.Equal(was.ExpiresAt) &&
		g.ApprovedBy == was.ApprovedBy && slices.Equal(g.Activities, was.Activities)
}

// cutMessage is the log message of a call cut for reason.
func cutMessage(reason Reason) string {
	switch reason {
	case ReasonGrantExpired:
		return "proxy call cut: the grant expired during the call"
	case ReasonStoreUnavailable:
		return "proxy call cut: the grant could not be read again during the call"
	}
	return "proxy call cut: the grant ended during the call"
}

// cutError is what a cut call's log line names: why its access ended, and
// what the call then failed with.
func cutError(ended, failed error) error {
	if ended == nil {
		return failed
	}
	return errors.Join(ended, failed)
}
