package notify

import (
	"context"

	"github.com/redis/go-redis/v9"
)

// WithMailer returns c delivering e-mail to m, for tests that read the
// messages themselves.
func WithMailer(c Config, m Mailer) Config {
	c.mailer = m
	return c
}

// SentKey is the key that marks recipient (a target key: "mail:<addr in
// lower case>", "webhook:<URL>") of outbox entry id as being sent, sent,
// dead or skipped.
func SentKey(tenant, id, recipient string) string { return sentKey(tenant, id, hashKey(recipient)) }

// DefangWork returns how many passes over s Defang makes to find
// scheme-only URIs, and how many bytes of scheme names it looks up, so
// that tests can bound its work without timing it.
func DefangWork(s string) (passes, lookedUp int) {
	_, w := defang(s)
	return w.passes, w.lookedUp
}

// LoadLeaseScript loads the script of a replica's lease on a recipient:
// Script.Run sends EVALSHA, and EVAL after it when the server does not
// have the script yet, and a test that counts leases by their commands
// before they run must see one per lease.
func LoadLeaseScript(ctx context.Context, rdb redis.Scripter) error {
	return leaseScript.Load(ctx, rdb).Err()
}
