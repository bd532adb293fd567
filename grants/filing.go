package grants

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/lockbox-oss/lockbox/internal/fault"
	"github.com/lockbox-oss/lockbox/internal/keys"
)

// IdempotencyWindow is how long the Idempotency-Key of a filing is
// remembered: a retry within it is answered with the request the filing
// made, and the key sent with another request is refused. After it the key
// is forgotten, and a filing sent with it is a new one. A day covers a
// client's retries and a person running a failed command again the next
// morning, well inside the shortest request retention (24 h after the
// request ended), so the request a remembered key names is still there.
const IdempotencyWindow = 24 * time.Hour

// MaxIdempotencyKey is the longest Idempotency-Key taken, in bytes: room
// for a UUID, a ULID or a hash in any usual spelling, and no more.
const MaxIdempotencyKey = 255

// CodeKeyReused is the error code of an Idempotency-Key sent again, within
// IdempotencyWindow, with another request than the one it was first sent
// with.
const CodeKeyReused = "idempotency_key_reused"

// ValidIdempotencyKey checks the shape of an Idempotency-Key: 1 to
// MaxIdempotencyKey visible ASCII characters, neither '"' nor '\', which
// the header's string syntax would need escaped (RFC 8941 3.3.3). The key
// reaches Redis only as a digest; the bound keeps what a caller makes the
// server hash and log small.
func ValidIdempotencyKey(k string) error {
	if k == "" || len(k) > MaxIdempotencyKey {
		return newErr(ErrInvalid, "invalid_idempotency_key", "the Idempotency-Key must be 1 to %d characters", MaxIdempotencyKey)
	}
	for i := 0; i < len(k); i++ {
		if c := k[i]; c <= ' ' || c > '~' || c == '"' || c == '\\' {
			return newErr(ErrInvalid, "invalid_idempotency_key",
				"the Idempotency-Key may hold only visible ASCII characters other than '\"' and '\\' (such as a UUID); character %d is not one", i+1)
		}
	}
	return nil
}

// filing is one filing sent with an Idempotency-Key.
type filing struct {
	tenant string
	// caller names the filer and their key together (keys.Filing): two
	// callers sending the same key never meet, and neither learns that
	// the other used it.
	caller string
	// digest is of the request as sent, to tell a retry (the same) from
	// the key reused for another request.
	digest string
}

func newFiling(subject, key string, in CreateInput) (filing, error) {
	body, err := json.Marshal(in)
	if err != nil {
		return filing{}, fmt.Errorf("grants: digest of the filing: %w", err)
	}
	who := sha256.New()
	// Length-prefixed, so no subject and key run together into another
	// pair's.
	fmt.Fprintf(who, "%d:%s%d:%s", len(subject), subject, len(key), key)
	d := sha256.Sum256(body)
	return filing{tenant: in.Tenant, caller: hex.EncodeToString(who.Sum(nil)), digest: hex.EncodeToString(d[:])}, nil
}

// filed is what keys.Filing (with the request id) and keys.FilingClaim
// (without) hold.
type filed struct {
	RequestID string    `json:"request_id,omitempty"`
	Tenant    string    `json:"tenant"`
	Digest    string    `json:"digest"`
	ExpiresAt time.Time `json:"expires_at"`
}

// record is what f leaves once it filed request id at now.
func (f filing) record(id string, now time.Time) []byte {
	b, _ := json.Marshal(filed{RequestID: id, Tenant: f.tenant, Digest: f.digest, ExpiresAt: now.Add(IdempotencyWindow)})
	return b
}

func (f filing) reused() error {
	return newErr(ErrConflict, "idempotency_key_reused",
		"this Idempotency-Key was sent with another request within the last %s; send a new key for a new request", Duration(IdempotencyWindow))
}

