package grants

import (
	"context"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/hex"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/lockbox-oss/lockbox/identity"
	"github.com/lockbox-oss/lockbox/internal/fault"
	"github.com/lockbox-oss/lockbox/internal/keys"
)

// position is a place in a request index, newest first: the order
// ZREVRANGEBYSCORE reads, by score (the creation millisecond) and, within
// one millisecond, by member, both descending. Members are never removed
// from the request indexes, and a new member takes its place in this order
// without moving any other, so a listing that continues after a position
// neither repeats nor skips a request that was there before, however many
// were created since (an offset would have shifted by each of them).
type position struct {
	score  int64
	member string
}

// before reports whether z comes after p in the index's order.
func (p position) before(z redis.Z) bool {
	s := int64(z.Score)
	return s < p.score || s == p.score && z.Member.(string) < p.member
}

// after reports whether z comes before p in the index's order: is newer.
func (p position) after(z redis.Z) bool {
	s := int64(z.Score)
	return s > p.score || s == p.score && z.Member.(string) > p.member
}

// positionOf is the place of index member z.
func positionOf(z redis.Z) position {
	return position{score: int64(z.Score), member: z.Member.(string)}
}

// indexScan reads a request index newest first in batches, each
// continuing after the last member it returned; or, newer set, oldest
// first from after, to read the requests newer than a page.
type indexScan struct {
	rdb   redis.UniversalClient
	index string
	// min and max are the lowest and highest scores to read ("-inf", or
	// CreatedAfter's millisecond; "+inf", or CreatedBefore's).
	min, max string
	// after is where the scan stands; nil before the first member.
	after *position
	// newer reads towards the newest member: ZRANGEBYSCORE from after.
	newer bool
	// batch, when set, is the size of the first read, each following
	// one twice the last up to scanBatch; 0 reads scanBatch at once.
	batch int64
}

// scanBatch is how many index members one round trip reads.
const scanBatch = 200

// next returns the following members, none at the end of the index.
func (sc *indexScan) next(ctx context.Context) ([]redis.Z, error) {
	lo, hi := sc.min, sc.max
	if sc.after != nil {
		// Inclusive: other members of the position's millisecond may still
		// come after it; those at or before it are dropped below.
		if sc.newer {
			lo = strconv.FormatInt(sc.after.score, 10)
		} else {
			hi = strconv.FormatInt(sc.after.score, 10)
		}
	}
	size := int64(scanBatch)
	if sc.batch > 0 {
		size = sc.batch
		sc.batch = min(2*sc.batch, scanBatch)
	}
	for offset := int64(0); ; offset, size = offset+size, min(2*size, scanBatch) {
		by := &redis.ZRangeBy{Min: lo, Max: hi, Offset: offset, Count: size}
		read := sc.rdb.ZRevRangeByScoreWithScores
		if sc.newer {
			read = sc.rdb.ZRangeByScoreWithScores
		}
		zs, err := read(ctx, sc.index, by).Result()
		if err != nil {
			return nil, fault.Unavailable("grants: list", err)
		}
		i := 0
		if sc.after != nil {
			past := sc.after.before
			if sc.newer {
				past = sc.after.after
			}
			for i < len(zs) && !past(zs[i]) {
				i++
			}
		}
		// The offset only walks the members of the position's own
		// millisecond that come before it (more than a batch of them only
		// when that many requests were created within one millisecond);
		// members created meanwhile join those or come later, so it never
		// passes over one still to read.
		if i == len(zs) && int64(len(zs)) == size {
			continue
		}
		zs = zs[i:]
		if len(zs) > 0 {
			last := positionOf(zs[len(zs)-1])
			sc.after = &last
		}
		return zs, nil
	}
}

// cursorVersion is the first field of every cursor that continues a
// listing with older requests (Page.Next); a change of format takes a new
// one, and the cursors of the old one are refused.
const cursorVersion = "r1"

// newerCursorVersion is the first field of a cursor that goes back to the
// requests newer than a page (Page.Prev). It is a version of its own, not
// a field added to the old cursors, so that every cursor handed out before
// reads as it did; a replica from before it refuses it as any cursor it
// did not return.
const newerCursorVersion = "n1"

// maxCursorLen bounds the cursor a caller may send; every cursor Lockbox
// returns is shorter.
const maxCursorLen = 256

