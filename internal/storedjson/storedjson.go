// Package storedjson decodes the JSON records Lockbox keeps in Redis
// (requests, grants, tenant settings, registry entries) and tells a record
// a newer version of Lockbox wrote, during a rolling upgrade, from one this
// version wrote: the newer one holds fields this version does not know.
// What the caller does with such a record is its own rule (refuse to
// decide on it, refuse to write it back); docs/operations.md states them.
package storedjson

import (
	"bytes"
	"encoding/json"
)

// Decode decodes b into v, which may hold defaults for the fields b leaves
// out. newer reports that b is a record of v's type that also holds fields
// v does not know; v is then decoded without them. A record this version
// wrote is decoded once: the lenient second decode runs only when the
// strict one failed.
func Decode(b []byte, v any) (newer bool, err error) {
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if dec.Decode(v) == nil && !dec.More() {
		return false, nil
	}
	// The strict decode stopped at the first field it did not know, or at
	// an error; the fields before it were set as json.Unmarshal sets them,
	// so decoding again over them gives what a lenient decode would.
	if err := json.Unmarshal(b, v); err != nil {
		return false, err
	}
	return true, nil
}
