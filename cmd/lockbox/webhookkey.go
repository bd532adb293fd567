package main

import (
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/lockbox-oss/lockbox/config"
	"github.com/lockbox-oss/lockbox/notify"
)

const webhookKeyUsage = `usage: lockbox webhook-key [--any] URL

Prints, in hex, the key that signs the v2 signatures of the webhook receiver at URL: derived
from LOCKBOX_WEBHOOK_SECRET_FILE's secret and URL exactly as LOCKBOX_WEBHOOK_URLS lists it (see
README, Notifications). Give the receiver this key, never the secret. A URL that is not in
LOCKBOX_WEBHOOK_URLS is refused, a typo being likelier than a receiver not yet configured:
--any prints its key all the same.`

// webhookKey prints a webhook receiver's key (notify.WebhookKey), so the
// operator can hand each receiver its own and keep the shared secret,
// which signs v1 for every receiver, to Lockbox.
func webhookKey(args []string, env map[string]string, stdout io.Writer) error {
	fset := flag.NewFlagSet("lockbox webhook-key", flag.ContinueOnError)
	fset.SetOutput(io.Discard)
	anyURL := fset.Bool("any", false, "print the key of a URL that is not in LOCKBOX_WEBHOOK_URLS")
	// --any may follow the URL, as in "lockbox policy test DIR -v".
	var urls []string
	for rest := args; ; {
		if err := fset.Parse(rest); errors.Is(err, flag.ErrHelp) || len(rest) == 1 && rest[0] == "help" {
			fmt.Fprintln(stdout, webhookKeyUsage)
			return errHelpShown
		} else if err != nil {
			return wrongCommandLine("webhook-key", err)
		}
		if rest = fset.Args(); len(rest) == 0 {
			break
		}
		if i := len(args) - len(rest); i > 0 && args[i-1] == "--" {
			urls = append(urls, rest...)
			break
		}
		urls, rest = append(urls, rest[0]), rest[1:]
	}
	if len(urls) != 1 {
		usage, _, _ := strings.Cut(webhookKeyUsage, "\n")
		return wrongCommandLine("webhook-key", fmt.Errorf("one URL, got %d: %s", len(urls), usage))
	}
	// As LOCKBOX_WEBHOOK_URLS is read: the spaces around a URL are not
	// part of it.
	u := strings.TrimSpace(urls[0])
	cfg, err := config.Load(env)
	if err != nil {
		return err
	}
	if cfg.WebhookSecret == "" {
		return errors.New("LOCKBOX_WEBHOOK_SECRET_FILE: required: every receiver's key is derived from its secret")
	}
	if !*anyURL && !slices.Contains(cfg.Webhooks(), u) {
		// The URL is not repeated: a receiver's may hold its credential.
		return fmt.Errorf("webhook-key: the URL is not one of LOCKBOX_WEBHOOK_URLS (%d, compared exactly as written there); "+
			"a key derived from a misspelt URL verifies nothing: check it, or give --any for a receiver not yet configured",
			len(cfg.Webhooks()))
	}
	fmt.Fprintln(stdout, hex.EncodeToString(notify.WebhookKey([]byte(cfg.WebhookSecret.Value()), u)))
	return nil
}
