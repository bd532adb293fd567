// Package rego holds the default policies and activity catalog, shipped
// inside the binary; security teams override them with LOCKBOX_POLICY_DIR.
//
// The files, not this Go code, are what security teams edit. The package
// only embeds them so that a binary without a policy directory still has a
// complete, tested default. It imports nothing from Lockbox.
package rego

import "embed"

// FS is the default policy directory, laid out exactly as on disk:
// activities/data.json is the activity catalog (OPA data.activities).
//
//go:embed activities
var FS embed.FS
