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
	"github.com/lockbox-oss/lockbox/internal/due"
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
// A seal it stores it also appends to the seal stream KEYS[3], with when
// it was made (ARGV[4]) and its key's kid (ARGV[5]), for the SIEM
// forwarder: in the same script, so that no seal is stored without
// reaching the SIEM, and in the same slot, so that Redis Cluster runs it
// on one node. The stream is bounded (see sealsKept): once SIEM group
// ARGV[6] exists on it, a forwarder deletes each seal its sink took, and
// ARGV[7] seals wait at most. The group is there once a forwarder has
// reached the tenant: a forwarder creates it on the seal stream, and on
// the audit stream KEYS[1], where it is missing, at each pass that lists
// the tenant, before anything that depends on its sink (see
// Forwarder.reach); a seal stream
// that did not exist then gets it here, from its first entry, when the
// audit stream has it. Before any forwarder reached the tenant
// (forwarding off, or none started yet) the stream keeps the newest seal
// alone, which the first forwarder to come takes. The seals removed
// unread by a forwarder to make room are counted.
//
// It returns {1, seals removed unread} when it stored the seal, {0, 0}
// when the stored seal is as new or newer, {-1, 0} when the entry is gone
// or carries another hash.
var storeSealScript = redis.NewScript(`
local function before(a, b)
  local ams, aseq = string.match(a, '^(%d+)-(%d+)$')
  local bms, bseq = string.match(b, '^(%d+)-(%d+)$')
  ams, aseq, bms, bseq = tonumber(ams), tonumber(aseq), tonumber(bms), tonumber(bseq)
  return ams < bms or (ams == bms and aseq < bseq)
end
local cur = redis.call('GET', KEYS[2])
if cur then
  local cid = string.match(cur, '^(%d+-%d+) ')
  if cid and not before(cid, ARGV[1]) then return {0, 0} end
end
local e = redis.call('XRANGE', KEYS[1], ARGV[1], ARGV[1])
if #e == 0 then return {-1, 0} end
local f = e[1][2]
local h
for i = 1, #f, 2 do
  if f[i] == 'h' then h = f[i + 1] end
end
if h ~= ARGV[2] then return {-1, 0} end
redis.call('SET', KEYS[2], ARGV[1] .. ' ' .. ARGV[3])
local function group(key)
  for _, g in ipairs(redis.call('XINFO', 'GROUPS', key)) do
    local info = {}
    for i = 1, #g, 2 do info[g[i]] = g[i + 1] end
    if info['name'] == ARGV[6] then return info end
  end
end
local kept, read = 1, nil
local g
if redis.call('EXISTS', KEYS[3]) == 1 then g = group(KEYS[3]) end
if g then
  kept, read = tonumber(ARGV[7]), g['last-delivered-id']
elseif group(KEYS[1]) then
  redis.call('XGROUP', 'CREATE', KEYS[3], ARGV[6], '0', 'MKSTREAM')
  kept, read = tonumber(ARGV[7]), '0-0'
end
local unread = 0
if read then
  local over = redis.call('XLEN', KEYS[3]) - kept + 1
  if over > 0 then
    for _, m in ipairs(redis.call('XRANGE', KEYS[3], '-', '+', 'COUNT', over)) do
      if before(read, m[1]) then unread = unread + 1 end
    end
  end
end
redis.call('XADD', KEYS[3], 'MAXLEN', kept, '*', 'through', ARGV[1], 'at', ARGV[4], 'kid', ARGV[5], 'seal', ARGV[3])
return {1, unread}
`)

// sealsKept bounds a tenant's seal stream (keys.AuditSeals) while
// forwarders run: the seals waiting for the SIEM, at most. Forwarders
// delete each seal their sink took, so in operation it holds the few a
// pass has not taken yet; it fills only when no forwarder took a tenant's
// seals for as many sealing rounds in which the tenant was written to
// (about 16 hours at the default interval of a minute, a tenant written
// to every minute), and then holds some 600 KB. Each seal covers every
// record before it, so the newest seals, which are kept, still cover the
// records the removed ones did: what is lost is the SIEM's copy of the
// chain as it stood at those older seals, against which a rewrite made
// and resealed during the outage would have shown. Those are counted
// (lockbox_siem_seals_trimmed_unread_total) and logged, as the records
// retention removes unread are. A bound by the audit retention instead
// would let a tenant's seals take some 80 MB for 90 days at a minute's
// interval, and grow for ever with retention off.
const sealsKept = 1000

