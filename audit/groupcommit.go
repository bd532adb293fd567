package audit

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"runtime"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/lockbox-oss/lockbox/audit/record"
	"github.com/lockbox-oss/lockbox/internal/keys"
)

// appendBatchScript appends records, in order, to one tenant's chain: the
// same links appendScript makes one at a time. ARGV[1] is the head the
// writer last saw, then come each record's JSON and its link as the writer
// computed it from that head. The script checks the head, atomically as
// any script runs: when it is still that one, the links are written as
// they are; when another writer (a replica, a Log.Append) moved it since,
// the script computes them itself from the head it finds, as it always
// did. A chain so never forks, and Redis hashes only after a race. The
// head is set once, after the last entry: the script can only fail on its
// first XADD (a stream key of the wrong type, or the memory limit, which
// Redis checks only before a script's first write), so it never stops with
// entries added and the head behind them. It returns the new head, for the
// writer's next batch.
var appendBatchScript = redis.NewScript(`
local prev = redis.call('GET', KEYS[2]) or ''
local linked = prev == ARGV[1]
for i = 2, #ARGV, 2 do
  local h = ARGV[i + 1]
  if not linked then h = redis.sha1hex(prev .. '\n' .. ARGV[i]) end
  redis.call('XADD', KEYS[1], '*', 'r', ARGV[i], 'p', prev, 'h', h)
  prev = h
end
redis.call('SET', KEYS[2], prev)
return prev
`)

// Durability says when a batch of operator-action records counts as
// written, and so when the calls they record may be forwarded.
type Durability struct {
	// Replicas, when positive, is how many replicas must have received the
	// batch (Redis WAIT) before its callers are told it was written: a
	// failover to one of them loses no acknowledged record.
	Replicas int
	// AOF asks Redis to have fsynced the batch to its append-only file
	// (WAITAOF, Redis 7.2 and later) — locally, and on Replicas replicas —
	// before its callers are told: a crash of the server loses none.
	AOF bool
}

// GroupCommitConfig configures a GroupCommit.
type GroupCommitConfig struct {
	// Log completes and encodes records. Required.
	Log *Log
	// Redis is written to; Log's client when nil.
	Redis redis.UniversalClient
	// Durability is what "written" means; Redis's acknowledgement when
	// zero.
	Durability Durability
	// Timeout bounds one batch's round trip (and its WAIT). 2s when zero.
	Timeout time.Duration
	// Writers is how many batches may be in flight at once (on a Cluster,
	// to each master); 1 when zero: one writer makes the largest batches,
	// so the fewest round trips and the least CPU, here and in Redis, per
	// record.
	// A chain stays whole however many: Redis runs each tenant's batch
	// script atomically, each reading the head the last one left.
	Writers int
	// MaxBatch bounds the records of one batch; 256 when zero.
	MaxBatch int
	// Registerer receives the batch-size histogram; nil registers none.
	Registerer prometheus.Registerer
	// now is the clock a cluster's lanes' idleness is read on (route);
	// time.Now when nil.
	now func() time.Time
}

// GroupCommit writes operator-action records for many concurrent callers in
// as few round trips as it can: a record queued while a batch is in
// flight joins the next one, one script call per tenant appends them all to
// the tenant's chain, and each caller is told when its own record was
// written, or that it failed. Nothing is acknowledged before Redis
// acknowledged it (and, with Durability, before the replicas or the disk
// did), so "audit before forward" holds record by record; batching only
// shares the round trip. Under no load a batch is one record and costs what
// Append costs: there is no waiting for company.
type GroupCommit struct {
	cfg     GroupCommitConfig
	q       chan *pending
	stop    chan struct{}
	closing sync.Once
	wg      sync.WaitGroup
	sizes   prometheus.Histogram
}

type pending struct {
	tenant   string
	data     []byte // the record's JSON, in a buffer the pool keeps
	deadline int64  // unix nanoseconds past which it is not written
	done     chan error
}

var pendingPool = sync.Pool{New: func() any { return &pending{done: make(chan error, 1)} }}

