package audit

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/lockbox-oss/lockbox/grantsig"
	"github.com/lockbox-oss/lockbox/internal/keys"
)

// The chain's hashes hold no secret: whoever can write to Redis can edit a
// record and recompute every later hash and the head, or delete the newest
// records and set the head back, and the chain still verifies. A seal is
// the proxy's signature over the newest entry of a tenant's chain and its
// hash (grantsig.SignSeal), stored in the tenant's slot (keys.AuditSeal),
// which verification checks against the published keys: every record up
// to the sealed one is then covered by a key Redis does not hold. Records
// after the last seal, at most one sealing interval's worth, are covered
// by the chain alone.

// storeSealScript stores the seal ARGV[3] ("<stream id> <seal>") of the
// entry ARGV[1], whose hash is ARGV[2], as the seal of stream KEYS[1]
// (KEYS[2]), only if that entry comes after the stored seal's (seals only
// move forward: replicas sealing at once, or one that read the chain
// before another sealed it, change nothing) and the entry still exists
// with that hash (retention did not trim it meanwhile, nothing rewrote it
// since it was read). It does not ask that the entry be the newest: under
// load the head moves every millisecond, and a seal waiting for a quiet
// moment would never be stored.
//
// It returns 1 when it stored the seal, 0 when the stored seal is as new
// or newer, -1 when the entry is gone or carries another hash.
var storeSealScript = redis.NewScript(`
local cur = redis.call('GET', KEYS[2])
local nms, nseq = string.match(ARGV[1], '^(%d+)-(%d+)$')
nms, nseq = tonumber(nms), tonumber(nseq)
if cur then
  local cms, cseq = string.match(cur, '^(%d+)-(%d+) ')
  if cms then
    cms, cseq = tonumber(cms), tonumber(cseq)
    if nms < cms or (nms == cms and nseq <= cseq) then return 0 end
  end
end
local e = redis.call('XRANGE', KEYS[1], ARGV[1], ARGV[1])
if #e == 0 then return -1 end
local f = e[1][2]
for i = 1, #f, 2 do
  if f[i] == 'h' then
    if f[i + 1] ~= ARGV[2] then return -1 end
    redis.call('SET', KEYS[2], ARGV[1] .. ' ' .. ARGV[3])
    return 1
  end
end
return -1
`)

// SealerConfig configures a Sealer.
type SealerConfig struct {
	Redis redis.UniversalClient
	// Issuer is the seals' "iss": the proxy's configured issuer, as its
	// assertions carry.
	Issuer string
	// Signer returns the proxy's current signing key, which a reload may
	// replace; nil skips the round.
	Signer func() *grantsig.Signer
	// Now is the seals' clock; time.Now when nil.
	Now        func() time.Time
	Registerer prometheus.Registerer
	Logger     *slog.Logger
}

// Sealer seals the tenants' audit chains: each round it signs the newest
// entry of every chain not sealed through it. Several replicas may seal
// at once: a seal only replaces an older one (storeSealScript).
type Sealer struct {
	cfg    SealerConfig
	log    *slog.Logger
	sealed prometheus.Counter
	failed prometheus.Counter
}

// NewSealer returns a Sealer, its metric registered with cfg.Registerer.
func NewSealer(cfg SealerConfig) (*Sealer, error) {
	if cfg.Redis == nil || cfg.Signer == nil || cfg.Issuer == "" {
		return nil, errors.New("audit: a sealer needs Redis, the signing key and the issuer")
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	seals := prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "lockbox_audit_seals_total",
		Help: "Seals of tenants' audit chains by result: sealed (stored) or failed (not signed or not stored; each round with failures is logged at warn).",
	}, []string{"result"})
	if cfg.Registerer != nil {
		if err := cfg.Registerer.Register(seals); err != nil {
			return nil, fmt.Errorf("audit: metrics: %w", err)
		}
	}
	return &Sealer{cfg: cfg, log: cfg.Logger, sealed: seals.WithLabelValues("sealed"), failed: seals.WithLabelValues("failed")}, nil
}

// sealChunk is how many tenants one round reads per pipeline.
const sealChunk = 500

// Run seals every interval until ctx ends.
func (s *Sealer) Run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			rctx, cancel := context.WithTimeout(ctx, every)
			_, err := s.SealAll(rctx)
			cancel()
			if err != nil && ctx.Err() == nil {
				// Once per round, however many tenants failed.
				s.log.Warn("audit sealing failed; the chains not sealed are sealed at the next round", "err", err)
			}
		}
	}
}