// SealerConfig configures a Sealer.
type SealerConfig struct {
	Redis redis.UniversalClient
	// Issuer is the seals' "iss": the proxy's configured issuer, as its
	// assertions carry.
	Issuer string
	// Signer returns the proxy's current signing key, which a reload may
	// replace; nil skips the round.
	Signer func() *grantsig.Signer
	// Keys returns the published keys, which check the stored seal a new
	// one must extend (see extends); nil, or a nil set, checks it with the
	// signing key alone.
	Keys func() *grantsig.KeySet
	// Now is the seals' clock; time.Now when nil.
	Now        func() time.Time
	Registerer prometheus.Registerer
	Logger     *slog.Logger
}

// Sealer seals the tenants' audit chains: each round it signs the newest
// entry of every chain written to since its last seal. Several replicas
// may seal at once: a seal only replaces an older one (storeSealScript).
type Sealer struct {
	cfg     SealerConfig
	log     *slog.Logger
	sealed  prometheus.Counter
	failed  prometheus.Counter
	refused prometheus.Counter
	// unread counts the seals removed from a full seal stream before any
	// SIEM forwarder read them (see sealsKept).
	unread prometheus.Counter
	// kept is sealsKept; tests lower it.
	kept int
}

// ErrSealRefused is wrapped by the errors of a seal refused because the
// chain no longer extends its stored seal: the sealed records, or the
// seal, were changed in Redis. Signing the chain as it is would lend the
// key to the rewrite.
var ErrSealRefused = errors.New("audit: the chain does not extend its seal")

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
		Help: "Seals of tenants' audit chains by result: sealed (stored), failed (not signed or not stored; each round with failures is logged at warn) or refused (the chain no longer extends its stored seal: records or the seal were changed in Redis; logged at error).",
	}, []string{"result"})
	unread := prometheus.NewCounter(prometheus.CounterOpts{
		Name: "lockbox_siem_seals_trimmed_unread_total",
		Help: "Seals of tenants' audit chains removed from a tenant's full seal stream, to make room for a new one, before any SIEM forwarder read them: they never reached the SIEM; each removal is also logged at warn.",
	})
	if cfg.Registerer != nil {
		for _, c := range []prometheus.Collector{seals, unread} {
			if err := cfg.Registerer.Register(c); err != nil {
				return nil, fmt.Errorf("audit: metrics: %w", err)
			}
		}
	}
	return &Sealer{cfg: cfg, log: cfg.Logger, sealed: seals.WithLabelValues("sealed"), failed: seals.WithLabelValues("failed"),
		refused: seals.WithLabelValues("refused"), unread: unread, kept: sealsKept}, nil
}

// sealLease is how long one replica's claim on a tenant's seal lasts.
const sealLease = time.Minute

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
				s.log.Warn("audit sealing failed; the chains not sealed are sealed at a later round", "err", err)
			}
		}
	}
}

// SealAll seals the chains of the tenants the sealing schedule
// (internal/due) lists as due, those written to since their last seal,
// and returns how many it sealed: each record written marks its tenant,
// so an idle deployment's round costs one command however many tenants it
// serves, and a busy tenant is sealed once a round. A failed seal is
// tried again at the next round.
//
// Several replicas may run it at once: each claims its tenants, and a
// seal only replaces an older one (storeSealScript).
func (s *Sealer) SealAll(ctx context.Context) (int, error) {
	signer := s.cfg.Signer()
	if signer == nil {
		return 0, nil
	}
	sealed, failed, refused := 0, 0, 0
	var first, firstRefused error
	d := due.Drainer{Index: due.New(s.cfg.Redis, due.Seal, s.cfg.Now), Lease: sealLease}
	_, err := d.Drain(ctx, func(ctx context.Context, t string) (time.Time, error) {
		if keys.ValidTenant(t) != nil {
			return time.Time{}, nil
		}
		ok, err := s.seal(ctx, signer, t)
		switch {
		case errors.Is(err, ErrSealRefused):
			// Not a failure to retry quietly: evidence of a rewrite,
			// logged for each tenant and round until an operator looks.
			s.refused.Inc()
			if refused++; firstRefused == nil {
				firstRefused = err
			}
			s.log.Error("audit chain no longer extends its seal; not sealing it", "tenant", t, "err", err)
			return time.Time{}, err
		case err != nil:
			s.failed.Inc()
			if failed++; first == nil {
				first = err
			}
			// Due again at once: the next round tries again.
			return time.Time{}, err
		case ok:
			s.sealed.Inc()
			sealed++
		}
		// Due again when a record is written.
		return time.Time{}, nil
	})
	switch {
	case refused > 0 && failed == 0:
		return sealed, fmt.Errorf("audit: %d seals refused (logged at error); the first: %w", refused, firstRefused)
	case failed > 0:
		// One error for the round, not one per tenant.
		return sealed, fmt.Errorf("audit: %d seals failed; the first: %w", failed, first)
	case err != nil:
		return sealed, fmt.Errorf("audit: seal: %w", err)
	}
	return sealed, nil
}

