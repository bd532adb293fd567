package config

import (
	"bytes"
	"strings"
	"testing"
)

// TestValidateAssertionSecrets: LOCKBOX_PROXY_ASSERTION_SECRET_FILES names
// configured services once each, with usable secrets of their own; a
// secret the deployment already uses (for tokens, webhooks, Redis) is
// refused, since the upstream holding it could then act as an identity
// provider, as Lockbox's notifier or on the store. A replica without the
// proxy does not read it.
func TestValidateAssertionSecrets(t *testing.T) {
	const redisURL = "redis://127.0.0.1:6379/0"
	jwks := writeFile(t, "jwks.json", `{"keys":[]}`)
	signing := writeFile(t, "signing.pem", "-----BEGIN PRIVATE KEY-----")
	ex := writeFile(t, "exchange.secret", "exchange-0123456789abcdef0123456789\n")
	sp := writeFile(t, "sharepoint.secret", "sharepoint-0123456789abcdef01234567\n")
	short := writeFile(t, "short.secret", "0123456789\n")
	tokenSecret := writeFile(t, "hmac", "token-0123456789abcdef0123456789abcdef\n")
	issuers := writeFile(t, "issuers.yaml", "issuers:\n- issuer: https://idp.contoso.example\n  audience: lockbox\n  scope:\n    tenant: contoso\n  hmac_secret_file: "+tokenSecret+"\n")
	// The same secret, without the line ending.
	sameAsToken := writeFile(t, "same", "token-0123456789abcdef0123456789abcdef")
	webhook := writeFile(t, "webhook", "webhook-0123456789abcdef0123456789abcd\n")
	sameAsWebhook := writeFile(t, "same-webhook", "webhook-0123456789abcdef0123456789abcd")
	// The same, but for white space around it, which counts for nothing.
	spacedWebhook := writeFile(t, "spaced-webhook", "  webhook-0123456789abcdef0123456789abcd\n")
	base := func(extra ...string) map[string]string {
		env := map[string]string{"LOCKBOX_REDIS_URL": redisURL, "LOCKBOX_JWT_JWKS_FILE": jwks, "LOCKBOX_PROXY_SIGNING_KEY_FILE": signing,
			"LOCKBOX_UPSTREAMS": "exchange=http://127.0.0.1:9001,sharepoint=https://sp.example/base"}
		for i := 0; i+1 < len(extra); i += 2 {
			env[extra[i]] = extra[i+1]
		}
		return env
	}
	const v = "LOCKBOX_PROXY_ASSERTION_SECRET_FILES"
	for name, tc := range map[string]struct {
		env  map[string]string
		want string // "" for valid
	}{
		"two services":               {base(v, "exchange="+ex+", sharepoint="+sp), ""},
		"not a pair":                 {base(v, ex), v + `: "` + ex + `" is not service=file`},
		"no file":                    {base(v, "exchange="), v + `: "exchange=" is not service=file`},
		"listed twice":               {base(v, "exchange="+ex+",exchange="+sp), v + ": service exchange is listed twice"},
		"not an upstream":            {base(v, "teams="+ex), v + ": service teams is not in LOCKBOX_UPSTREAMS"},
		"missing file":               {base(v, "exchange="+ex+"-gone"), v + ": exchange: open " + ex + "-gone"},
		"short secret":               {base(v, "exchange="+short), v + ": exchange: " + short + ": grantsig: not a usable HS256 secret"},
		"one secret for two":         {base(v, "exchange="+ex+",sharepoint="+ex), v + ": sharepoint: " + ex + " holds the same secret as the assertion secret of exchange"},
		"the token secret":           {base("LOCKBOX_JWT_JWKS_FILE", "", "LOCKBOX_JWT_HMAC_SECRET_FILE", tokenSecret, v, "exchange="+sameAsToken), "holds the same secret as LOCKBOX_JWT_HMAC_SECRET_FILE"},
		"an issuer's secret":         {base("LOCKBOX_JWT_JWKS_FILE", "", "LOCKBOX_ISSUERS_FILE", issuers, v, "sharepoint="+sameAsToken), "holds the same secret as the hmac_secret_file of issuer https://idp.contoso.example"},
		"the webhook secret":         {base("LOCKBOX_WEBHOOK_URLS", "https://hooks.example/lockbox", "LOCKBOX_WEBHOOK_SECRET_FILE", webhook, v, "exchange="+sameAsWebhook), "holds the same secret as LOCKBOX_WEBHOOK_SECRET_FILE"},
		"the webhook secret, spaced": {base("LOCKBOX_WEBHOOK_URLS", "https://hooks.example/lockbox", "LOCKBOX_WEBHOOK_SECRET_FILE", spacedWebhook, v, "exchange="+sameAsWebhook), "holds the same secret as LOCKBOX_WEBHOOK_SECRET_FILE"},
		"the Redis password":         {base("LOCKBOX_REDIS_PASSWORD_FILE", webhook, v, "exchange="+sameAsWebhook), "holds the same secret as LOCKBOX_REDIS_PASSWORD_FILE"},
		"no proxy, not read":         {base("LOCKBOX_SERVE", "api,jobs", "LOCKBOX_UPSTREAMS", "", v, "exchange="+short), ""},
		"proxy alone, still read":    {base("LOCKBOX_SERVE", "proxy", v, "exchange="+short), "not a usable HS256 secret"},
	} {
		t.Run(name, func(t *testing.T) {
			c, err := Load(tc.env)
			if err == nil {
				err = c.Validate(ModeServe)
			}
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("Validate: %v", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("Validate: %v, want an error containing %q", err, tc.want)
			}
		})
	}

	// lockbox dev's demo services take no secret: said so, rather than
	// that exchange is not an upstream.
	dev, err := Load(map[string]string{v: "exchange=" + ex})
	if err != nil {
		t.Fatal(err)
	}
	if err := dev.Validate(ModeDev); err == nil || !strings.Contains(err.Error(), "the demo services of \"lockbox dev\" check assertions with the signing key only") {
		t.Errorf("lockbox dev with demo services: %v", err)
	}

	// What Validate passed is what the server loads: the files' bytes
	// without their line endings.
	c, err := Load(base(v, "exchange="+ex))
	if err != nil {
		t.Fatal(err)
	}
	secrets, err := c.LoadAssertionSecrets()
	if err != nil || len(secrets) != 1 || !bytes.Equal(secrets["exchange"], []byte("exchange-0123456789abcdef0123456789")) {
		t.Fatalf("secrets %q, %v", secrets, err)
	}
}
