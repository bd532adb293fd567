package rego

import (
	"encoding/json"
	"io/fs"
	"testing"
)

// The catalog's own validation lives in package policy; this only guards the
// embed directive, so a renamed or moved file fails here first.
func TestFSHoldsCatalog(t *testing.T) {
	b, err := fs.ReadFile(FS, "activities/data.json")
	if err != nil {
		t.Fatalf("embedded catalog: %v", err)
	}
	if !json.Valid(b) {
		t.Fatal("embedded activities/data.json is not valid JSON")
	}
}

func TestFSHoldsPolicy(t *testing.T) {
	b, err := fs.ReadFile(FS, "lockbox/authz/authz.rego")
	if err != nil {
		t.Fatalf("embedded policy: %v", err)
	}
	if len(b) == 0 {
		t.Fatal("embedded lockbox/authz/authz.rego is empty")
	}
}