// NewGroupCommit starts a GroupCommit's writers; Close stops them.
func NewGroupCommit(cfg GroupCommitConfig) (*GroupCommit, error) {
	switch {
	case cfg.Log == nil:
		return nil, errors.New("audit: GroupCommit needs a Log")
	case cfg.Timeout < 0, cfg.Writers < 0, cfg.MaxBatch < 0, cfg.Durability.Replicas < 0:
		return nil, errors.New("audit: GroupCommit settings must not be negative")
	}
	if cfg.Redis == nil {
		cfg.Redis = cfg.Log.rdb
	}
	if cfg.Timeout == 0 {
		cfg.Timeout = 2 * time.Second
	}
	if cfg.Writers == 0 {
		cfg.Writers = 1
	}
	if cfg.MaxBatch == 0 {
		cfg.MaxBatch = 256
	}
	if cfg.now == nil {
		cfg.now = time.Now
	}
	g := &GroupCommit{cfg: cfg, q: make(chan *pending, 4*cfg.MaxBatch), stop: make(chan struct{}),
		sizes: prometheus.NewHistogram(prometheus.HistogramOpts{
			Name:    "lockbox_audit_batch_records",
			Help:    "Operator-action records written per round trip to Redis (group commit).",
			Buckets: []float64{1, 2, 4, 8, 16, 32, 64, 128, 256},
		})}
	if cfg.Registerer != nil {
		if err := cfg.Registerer.Register(g.sizes); err != nil {
			return nil, fmt.Errorf("audit: register metrics: %w", err)
		}
	}
	if cluster, ok := cfg.Redis.(*redis.ClusterClient); ok {
		g.wg.Add(1)
		go g.route(cluster)
		return g, nil
	}
	g.startWriters(g.q, g.stop)
	return g, nil
}

// startWriters starts cfg.Writers writers taking records from q.
func (g *GroupCommit) startWriters(q chan *pending, stop <-chan struct{}) {
	for range g.cfg.Writers {
		g.wg.Add(1)
		go g.writer(q, stop)
	}
}

// Close stops the writers once the records already queued are written.
// Closing again waits as the first did.
func (g *GroupCommit) Close() {
	g.closing.Do(func() { close(g.stop) })
	g.wg.Wait()
}

