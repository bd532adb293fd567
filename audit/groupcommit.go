package audit

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/lockbox-oss/lockbox/internal/keys"
)

// appendBatchScript appends ARGV's records, in order, to one tenant's
// chain: the same links appendScript makes one at a time. The head is
// moved after each entry, so a script that stops midway (it can only fail
// on its first XADD, for a stream key of the wrong type) still leaves a
// chain that verifies.
var appendBatchScript = redis.NewScript(`
local prev = redis.call('GET', KEYS[2])
if not prev then prev = '' end
local ids = {}
for i = 1, #ARGV do
  local h = redis.sha1hex(prev .. '\n' .. ARGV[i])
  ids[i] = redis.call('XADD', KEYS[1], '*', 'r', ARGV[i], 'p', prev, 'h', h)
  redis.call('SET', KEYS[2], h)
  prev = h
end
return ids
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
	// Writers is how many batches may be in flight at once; 1 when zero:
	// one writer makes the largest batches, so the fewest round trips and
	// the least CPU, here and in Redis, per record.
	// A chain stays whole however many: Redis runs each tenant's batch
	// script atomically, each reading the head the last one left.
	Writers int
	// MaxBatch bounds the records of one batch; 256 when zero.
	MaxBatch int
	// Registerer receives the batch-size histogram; nil registers none.
	Registerer prometheus.Registerer
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
	cfg   GroupCommitConfig
	q     chan *pending
	stop  chan struct{}
	wg    sync.WaitGroup
	sizes prometheus.Histogram
}

type pending struct {
	tenant string
	data   []byte // the record's JSON, in a buffer the pool keeps
	done   chan error
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
	for range cfg.Writers {
		g.wg.Add(1)
		go g.writer()
	}
	return g, nil
}

// Close stops the writers once the records already queued are written.
func (g *GroupCommit) Close() {
	close(g.stop)
	g.wg.Wait()
}

// Append writes r, with the records of other callers, and returns it as
// written. It returns when the record is written (with the configured
// durability) or ctx ends; in the latter case, or on an error, the record
// may still have been written: a record of a call that was then refused
// over-reports, which is the safe side.
func (g *GroupCommit) Append(ctx context.Context, r Record) (Record, error) {
	r, err := g.cfg.Log.complete(ctx, r)
	if err != nil {
		return Record{}, err
	}
	select {
	case <-g.stop:
		return Record{}, fmt.Errorf("%w: the audit writer is stopped", ErrUnavailable)
	default:
	}
	p := pendingPool.Get().(*pending)
	// Encoded here, in the caller's goroutine, so the writers only write.
	p.tenant, p.data = r.LockboxTenant, r.AppendJSON(p.data[:0])
	select {
	case g.q <- p:
	case <-ctx.Done():
		pendingPool.Put(p)
		return Record{}, fmt.Errorf("%w: queue: %w", ErrUnavailable, ctx.Err())
	case <-g.stop:
		pendingPool.Put(p)
		return Record{}, fmt.Errorf("%w: the audit writer is stopped", ErrUnavailable)
	}
	select {
	case err := <-p.done:
		pendingPool.Put(p)
		if err != nil {
			return Record{}, fmt.Errorf("%w: %w", ErrUnavailable, err)
		}
		return r, nil
	case <-ctx.Done():
		// The writer still owns p and will answer into its buffered
		// channel; p is not reused.
		return Record{}, fmt.Errorf("%w: %w", ErrUnavailable, ctx.Err())
	case <-g.stop:
		// Queued as the writers stopped: it may never be written.
		return Record{}, fmt.Errorf("%w: the audit writer is stopped", ErrUnavailable)
	}
}

// writer takes whatever is queued, up to MaxBatch, writes it, and answers.
func (g *GroupCommit) writer() {
	defer g.wg.Done()
	batch := make([]*pending, 0, g.cfg.MaxBatch)
	for {
		var first *pending
		select {
		case first = <-g.q:
		case <-g.stop:
			// Drain what was queued before Close.
			select {
			case first = <-g.q:
			default:
				return
			}
		}
		batch = append(batch[:0], first)
	fill:
		for len(batch) < g.cfg.MaxBatch {
			select {
			case p := <-g.q:
				batch = append(batch, p)
			default:
				break fill
			}
		}
		g.sizes.Observe(float64(len(batch)))
		g.write(batch)
	}
}

// write appends batch, grouped by tenant, and answers each record's caller.
func (g *GroupCommit) write(batch []*pending) {
	ctx, cancel := context.WithTimeout(context.Background(), g.cfg.Timeout)
	defer cancel()
	// Usually one tenant; keep the groups in a slice, not a map.
	type group struct {
		tenant string
		args   []any
		ps     []*pending
	}
	var groups []group
	for _, p := range batch {
		i := 0
		for ; i < len(groups) && groups[i].tenant != p.tenant; i++ {
		}
		if i == len(groups) {
			groups = append(groups, group{tenant: p.tenant})
		}
		groups[i].args = append(groups[i].args, p.data)
		groups[i].ps = append(groups[i].ps, p)
	}
	answer := func(ps []*pending, err error) {
		for _, p := range ps {
			p.done <- err
		}
	}
	if cluster, ok := g.cfg.Redis.(*redis.ClusterClient); ok && g.waits() {
		// WAIT names no key: it must follow the writes on the connection
		// of the node that holds them, one node (tenant) at a time.
		for _, gr := range groups {
			node, err := cluster.MasterForKey(ctx, keys.Audit(gr.tenant))
			if err != nil {
				answer(gr.ps, err)
				continue
			}
			cmds, err := g.pipeline(ctx, node, []string{gr.tenant}, [][]any{gr.args})
			answer(gr.ps, firstErr(err, cmds[0]))
		}
		return
	}
	tenants := make([]string, len(groups))
	args := make([][]any, len(groups))
	for i, gr := range groups {
		tenants[i], args[i] = gr.tenant, gr.args
	}
	cmds, err := g.pipeline(ctx, g.cfg.Redis, tenants, args)
	for i, gr := range groups {
		answer(gr.ps, firstErr(err, cmds[i]))
	}
}

func (g *GroupCommit) waits() bool { return g.cfg.Durability.Replicas > 0 || g.cfg.Durability.AOF }

// pipeline sends one batch script per tenant and, with Durability, the
// wait, in one round trip. It returns each script's command, whose error is
// that tenant's; err is the wait's failure (or a broken connection), which
// fails every record of the round trip.
func (g *GroupCommit) pipeline(ctx context.Context, c redis.Cmdable, tenants []string, args [][]any) ([]redis.Cmder, error) {
	cmds := make([]redis.Cmder, len(tenants))
	var wait, waitAOF *redis.Cmd
	_, _ = c.Pipelined(ctx, func(p redis.Pipeliner) error {
		for i, t := range tenants {
			cmds[i] = appendBatchScript.EvalSha(ctx, p, []string{keys.Audit(t), keys.AuditHead(t)}, args[i]...)
		}
		d := g.cfg.Durability
		// The wait's own timeout leaves room for the round trip within the
		// batch's deadline.
		ms := max(1, (g.cfg.Timeout * 3 / 4).Milliseconds())
		switch {
		case d.AOF:
			waitAOF = p.Do(ctx, "WAITAOF", 1, d.Replicas, ms)
		case d.Replicas > 0:
			wait = p.Do(ctx, "WAIT", d.Replicas, ms)
		}
		return nil
	})
	if err := cmds[0].Err(); err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") {
		// First use on this server (or after SCRIPT FLUSH): load it and
		// try once more. The script has not run, so nothing was written.
		if lerr := appendBatchScript.Load(ctx, c).Err(); lerr != nil {
			return cmds, lerr
		}
		return g.pipeline(ctx, c, tenants, args)
	}
	switch {
	case wait != nil:
		n, err := wait.Int64()
		if err != nil {
			return cmds, err
		}
		if n < int64(g.cfg.Durability.Replicas) {
			return cmds, fmt.Errorf("written, but acknowledged by %d of the %d replicas required in time", n, g.cfg.Durability.Replicas)
		}
	case waitAOF != nil:
		v, err := waitAOF.Slice()
		if err != nil {
			return cmds, err
		}
		var local, replicas int64
		if len(v) == 2 {
			local, _ = v[0].(int64)
			replicas, _ = v[1].(int64)
		}
		if local < 1 || replicas < int64(g.cfg.Durability.Replicas) {
			return cmds, fmt.Errorf("written, but fsynced by %d local and %d of the %d replica append-only files required in time", local, replicas, g.cfg.Durability.Replicas)
		}
	}
	return cmds, nil
}

func firstErr(err error, cmd redis.Cmder) error {
	if cmd != nil && cmd.Err() != nil {
		return cmd.Err()
	}
	return err
}
