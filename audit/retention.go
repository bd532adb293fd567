package audit

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/lockbox-oss/lockbox/audit/record"
	"github.com/lockbox-oss/lockbox/internal/fault"
	"github.com/lockbox-oss/lockbox/internal/keys"
)

// trimScript removes the stream's entries before ARGV[1] (an exclusive
// MINID threshold) and records the hash of the last one removed (ARGV[3],
// whose id is ARGV[2]) as the chain's anchor, so verification of what
// remains starts from it. Trimming only moves forward: several replicas
// may trim at once, and an older cut arriving late changes nothing.
var trimScript = redis.NewScript(`
local cur = redis.call('GET', KEYS[2])
if cur then
  local cms, cseq = string.match(cur, '^(%d+)-(%d+) ')
  local nms, nseq = string.match(ARGV[2], '^(%d+)-(%d+)$')
  cms, cseq, nms, nseq = tonumber(cms), tonumber(cseq), tonumber(nms), tonumber(nseq)
  if nms < cms or (nms == cms and nseq <= cseq) then return 0 end
end
local n = redis.call('XTRIM', KEYS[1], 'MINID', ARGV[1])
redis.call('SET', KEYS[2], ARGV[2] .. ' ' .. ARGV[3])
return n
`)

// anchor returns the hash the tenant's chain starts from: "" for a chain
// never trimmed, else the hash of the last record retention removed.
func (l *Log) anchor(ctx context.Context, tenant string) (string, error) {
	a, err := l.rdb.Get(ctx, keys.AuditAnchor(tenant)).Result()
	if err == redis.Nil {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	_, h, _ := strings.Cut(a, " ")
	return h, nil
}

// Trim removes tenant's records created before cutoff, oldest first, and
// keeps the chain verifiable from what remains. It returns how many it
// removed.
func (l *Log) Trim(ctx context.Context, tenant string, cutoff time.Time) (int, error) {
	if err := keys.ValidTenant(tenant); err != nil {
		return 0, fault.New(fault.ErrInvalid, "invalid_tenant", "%v", err)
	}
	total := 0
	for {
		msgs, err := l.rdb.XRangeN(ctx, keys.Audit(tenant), "-", "+", 500).Result()
		if err != nil {
			return total, fault.Unavailable("audit: trim", err)
		}
		last := -1
		for i, m := range msgs {
			var rec struct{ CreationTime record.Time }
			s, _ := m.Values[field].(string)
			if json.Unmarshal([]byte(s), &rec) != nil || !rec.CreationTime.Before(cutoff) {
				break
			}
			last = i
		}
		if last < 0 {
			return total, nil
		}
		m := msgs[last]
		h, _ := m.Values["h"].(string)
		next, err := nextID(m.ID)
		if err != nil {
			return total, err
		}
		n, err := trimScript.Run(ctx, l.rdb, []string{keys.Audit(tenant), keys.AuditAnchor(tenant)}, next, m.ID, h).Int()
		if err != nil {
			return total, fault.Unavailable("audit: trim", err)
		}
		total += n
		if last < len(msgs)-1 || n == 0 {
			return total, nil
		}
	}
}

// TrimAll applies retention to every tenant's log.
func (l *Log) TrimAll(ctx context.Context, retention time.Duration) (int, error) {
	tenants, err := l.rdb.SMembers(ctx, keys.Tenants()).Result()
	if err != nil {
		return 0, fault.Unavailable("audit: trim", err)
	}
	cutoff := l.now().Add(-retention)
	total := 0
	for _, t := range tenants {
		if keys.ValidTenant(t) != nil {
			continue
		}
		n, err := l.Trim(ctx, t, cutoff)
		total += n
		if err != nil {
			return total, err
		}
	}
	return total, nil
}

// nextID is the smallest stream id after id: the exclusive MINID bound.
func nextID(id string) (string, error) {
	ms, seq, ok := strings.Cut(id, "-")
	s, err := strconv.ParseUint(seq, 10, 64)
	if !ok || err != nil {
		return "", fmt.Errorf("audit: bad stream id %q", id)
	}
	return ms + "-" + strconv.FormatUint(s+1, 10), nil
}
