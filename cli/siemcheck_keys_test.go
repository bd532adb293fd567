package cli

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// An empty --keys file is what "curl -s $LOCKBOX_ADDR/v1/keys > FILE"
// leaves when curl reached no server: check-siem said "not the JWKS GET
// /v1/keys serves: grantsig: JWKS: unexpected end of JSON input", which
// named a parser's problem, not the empty file.
func TestReadKeysSaysTheFileIsEmpty(t *testing.T) {
	for _, content := range []string{"", "\n", " \r\n\t"} {
		path := filepath.Join(t.TempDir(), "lockbox-keys.json")
		if err := os.WriteFile(path, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		_, err := readKeys(path)
		want := "--keys " + path + " is empty: fetch it with curl -s $LOCKBOX_ADDR/v1/keys > " + path
		if err == nil || err.Error() != want {
			t.Errorf("file %q: %v, want %q", content, err, want)
		}
	}
	// A file that holds something else is still not a JWKS.
	path := filepath.Join(t.TempDir(), "keys.json")
	if err := os.WriteFile(path, []byte("<html>"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := readKeys(path); err == nil || !strings.Contains(err.Error(), "not the JWKS GET /v1/keys serves") {
		t.Errorf("not JSON: %v", err)
	}
}
