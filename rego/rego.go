// Package rego holds the default policies and activity catalog, shipped
// inside the binary; security teams override them with LOCKBOX_POLICY_DIR.
//
// The files, not this Go code, are what security teams edit. The package
// only embeds them so that a binary without a policy directory still has a
// complete, tested default. It imports nothing from Lockbox.
package rego

import "embed"

// FS is the default policy directory, laid out exactly as on disk:
// lockbox/authz/authz.rego is the default policy (data.lockbox.authz) and
// activities/data.json the activity catalog (data.activities). The Rego
// tests come along; the engine skips *_test.rego files.
//
//go:embed activities lockbox
var FS embed.FS