// Append writes r, with the records of other callers, and returns it as
// written. It returns when the record is written (with the configured
// durability), when ctx ends, or at the latest about twice Timeout after
// the call whatever ctx's deadline: a record not yet written a Timeout
// after it was queued is not written, a batch's round trip is bounded by
// Timeout, and a record waits for room in a full queue no longer than a
// Timeout. On an error, or when ctx ends, the record may still have been
// written: a record of a call that was then refused over-reports, which is
// the safe side.
func (g *GroupCommit) Append(ctx context.Context, r record.Record) (record.Record, error) {
	// A caller already gone is refused before anything is queued; waiting
	// below, a cancellation racing the answer could go either way.
	if err := ctx.Err(); err != nil {
		return record.Record{}, fmt.Errorf("%w: %w", ErrUnavailable, err)
	}
	start := time.Now()
	cctx := ctx
	if r.OrganizationId == "" && !g.cfg.Log.orgIDCached(r.LockboxTenant) {
		// The tenant's first record on this replica reads its GUID from
		// the registry: under the record's own deadline, not ctx's alone,
		// which the proxy leaves unbounded (AppendBounded) and a hung
		// Redis would hold to the client's socket timeout. The time it
		// takes counts against the record's deadline below.
		var cancel context.CancelFunc
		cctx, cancel = context.WithTimeout(ctx, g.cfg.Timeout)
		defer cancel()
	}
	r, err := g.cfg.Log.complete(cctx, r)
	if err != nil {
		return record.Record{}, err
	}
	select {
	case <-g.stop:
		return record.Record{}, fmt.Errorf("%w: the audit writer is stopped", ErrUnavailable)
	default:
	}
	p := pendingPool.Get().(*pending)
	// Encoded here, in the caller's goroutine, so the writers only write.
	p.tenant, p.data = r.LockboxTenant, r.AppendJSON(p.data[:0])
	p.deadline = start.Add(g.cfg.Timeout).UnixNano()
	select {
	case g.q <- p:
	case <-g.stop:
		pendingPool.Put(p)
		return record.Record{}, fmt.Errorf("%w: the audit writer is stopped", ErrUnavailable)
	default:
		// A full queue: a burst larger than it, or Redis far behind. Wait
		// for room, but not past the record's own deadline (the timer is
		// paid only here, off the usual path).
		if err := g.enqueueSlow(ctx, p); err != nil {
			pendingPool.Put(p)
			return record.Record{}, err
		}
	}
	select {
	case err := <-p.done:
		pendingPool.Put(p)
		if err != nil {
			return record.Record{}, fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
		return r, nil
	case <-ctx.Done():
		// The writer still owns p and will answer into its buffered
		// channel; p is not reused.
		return record.Record{}, fmt.Errorf("%w: %w", ErrUnavailable, ctx.Err())
	case <-g.stop:
		// Queued as the writers stopped: it may never be written.
		return record.Record{}, fmt.Errorf("%w: the audit writer is stopped", ErrUnavailable)
	}
}

// enqueueSlow queues p once the queue has room, giving up at p's deadline.
func (g *GroupCommit) enqueueSlow(ctx context.Context, p *pending) error {
	switch err := waitForRoom(g.q, p, ctx.Done(), g.stop); err {
	case nil:
		return nil
	case errNoRoom:
		return fmt.Errorf("%w: %w", ErrUnavailable, err)
	case errCanceled:
		return fmt.Errorf("%w: queue: %w", ErrUnavailable, ctx.Err())
	default:
		return fmt.Errorf("%w: the audit writer is stopped", ErrUnavailable)
	}
}

var (
	errNoRoom   = errors.New("the records already waiting to be written left no room before its deadline")
	errCanceled = errors.New("canceled")
	errStopped  = errors.New("stopped")
)

// waitForRoom queues p on q once q has room, giving up at p's deadline
// (errNoRoom), when canceled is (errCanceled) or when stop is (errStopped);
// nil channels never are.
func waitForRoom(q chan<- *pending, p *pending, canceled, stop <-chan struct{}) error {
	t := time.NewTimer(time.Until(time.Unix(0, p.deadline)))
	defer t.Stop()
	select {
	case q <- p:
		return nil
	case <-t.C:
		return errNoRoom
	case <-canceled:
		return errCanceled
	case <-stop:
		return errStopped
	}
}

// writer takes whatever q holds, up to MaxBatch, writes it, and answers,
// until q is closed, or stop is and q is empty.
func (g *GroupCommit) writer(q chan *pending, stop <-chan struct{}) {
	defer g.wg.Done()
	w := newBatchWriter(g, g.cfg.Redis.Pipeline())
	batch := make([]*pending, 0, g.cfg.MaxBatch)
	for {
		var first *pending
		select {
		case first = <-q:
		case <-stop:
			// Drain what was queued before Close.
			select {
			case first = <-q:
			default:
			}
		}
		if first == nil { // q closed, or stopped and drained
			return
		}
		if len(batch) > 1 {
			// Under load (the last batch had company), callers that are
			// already runnable get to queue their records before this
			// batch is cut: larger batches, fewer round trips. An idle
			// writer's single record is never held back. (At c=16 on
			// two cores: 3.9 -> 5.0 records a batch, 2-3 % more calls/s.)
			runtime.Gosched()
		}
		batch = append(batch[:0], first)
	fill:
		for len(batch) < g.cfg.MaxBatch {
			select {
			case p := <-q:
				if p == nil {
					break fill
				}
				batch = append(batch, p)
			default:
				break fill
			}
		}
		g.sizes.Observe(float64(len(batch)))
		w.write(batch)
	}
}

// laneIdle is how long a master's lane goes unused before it is closed:
// after a failover or a node replaced, its address may never come back.
const laneIdle = 5 * time.Minute

// lane is one master's queue and writers (route).
type lane struct {
	q    chan *pending
	used time.Time
	// waiting counts the records waiting for room in q (route): q is
	// closed only once none is.
	waiting sync.WaitGroup
}

// close closes l's queue once no record waits for room in it; its writers
// write what it holds, then stop. A record waits at most to its deadline.
func (l *lane) close() {
	l.waiting.Wait()
	close(l.q)
}

// route hands each record queued on a cluster to the writers of the
// master that holds its tenant's chain, a lane of their own for each
// master, started on its first record. A batch's masters are written side
// by side (execByNode), but one writer writes one batch at a time: a
// master that hangs held every batch after it for the whole timeout, and
// the calls of every tenant, on every master, were refused. With a lane a
// master, a hung one holds only its own tenants' records. A tenant whose
// slot has moved since is written where it now is by its old lane
// (execByNode follows redirects), and a lane's chain heads are only a
// guess the script checks, so nothing depends on a tenant staying in one
// lane.
func (g *GroupCommit) route(cluster *redis.ClusterClient) {
	defer g.wg.Done()
	lanes := map[string]*lane{}
	defer func() {
		for _, l := range lanes {
			l.close()
		}
	}()
	reaped := g.cfg.now()
	for {
		var p *pending
		select {
		case p = <-g.q:
		case <-g.stop:
			select {
			case p = <-g.q:
			default:
				return
			}
		}
		now := g.cfg.now()
		if now.Sub(reaped) >= laneIdle {
			reaped = now
			for addr, l := range lanes {
				if now.Sub(l.used) >= laneIdle {
					l.close()
					delete(lanes, addr)
				}
			}
		}
		ctx, cancel := context.WithDeadline(context.Background(), time.Unix(0, p.deadline))
		node, err := cluster.MasterForKey(ctx, keys.Audit(p.tenant))
		cancel()
		if err != nil {
			p.done <- fmt.Errorf("no master for its tenant's log: %w", err)
			continue
		}
		addr := node.Options().Addr
		l := lanes[addr]
		if l == nil {
			l = &lane{q: make(chan *pending, cap(g.q))}
			lanes[addr] = l
			g.startWriters(l.q, nil)
		}
		l.used = now
		select {
		case l.q <- p:
		default:
			// A burst larger than the lane, or its master far behind or
			// hung: the record waits for room up to its deadline, as on
			// one Redis (enqueueSlow), but on a goroutine of its own, so
			// that the other masters' records don't wait behind it.
			l.waiting.Add(1)
			go func() {
				defer l.waiting.Done()
				if err := waitForRoom(l.q, p, nil, nil); err != nil {
					p.done <- fmt.Errorf("%w on %s", err, addr)
				}
			}()
		}
	}
}

// batchWriter is one writer goroutine's state, reused from batch to batch
// so that a batch allocates little beyond what go-redis does.
type batchWriter struct {
	g      *GroupCommit
	pipe   redis.Pipeliner
	groups []group
	// keys holds each tenant's EVALSHA prefix: the command, the script's
	// hash, the key count and the tenant's stream and head keys, boxed
	// once.
	keys map[string][]any
	// heads holds each tenant's chain head as the last batch left it: the
	// links of the next batch are computed from it here, not in Redis,
	// where the script's CPU is everyone's (see appendBatchScript).
	// Each is a string, boxed once.
	heads map[string]any
	sha   hash.Hash
	sum   [sha1.Size]byte
	// links holds one batch's links, hex-encoded, 40 bytes each.
	links []byte
}

func newBatchWriter(g *GroupCommit, pipe redis.Pipeliner) *batchWriter {
	return &batchWriter{g: g, pipe: pipe, keys: map[string][]any{}, heads: map[string]any{}, sha: sha1.New()}
}

// group is one tenant's records of a batch.
type group struct {
	tenant string
	args   []any
	ps     []*pending
	cmd    *redis.Cmd
}

// write appends batch, grouped by tenant, and answers each record's caller.
func (w *batchWriter) write(batch []*pending) {
	g := w.g
	ctx, cancel := context.WithTimeout(context.Background(), g.cfg.Timeout)
	defer cancel()
	// Usually one tenant: groups is a slice searched in order, reused
	// with its slices' backing arrays.
	w.groups = w.groups[:0]
	start := time.Now().UnixNano()
	for _, p := range batch {
		if p.deadline < start {
			// Its caller is told, and the record is not written: never a
			// record for a call refused long before.
			p.done <- errors.New("not written in time: the writes before it were too slow")
			continue
		}
		i := 0
		for ; i < len(w.groups) && w.groups[i].tenant != p.tenant; i++ {
		}
		if i == len(w.groups) {
			if i < cap(w.groups) {
				w.groups = w.groups[:i+1]
				w.groups[i].tenant, w.groups[i].args, w.groups[i].ps = p.tenant, w.groups[i].args[:0], w.groups[i].ps[:0]
			} else {
				w.groups = append(w.groups, group{tenant: p.tenant})
			}
		}
		w.groups[i].ps = append(w.groups[i].ps, p)
	}
	w.link()
	cluster, isCluster := g.cfg.Redis.(*redis.ClusterClient)
	switch {
	case isCluster:
		w.execByNode(ctx, cluster)
	case len(w.groups) > 0:
		err := w.exec(ctx, w.pipe, g.cfg.Redis, w.groups, false)
		for i := range w.groups {
			answer(&w.groups[i], err)
		}
	}
	for i := range w.groups {
		// The head each script left, for the next batch's links. A group
		// that failed leaves the head unknown until a script says it.
		gr := &w.groups[i]
		if gr.cmd == nil || gr.cmd.Err() != nil {
			delete(w.heads, gr.tenant)
		} else if head := gr.cmd.Val(); head != nil {
			if len(w.heads) > 10_000 {
				clear(w.heads)
			}
			w.heads[gr.tenant] = head
		}
	}
	// Let the answered records' buffers go back to their pool.
	for i := range w.groups {
		clear(w.groups[i].args)
		clear(w.groups[i].ps)
	}
}

// noHead is the head of an empty chain, or of one this writer has not
// seen: the script then links the batch itself unless the chain is empty.
var noHead any = ""

// newline separates a link from the record in the hashed input.
var newline = []byte{'\n'}

// link sets each group's script arguments: the head its tenant's chain had
// after the last batch, then each record and its link, the SHA-1 of the
// link before it, "\n" and the record (chainHash).
func (w *batchWriter) link() {
	n := 0
	for i := range w.groups {
		n += len(w.groups[i].ps)
	}
	// Room for every link and each group's head, so that the batch
	// appends without growing the buffer.
	if need := (n + len(w.groups)) * sha1.Size * 2; cap(w.links) < need {
		w.links = make([]byte, 0, 2*need)
	}
	links := w.links[:0]
	for i := range w.groups {
		gr := &w.groups[i]
		boxed, ok := w.heads[gr.tenant]
		if !ok {
			boxed = noHead
		}
		head, _ := boxed.(string)
		gr.args = append(gr.args[:0], boxed)
		links = append(links, head...)
		prev := links[len(links)-len(head) : len(links) : len(links)]
		for _, p := range gr.ps {
			w.sha.Reset()
			w.sha.Write(prev)
			w.sha.Write(newline)
			w.sha.Write(p.data)
			start := len(links)
			links = hex.AppendEncode(links, w.sha.Sum(w.sum[:0]))
			prev = links[start:len(links):len(links)]
			gr.args = append(gr.args, p.data, prev)
		}
	}
}

// maxRedirects bounds how often one tenant's batch follows a moving slot
// (MOVED, ASK, TRYAGAIN) before its callers are told it failed.
const maxRedirects = 8

// execOnCluster writes one tenant's group on the master that holds its
// chain, with the wait on the same connection. A slot being moved answers
// MOVED (the slot has a new owner: go there), ASK (this key already moved:
// ask the importing node, after ASKING) or TRYAGAIN (the chain's stream and
// head are on either side of the move for an instant: retry shortly). In
// each case the script did not run, so writing again writes nothing twice.
func (w *batchWriter) execOnCluster(ctx context.Context, cluster *redis.ClusterClient, groups []group) error {
	node, err := cluster.MasterForKey(ctx, keys.Audit(groups[0].tenant))
	if err != nil {
		return err
	}
	asking := false
	for attempt := 0; ; attempt++ {
		err = w.exec(ctx, node.Pipeline(), node, groups, asking)
		if groups[0].cmd == nil {
			return err // never sent again: the script could not be loaded
		}
		cerr := groups[0].cmd.Err()
		if cerr == nil || attempt == maxRedirects {
			return err
		}
		moved, isMoved := redis.IsMovedError(cerr)
		ask, isAsk := redis.IsAskError(cerr)
		switch {
		case !redirected(cerr):
			return err
		case isMoved || isAsk:
			addr := moved
			if isAsk {
				addr = ask
			} else {
				cluster.ReloadState(ctx)
			}
			if node, err = masterAt(ctx, cluster, addr); err != nil {
				return err
			}
			asking = isAsk
		case redis.IsTryAgainError(cerr):
			select {
			case <-ctx.Done():
				return ctx.Err()
			case <-time.After(time.Duration(attempt+1) * 5 * time.Millisecond):
			}
		}
	}
}

// execByNode writes the batch on a cluster: one pipeline a master, its
// tenants' scripts and, with Durability, then one wait, which covers every
// write before it on that connection (WAIT names no key: it must follow
// the writes on the connection of the node that holds them), the masters
// side by side. (Written one tenant after another, each in a round trip
// with its own wait, a batch's waits added up under its one timeout: with
// a 300 ms wait, a replica in another zone or WAITAOF's fsync, a 1 s batch
// held three tenants, and the calls of the others were refused, every
// node healthy.) A tenant whose slot moved is sent again on its own
// (execOnCluster).
func (w *batchWriter) execByNode(ctx context.Context, cluster *redis.ClusterClient) {
	type node struct {
		client *redis.Client
		at     []int   // the indexes in w.groups of its tenants
		groups []group // their copies, which exec sets the commands of
	}
	var nodes []*node
	for i := range w.groups {
		gr := &w.groups[i]
		gr.cmd = nil
		// The EVALSHA prefixes are cached now: the nodes' goroutines
		// below only read the cache.
		w.evalSha(gr.tenant)
		c, err := cluster.MasterForKey(ctx, keys.Audit(gr.tenant))
		if err != nil {
			answer(gr, err)
			continue
		}
		var n *node
		for _, m := range nodes {
			if m.client == c {
				n = m
			}
		}
		if n == nil {
			n = &node{client: c}
			nodes = append(nodes, n)
		}
		n.at, n.groups = append(n.at, i), append(n.groups, *gr)
	}
	// Each master's callers are answered as soon as its own pipeline
	// returns: a master that hangs keeps only its tenants waiting. (One
	// cluster pipeline over every master answered nobody before the last
	// master did, and its timeout failed every command in it, scripts
	// that had run on the healthy masters too: their callers were refused
	// with their records written.) Each goroutine writes only its own
	// tenants' groups.
	var wg sync.WaitGroup
	for _, n := range nodes {
		wg.Go(func() {
			err := w.exec(ctx, n.client.Pipeline(), n.client, n.groups, false)
			for j, i := range n.at {
				gr := &w.groups[i]
				gr.cmd = n.groups[j].cmd
				if err == nil && gr.cmd != nil && (redirected(gr.cmd.Err()) || redis.HasErrorPrefix(gr.cmd.Err(), "NOSCRIPT")) {
					// The slot moved, or a node it was sent to by ASK
					// does not know the script yet: on its own, on the
					// node it names.
					answer(gr, w.execOnCluster(ctx, cluster, w.groups[i:i+1]))
					continue
				}
				answer(gr, err)
			}
		})
	}
	wg.Wait()
}

// redirected reports whether err says a slot is moving: the command did
// not run, and runs elsewhere or later.
func redirected(err error) bool {
	_, moved := redis.IsMovedError(err)
	_, ask := redis.IsAskError(err)
	return moved || ask || redis.IsTryAgainError(err)
}

// masterAt returns the cluster's client of the master at addr.
func masterAt(ctx context.Context, cluster *redis.ClusterClient, addr string) (*redis.Client, error) {
	var mu sync.Mutex
	var found *redis.Client
	err := cluster.ForEachMaster(ctx, func(_ context.Context, c *redis.Client) error {
		if c.Options().Addr == addr {
			mu.Lock()
			found = c
			mu.Unlock()
		}
		return nil
	})
	if err == nil && found == nil {
		err = fmt.Errorf("no master at %s", addr)
	}
	return found, err
}

// answer tells each caller of gr how its record fared: the group's own
// script error, else err (the round trip's).
func answer(gr *group, err error) {
	switch {
	case gr.cmd == nil && err == nil:
		// Never sent: not written, whatever else went well.
		err = errors.New("not written: the batch script was never sent")
	case gr.cmd != nil && gr.cmd.Err() != nil:
		err = gr.cmd.Err()
	}
	for _, p := range gr.ps {
		p.done <- err
	}
}

// evalSha is the beginning of the batch script's EVALSHA for tenant, up to
// its keys.
func (w *batchWriter) evalSha(tenant string) []any {
	k, ok := w.keys[tenant]
	if !ok {
		if len(w.keys) > 10_000 {
			clear(w.keys)
		}
		k = []any{"evalsha", appendBatchScript.Hash(), 2, keys.Audit(tenant), keys.AuditHead(tenant)}
		w.keys[tenant] = k
	}
	return k
}

// exec sends one batch script per group and, with Durability, the wait,
// in one round trip on pipe (whose client is c). Each group's command
// carries that tenant's error; the returned error is the wait's failure
// (or a broken connection's), which fails every record of the round trip.
func (w *batchWriter) exec(ctx context.Context, pipe redis.Pipeliner, c redis.Scripter, groups []group, asking bool) error {
	for i := range groups {
		groups[i].cmd = nil
	}
	// Two rounds at most: the second sends again only the groups whose
	// node did not know the script yet.
	for round := 0; ; round++ {
		for i := range groups {
			gr := &groups[i]
			if gr.cmd != nil {
				continue // ran in the first round
			}
			if asking {
				// The key is being imported by this node: it serves it
				// only to a connection that says so, for the next
				// command.
				pipe.Do(ctx, "asking")
			}
			// The command's arguments: the tenant's EVALSHA prefix, then
			// the records. (Do rather than Script.EvalSha: its prefix is
			// boxed once per tenant instead of once per batch. go-redis
			// finds the key of an EVALSHA on Cluster all the same.)
			prefix := w.evalSha(gr.tenant)
			args := make([]any, 0, len(prefix)+len(gr.args))
			gr.cmd = pipe.Do(ctx, append(append(args, prefix...), gr.args...)...)
		}
		wait := w.queueWait(ctx, pipe)
		_, _ = pipe.Exec(ctx)
		var missing []string
		for i := range groups {
			gr := &groups[i]
			if err := gr.cmd.Err(); round == 0 && err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") {
				// First use on this node (or after SCRIPT FLUSH or a
				// restart): load it and send the group again. The script
				// has not run, so nothing was written. Only these groups
				// go again: on a cluster the others ran on other nodes.
				missing = append(missing, gr.tenant)
				gr.cmd = nil
			}
		}
		if err := w.checkWait(wait); err != nil || len(missing) == 0 {
			return err
		}
		if err := loadScript(ctx, c, missing); err != nil {
			return err
		}
	}
}