// remembered returns the id of the request f's key filed within
// IdempotencyWindow before now, "" when it filed none; an error wrapping
// ErrConflict (CodeKeyReused) when the key filed another request. The
// window is judged by its absolute end, the key's TTL being only its
// cleanup, as for grants.
func (s *Store) remembered(ctx context.Context, g getter, f filing, now time.Time) (string, error) {
	b, err := g.Get(ctx, keys.Filing(f.tenant, f.caller)).Bytes()
	if errors.Is(err, redis.Nil) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	var rec filed
	if err := json.Unmarshal(b, &rec); err != nil || rec.RequestID == "" || rec.ExpiresAt.IsZero() {
		// Filing again could file the request twice: refused until the
		// record expires, or an operator removes it.
		return "", newErr(fault.ErrUnreadable, "record_unreadable",
			"the filing this Idempotency-Key names cannot be read; retry with a new key after checking your requests")
	}
	switch {
	case !now.Before(rec.ExpiresAt):
		return "", nil
	case rec.Digest != f.digest:
		return "", f.reused()
	}
	return rec.RequestID, nil
}

// claim notes, for IdempotencyWindow, the tenant and request f's key is
// sent with, before its filing: keys.Filing is in the tenant's slot, where
// the same key sent for another tenant is not seen. A claim of another
// request within the window is refused as the key reused; one left by a
// filing that never committed (refused, or cut off) with the same request
// is taken again.
func (s *Store) claim(ctx context.Context, f filing, now time.Time) error {
	key := keys.FilingClaim(f.caller)
	for range s.cfg.MaxRetries {
		err := s.cfg.Redis.Watch(ctx, func(tx *redis.Tx) error {
			b, err := tx.Get(ctx, key).Bytes()
			switch {
			case errors.Is(err, redis.Nil):
			case err != nil:
				return err
			default:
				var rec filed
				// One that does not decode is overwritten: a claim only
				// refuses, it never answers a retry (keys.Filing does).
				if json.Unmarshal(b, &rec) == nil && now.Before(rec.ExpiresAt) {
					if rec.Tenant != f.tenant || rec.Digest != f.digest {
						return f.reused()
					}
					return nil
				}
			}
			_, err = tx.TxPipelined(ctx, func(p redis.Pipeliner) error {
				p.Set(ctx, key, f.record("", now), IdempotencyWindow)
				return nil
			})
			return err
		}, key)
		if !errors.Is(err, redis.TxFailedErr) {
			return err
		}
	}
	return newErr(ErrConflict, "conflict", "request not filed: the same Idempotency-Key was sent concurrently each time; retry")
}

// CreateOnce is Create for a filing sent with an Idempotency-Key (key, as
// the draft "The Idempotency-Key HTTP Header Field" has it): the same key
// sent again by the same caller within IdempotencyWindow, with the same
// request, files nothing, writes no audit record and sends no notification,
// and returns the request the first filing made, as the caller may see it
// now, with replayed true. Sent with another request, it is refused (an
// ErrConflict with code CodeKeyReused), whatever became of the first. The
// key is remembered in the transaction that files the request, so no
// request is filed without it, and two filings sent at once with it file
// one request.
func (s *Store) CreateOnce(ctx context.Context, actor Actor, in CreateInput, key string) (r Request, replayed bool, err error) {
	if err := ValidIdempotencyKey(key); err != nil {
		return Request{}, false, err
	}
	f, err := newFiling(actor.Principal.Subject, key, in)
	if err != nil {
		return Request{}, false, err
	}
	return s.create(ctx, actor, in, &f)
}

// replay answers a filing whose key filed request id.
func (s *Store) replay(ctx context.Context, actor Actor, id string) (Request, bool, error) {
	r, err := s.Get(ctx, actor.Principal, id)
	if err != nil {
		return Request{}, false, err
	}
	s.cfg.Logger.InfoContext(ctx, "request filing answered from its Idempotency-Key", "request_id", id, "tenant", r.Tenant, "requester", actor.Principal.Subject)
	return r, true, nil
}