// SealAll seals every onboarded tenant's chain whose newest entry is not
// the sealed one, and returns how many it sealed. The tenants are the
// tenant set's (keys.Tenants): a seal is due wherever a record was written
// since the last one, and reading each tenant's seal and newest entry,
// pipelined, costs one command per tenant and round. The failures of a
// round are counted and returned joined (the first few).
func (s *Sealer) SealAll(ctx context.Context) (int, error) {
	signer := s.cfg.Signer()
	if signer == nil {
		return 0, nil
	}
	var errs []error
	failed, sealed := 0, 0
	var cursor uint64
	for {
		ts, next, err := s.cfg.Redis.SScan(ctx, keys.Tenants(), cursor, "", sealChunk).Result()
		if err != nil {
			s.failed.Inc()
			return sealed, errors.Join(append(errs, fmt.Errorf("audit: seal: list tenants: %w", err))...)
		}
		n, f, err := s.sealChunk(ctx, signer, ts)
		sealed, failed = sealed+n, failed+f
		if err != nil && len(errs) < 3 {
			errs = append(errs, err)
		}
		if cursor = next; cursor == 0 || ctx.Err() != nil {
			break
		}
	}
	if failed > 0 {
		return sealed, fmt.Errorf("audit: %d seals failed: %w", failed, errors.Join(errs...))
	}
	return sealed, ctx.Err()
}

// sealChunk seals the chains of tenants not sealed through their newest
// entry, and returns how many it sealed and how many failed, with the
// first failure.
func (s *Sealer) sealChunk(ctx context.Context, signer *grantsig.Signer, tenants []string) (sealed, failed int, first error) {
	type read struct {
		tenant string
		seal   *redis.StringCmd
		last   *redis.XMessageSliceCmd
	}
	reads := make([]read, 0, len(tenants))
	_, err := s.cfg.Redis.Pipelined(ctx, func(p redis.Pipeliner) error {
		for _, t := range tenants {
			if keys.IsTenant(t) {
				// One command reads the newest entry's id and hash
				// together: they are one entry's.
				reads = append(reads, read{t, p.Get(ctx, keys.AuditSeal(t)), p.XRevRangeN(ctx, keys.Audit(t), "+", "-", 1)})
			}
		}
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		s.failed.Add(float64(len(reads)))
		return 0, len(reads), fmt.Errorf("audit: seal: read: %w", err)
	}
	for _, r := range reads {
		msgs, err := r.last.Result()
		if err != nil {
			s.failed.Inc()
			failed++
			first = firstErr(first, fmt.Errorf("audit: seal %s: %w", r.tenant, err))
			continue
		}
		if len(msgs) == 0 || sealedID(r.seal.Val()) == msgs[0].ID {
			continue
		}
		ok, err := s.store(ctx, signer, r.tenant, msgs[0])
		switch {
		case err != nil:
			s.failed.Inc()
			failed++
			first = firstErr(first, err)
		case ok:
			s.sealed.Inc()
			sealed++
		}
	}
	return sealed, failed, first
}

func firstErr(first, err error) error {
	if first != nil {
		return first
	}
	return err
}

// Seal seals tenant's chain through its newest entry unless it is sealed
// through it already, and reports whether it stored a seal.
func (s *Sealer) Seal(ctx context.Context, tenant string) (bool, error) {
	signer := s.cfg.Signer()
	if signer == nil {
		return false, errors.New("audit: seal: no signing key")
	}
	msgs, err := s.cfg.Redis.XRevRangeN(ctx, keys.Audit(tenant), "+", "-", 1).Result()
	if err != nil {
		return false, fmt.Errorf("audit: seal %s: %w", tenant, err)
	}
	if len(msgs) == 0 {
		return false, nil
	}
	return s.store(ctx, signer, tenant, msgs[0])
}

// store signs the seal of tenant's entry m and stores it, unless a seal
// as new is stored already. An entry gone meanwhile (retention trimmed
// it) or changed is an error: it is sealed again from the next round's
// read.
func (s *Sealer) store(ctx context.Context, signer *grantsig.Signer, tenant string, m redis.XMessage) (bool, error) {
	h, _ := m.Values["h"].(string)
	if h == "" {
		return false, fmt.Errorf("audit: seal %s: entry %s carries no chain hash", tenant, m.ID)
	}
	tok, err := signer.SignSeal(grantsig.SealClaims{Issuer: s.cfg.Issuer, Tenant: tenant, Through: m.ID, Hash: h, IssuedAt: s.cfg.Now().Unix()})
	if err != nil {
		return false, fmt.Errorf("audit: seal %s: %w", tenant, err)
	}
	res, err := storeSealScript.Run(ctx, s.cfg.Redis, []string{keys.Audit(tenant), keys.AuditSeal(tenant)}, m.ID, h, tok).Int()
	switch {
	case err != nil:
		return false, fmt.Errorf("audit: seal %s: %w", tenant, err)
	case res < 0:
		return false, fmt.Errorf("audit: seal %s: entry %s was removed or changed after it was read", tenant, m.ID)
	}
	return res == 1, nil
}

// sealedID is the stream id a stored seal names ("" for none).
func sealedID(stored string) string {
	id, _, _ := strings.Cut(stored, " ")
	return id
}
