package notify

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