// SealProbe tells the schedules' rescan (internal/due) whether tenant's
// chain is sealed through its newest entry: a mark lost between a record
// and the schedule leaves the tenant unsealed until the rescan.
func SealProbe(ctx context.Context, p redis.Pipeliner, tenant string, now time.Time) func() (time.Time, bool) {
	sealC := p.Get(ctx, keys.AuditSeal(tenant))
	lastC := p.XRevRangeN(ctx, keys.Audit(tenant), "+", "-", 1)
	return func() (time.Time, bool) {
		msgs, err := lastC.Result()
		if err != nil {
			return now, true // can't tell: look
		}
		if sealC.Err() != nil && !errors.Is(sealC.Err(), redis.Nil) {
			return now, true
		}
		return now, len(msgs) > 0 && sealedID(sealC.Val()) != msgs[0].ID
	}
}

// seal seals tenant's chain through its newest entry unless it is sealed
// through it already, and reports whether it stored a seal. With a seal
// stored, the new one must extend it (extends): the key never signs a
// history that contradicts one it signed before.
func (s *Sealer) seal(ctx context.Context, signer *grantsig.Signer, tenant string) (bool, error) {
	// One MULTI reads the seal, the anchor and the newest entry's id and
	// hash together.
	var sealC, anchorC *redis.StringCmd
	var recordC *redis.IntCmd
	var lastC *redis.XMessageSliceCmd
	_, err := s.cfg.Redis.TxPipelined(ctx, func(p redis.Pipeliner) error {
		sealC = p.Get(ctx, keys.AuditSeal(tenant))
		anchorC = p.Get(ctx, keys.AuditAnchor(tenant))
		recordC = p.Exists(ctx, keys.AuditAnchorRecord(tenant))
		lastC = p.XRevRangeN(ctx, keys.Audit(tenant), "+", "-", 1)
		return nil
	})
	if err != nil && !errors.Is(err, redis.Nil) {
		return false, fmt.Errorf("audit: seal %s: %w", tenant, err)
	}
	msgs, err := lastC.Result()
	if err != nil {
		return false, fmt.Errorf("audit: seal %s: %w", tenant, err)
	}
	stored := sealC.Val()
	if len(msgs) == 0 || sealedID(stored) == msgs[0].ID {
		return false, nil
	}
	if stored != "" {
		if err := s.extends(ctx, signer, tenant, stored, anchorC.Val(), recordC.Val() == 1); err != nil {
			return false, err
		}
	}
	return s.store(ctx, signer, tenant, msgs[0], anchorC.Val())
}

// extends checks that tenant's chain still extends its stored seal: the
// sealed entry carries the sealed hash, or, trimmed by retention, the
// anchor does or lies past it. A hash covers every record before its
// entry, so nothing up to the sealed entry can have changed; the records
// after it are the chain's to vouch for, and verification walks them all
// from the anchor. An error wrapping ErrSealRefused means the sealed
// records, or the stored seal, were changed: no published key (nor the
// signing key) made the seal, or the chain contradicts it. Signing the
// chain as it is would lend the key to the rewrite.
func (s *Sealer) extends(ctx context.Context, signer *grantsig.Signer, tenant, stored, anchor string, anchorRecord bool) error {
	refuse := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s: %s", ErrSealRefused, tenant, fmt.Sprintf(format, args...))
	}
	id, tok, _ := strings.Cut(stored, " ")
	c, _, err := grantsig.VerifySeal(s.keys(signer), tok, s.cfg.Issuer, tenant)
	switch {
	case errors.Is(err, grantsig.ErrUnknownKey):
		// A key retired and no longer published: the seal can be
		// neither trusted nor shown forged. Its claims still say what
		// the chain must extend; a forger gains nothing from a seal
		// that verification reports unverifiable.
		if c.Through == "" {
			return refuse("its seal does not decode")
		}
	case err != nil:
		return refuse("its seal is not Lockbox's: %v", err)
	}
	sealed, err := parseID(id)
	if c.Through != id || err != nil {
		return refuse("its seal names entry %s but is stored as the seal of %s", c.Through, id)
	}
	at := c.SealedAt().Format(time.RFC3339)
	if c.AnchorsBound && anchor != c.Anchor && !anchorRecord {
		// Retention keeps the record with every anchor it sets since
		// seals say so: this one was set otherwise (verification says
		// the same, anchorSince).
		aid, _, _ := strings.Cut(anchor, " ")
		return refuse("the anchor (entry %s) was set since the seal made at %s without the record retention keeps with every anchor: records were deleted by other means than retention", aid, at)
	}
	msgs, err := s.cfg.Redis.XRangeN(ctx, keys.Audit(tenant), id, id, 1).Result()
	if err != nil {
		return fmt.Errorf("audit: seal %s: %w", tenant, err)
	}
	if len(msgs) == 1 {
		if h, _ := msgs[0].Values["h"].(string); h != c.Hash {
			return refuse("entry %s no longer carries the hash sealed at %s: the records up to it were changed and their hashes recomputed", id, at)
		}
		return nil
	}
	// Gone: retention trims the oldest entries and keeps the last one's
	// hash as the anchor, so only an anchor at or past the sealed entry
	// explains it.
	aid, ahash, _ := strings.Cut(anchor, " ")
	switch a, err := parseID(aid); {
	case anchor == "" || err != nil || compareIDs(a, sealed) < 0:
		return refuse("entry %s, sealed at %s, is missing", id, at)
	case compareIDs(a, sealed) == 0 && ahash != c.Hash:
		return refuse("the anchor (entry %s, the last record retention removed) is not the hash sealed at %s", aid, at)
	}
	return nil
}

