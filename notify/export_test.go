package notify

// WithMailer returns c delivering e-mail to m, for tests that read the
// messages themselves.
func WithMailer(c Config, m Mailer) Config {
	c.mailer = m
	return c
}