// cursorScope is what a cursor is bound to: the listing's effective filter
// (after a tenant user's tenant was filled in) and the caller. A cursor
// carries a checksum of its scope and position, so one used with other
// filters, by another caller, or changed on the way is refused rather
// than quietly continuing some other listing. The checksum is no secret
// and no signature: a cursor is only a place in the index, and every
// request after it is filtered and checked against what the caller may
// see exactly as in a listing without one, so a forged cursor shows
// nothing the caller couldn't list anyway.
type cursorScope struct {
	tenant         string
	state          State
	createdAfter   time.Time
	createdBefore  time.Time
	excludePending bool
	subject        string
	callerTenant   string
}

func scopeOf(p identity.Principal, f Filter) cursorScope {
	return cursorScope{tenant: f.Tenant, state: f.State, createdAfter: f.CreatedAfter,
		createdBefore: f.CreatedBefore, excludePending: f.ExcludePending,
		subject: p.Subject, callerTenant: p.TenantID}
}

// stamp formats a bound of the scope; the zero time is no bound.
func stamp(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// check returns the checksum of a position within the scope, for a cursor
// of version (cursorVersion or newerCursorVersion): a cursor's direction
// can't be changed without its checksum.
func (sc cursorScope) check(version string, pos position) string {
	h := sha256.New()
	fields := []string{version, sc.tenant, string(sc.state), stamp(sc.createdAfter), sc.subject, sc.callerTenant,
		strconv.FormatInt(pos.score, 10), pos.member}
	// The bounds only the admin center sets are hashed only when set:
	// every other listing keeps the checksum it had before they existed,
	// so its cursors survive an upgrade, and replicas of both versions
	// accept each other's while one rolls out. Two more fields make an
	// input no scope without them hashes.
	if !sc.createdBefore.IsZero() || sc.excludePending {
		excl := ""
		if sc.excludePending {
			excl = "exclude-pending"
		}
		fields = append(fields, stamp(sc.createdBefore), excl)
	}
	// Each field length-prefixed, so no two scopes hash the same input.
	for _, s := range fields {
		var n [8]byte
		binary.BigEndian.PutUint64(n[:], uint64(len(s)))
		h.Write(n[:])
		h.Write([]byte(s))
	}
	return hex.EncodeToString(h.Sum(nil)[:8])
}

// encode returns the cursor of the listing continuing after pos.
func (sc cursorScope) encode(pos position) string {
	return sc.encodeAs(cursorVersion, pos)
}

// encodeNewer returns the cursor of the requests newer than pos.
func (sc cursorScope) encodeNewer(pos position) string {
	return sc.encodeAs(newerCursorVersion, pos)
}

func (sc cursorScope) encodeAs(version string, pos position) string {
	s := strings.Join([]string{version, strconv.FormatInt(pos.score, 10), pos.member, sc.check(version, pos)}, ":")
	return base64.RawURLEncoding.EncodeToString([]byte(s))
}

// decode returns the position of cursor c and whether it goes back to
// newer requests, refusing any cursor that encode or encodeNewer did not
// return for this scope.
func (sc cursorScope) decode(c string) (pos position, newer bool, err error) {
	bad := newErr(ErrInvalid, "invalid_cursor",
		"the cursor is not one this server returned to you for this listing: pass next_cursor or prev_cursor unchanged, with the same tenant, state and created_after")
	if len(c) > maxCursorLen {
		return position{}, false, bad
	}
	b, err := base64.RawURLEncoding.Strict().DecodeString(c)
	if err != nil {
		return position{}, false, bad
	}
	parts := strings.Split(string(b), ":")
	if len(parts) != 4 || parts[0] != cursorVersion && parts[0] != newerCursorVersion {
		return position{}, false, bad
	}
	newer = parts[0] == newerCursorVersion
	score, err := strconv.ParseInt(parts[1], 10, 64)
	if err != nil {
		return position{}, false, bad
	}
	pos = position{score: score, member: parts[2]}
	if (pos.member == olderEdge || pos.member == newerEdge) && sc.encodeAs(parts[0], pos) == c {
		return pos, newer, nil // a millisecond's edge (lister.read)
	}
	// The member's shape is that of the index the scope reads: an id in
	// a tenant's, tenant/id in the provider-wide one.
	id := pos.member
	if sc.tenant == "" {
		var tenant string
		var ok bool
		if tenant, id, ok = strings.Cut(pos.member, "/"); !ok || !keys.IsTenant(tenant) {
			return position{}, false, bad
		}
	}
	if !keys.IsUUID(id) || sc.encodeAs(parts[0], pos) != c {
		return position{}, false, bad
	}
	return pos, newer, nil
}