// keys are the keys a stored seal is checked with: the published ones,
// else the signing key's own.
func (s *Sealer) keys(signer *grantsig.Signer) *grantsig.KeySet {
	if s.cfg.Keys != nil {
		if ks := s.cfg.Keys(); ks != nil {
			return ks
		}
	}
	ks, err := grantsig.NewKeySet(signer.Public())
	if err != nil {
		return nil
	}
	return ks
}

// store signs the seal of tenant's entry m and stores it, unless a seal
// as new is stored already. An entry gone meanwhile (retention trimmed
// it) or changed is an error: it is sealed again from the next round's
// read. A seal stored is on its way to the SIEM (storeSealScript), and
// the tenant is marked on the SIEM schedule for a forwarder to take it.
func (s *Sealer) store(ctx context.Context, signer *grantsig.Signer, tenant string, m redis.XMessage, anchor string) (bool, error) {
	h, _ := m.Values["h"].(string)
	if h == "" {
		return false, fmt.Errorf("audit: seal %s: entry %s carries no chain hash", tenant, m.ID)
	}
	// The anchor read with m: an anchor a later verification finds
	// changed since, without its record, was not set by retention, which
	// keeps the record with every anchor it sets now (AnchorsBound).
	c := grantsig.SealClaims{Issuer: s.cfg.Issuer, Tenant: tenant, Through: m.ID, Hash: h, IssuedAt: s.cfg.Now().Unix(),
		Anchor: anchor, AnchorsBound: true}
	tok, err := signer.SignSeal(c)
	if err != nil {
		return false, fmt.Errorf("audit: seal %s: %w", tenant, err)
	}
	res, err := storeSealScript.Run(ctx, s.cfg.Redis, []string{keys.Audit(tenant), keys.AuditSeal(tenant), keys.AuditSeals(tenant)},
		m.ID, h, tok, c.SealedAt().Format(time.RFC3339), signer.KeyID(), SIEMGroup, s.kept).Int64Slice()
	if err == nil && len(res) != 2 {
		err = fmt.Errorf("the seal script returned %v", res)
	}
	switch {
	case err != nil:
		return false, fmt.Errorf("audit: seal %s: %w", tenant, err)
	case res[0] < 0:
		return false, fmt.Errorf("audit: seal %s: entry %s was removed or changed after it was read", tenant, m.ID)
	case res[0] == 0:
		return false, nil
	}
	if unread := res[1]; unread > 0 {
		s.unread.Add(float64(unread))
		s.log.WarnContext(ctx, "audit seals waiting for the SIEM were removed unread to make room for a new one; no forwarder took them in time",
			"tenant", tenant, "unread", unread, "kept", s.kept)
	}
	// The schedule is provider-wide, outside the tenant's slot, so it is
	// marked after the script, as writers mark it after their
	// transaction. A mark lost (this process died in between, the
	// schedule's node failed over) is restored by the rescan, whose SIEM
	// probe (Forwarder.Probe) looks at the seal stream too; meanwhile the
	// seal waits in the stream, and the tenant's next record marks it
	// again.
	now := s.cfg.Now()
	if err := due.Set(ctx, s.cfg.Redis, tenant, due.Mark{Job: due.SIEM, At: now, Now: now}); err != nil {
		s.log.WarnContext(ctx, "audit seal stored, but its tenant not marked for the SIEM forwarder; it is forwarded with the tenant's next record, or after the schedules' rescan",
			"tenant", tenant, "err", err)
	}
	return true, nil
}

// sealedID is the stream id a stored seal names ("" for none).
func sealedID(stored string) string {
	id, _, _ := strings.Cut(stored, " ")
	return id
}