// loadScript loads the batch script where tenants' chains are: on a
// cluster, on every master that answers (a slot may move to any of them)
// and surely on the master of each; anywhere else, on c's server.
func loadScript(ctx context.Context, c redis.Scripter, tenants []string) error {
	cluster, ok := c.(*redis.ClusterClient)
	if !ok {
		return appendBatchScript.Load(ctx, c).Err()
	}
	// Not ScriptLoad on the cluster client: it fails when any node,
	// replicas included, is down.
	_ = cluster.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error {
		return appendBatchScript.Load(ctx, m).Err()
	})
	for _, t := range tenants {
		node, err := cluster.MasterForKey(ctx, keys.Audit(t))
		if err == nil {
			err = appendBatchScript.Load(ctx, node).Err()
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// queueWait adds the wait Durability asks for to pipe, after the writes.
func (w *batchWriter) queueWait(ctx context.Context, pipe redis.Pipeliner) *redis.Cmd {
	g := w.g
	d := g.cfg.Durability
	// The wait's own timeout leaves room for the round trip within the
	// batch's deadline.
	ms := max(1, (g.cfg.Timeout * 3 / 4).Milliseconds())
	switch {
	case d.AOF:
		return pipe.Do(ctx, "WAITAOF", 1, d.Replicas, ms)
	case d.Replicas > 0:
		return pipe.Do(ctx, "WAIT", d.Replicas, ms)
	}
	return nil
}

// checkWait says whether the wait queued by queueWait was satisfied.
func (w *batchWriter) checkWait(wait *redis.Cmd) error {
	if wait == nil {
		return nil
	}
	d := w.g.cfg.Durability
	if !d.AOF {
		n, err := wait.Int64()
		if err != nil {
			return err
		}
		if n < int64(d.Replicas) {
			return fmt.Errorf("written, but acknowledged by %d of the %d replicas required in time", n, d.Replicas)
		}
		return nil
	}
	v, err := wait.Slice()
	if err != nil {
		return err
	}
	var local, replicas int64
	if len(v) == 2 {
		local, _ = v[0].(int64)
		replicas, _ = v[1].(int64)
	}
	if local < 1 || replicas < int64(d.Replicas) {
		return fmt.Errorf("written, but fsynced by %d local and %d of the %d replica append-only files required in time", local, replicas, d.Replicas)
	}
	return nil
}

func (g *GroupCommit) waits() bool { return g.cfg.Durability.Replicas > 0 || g.cfg.Durability.AOF }

// AppendBounded is Append: it returns within its own bound (see Append)
// whatever ctx's deadline, so a caller need not set one.
func (g *GroupCommit) AppendBounded(ctx context.Context, r record.Record) (record.Record, error) {
	return g.Append(ctx, r)
}
