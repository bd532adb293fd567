// Package chaintest rewrites a tenant's audit chain in Redis as whoever can
// write to Redis could, for the tests of what must catch it: the stored
// seal, a seal kept outside Redis, the sealer's refusal. It computes the
// links itself, as such a writer would, from the chain's published form
// (each entry's "h" is the SHA-1 of its "p", a newline and its "r"), and
// imports nothing of the audit package it tests.
package chaintest

import (
	"context"
	"crypto/sha1"
	"encoding/hex"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/lockbox-oss/lockbox/internal/keys"
)

// Rewrite edits record i (from 0, oldest first) of tenant's log with edit,
// and recomputes every later link and hash and the head: the chain alone
// can't tell. An edit that leaves the record as it was fails t, since the
// test would then prove nothing.
func Rewrite(t testing.TB, rdb redis.UniversalClient, tenant string, i int, edit func(string) string) {
	t.Helper()
	ctx := context.Background()
	stream := keys.Audit(tenant)
	msgs, err := rdb.XRange(ctx, stream, "-", "+").Result()
	if err != nil {
		t.Fatal(err)
	}
	if i >= len(msgs) {
		t.Fatalf("chaintest: record %d of a log of %d", i, len(msgs))
	}
	if err := rdb.Del(ctx, stream).Err(); err != nil {
		t.Fatal(err)
	}
	prev := ""
	for j, m := range msgs {
		r, p, h := m.Values["r"].(string), m.Values["p"].(string), m.Values["h"].(string)
		if j == i {
			if edited := edit(r); edited != r {
				r = edited
			} else {
				t.Fatalf("chaintest: the edit leaves record %d as it was: %s", i, r)
			}
		}
		if j >= i {
			p = prev
			sum := sha1.Sum([]byte(p + "\n" + r))
			h = hex.EncodeToString(sum[:])
		}
		if err := rdb.XAdd(ctx, &redis.XAddArgs{Stream: stream, ID: m.ID, Values: []string{"r", r, "p", p, "h", h}}).Err(); err != nil {
			t.Fatal(err)
		}
		prev = h
	}
	if err := rdb.Set(ctx, keys.AuditHead(tenant), prev, 0).Err(); err != nil {
		t.Fatal(err)
	}
}
