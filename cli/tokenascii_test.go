package cli

import (
	"os"
	"path/filepath"
	"testing"
	"unicode/utf16"
)

// TestTokenNotASCII: a token is ASCII (a JWT is base64url and dots), but
// a token file saved by Notepad as "UTF-8 with BOM" starts with an
// invisible byte-order mark, one written by PowerShell 5's ">" is UTF-16,
// and a token pasted from a document may keep its curly quotes. The first
// and last went to the API, which answered "malformed token" (401, exit
// 3: "you may not"), with nothing to see in the file; the UTF-16 one was
// refused as holding "whitespace or control characters". Each is now
// refused before anything is sent, saying what is wrong with it.
func TestTokenNotASCII(t *testing.T) {
	dir := t.TempDir()
	bom := filepath.Join(dir, "bom.jwt")
	if err := os.WriteFile(bom, []byte("\ufeff"+fileTok+"\r\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	wide := filepath.Join(dir, "utf16.jwt")
	var b []byte
	for _, u := range utf16.Encode([]rune("\ufeff" + fileTok + "\r\n")) {
		b = append(b, byte(u), byte(u>>8))
	}
	if err := os.WriteFile(wide, b, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		args []string
		env  map[string]string
		want string
	}{
		{"a byte-order mark", []string{"get", "requests", "--token-file", bom}, nil,
			"lockboxctl: the token from --token-file " + bom + " starts with a byte-order mark (U+FEFF): save it as plain ASCII text, without one\n"},
		{"UTF-16", []string{"get", "requests", "--token-file", wide}, nil,
			"lockboxctl: the token from --token-file " + wide + " is UTF-16 text: save it as plain ASCII text (PowerShell: Set-Content -Encoding ascii)\n"},
		{"curly quotes", []string{"approve", reqID}, map[string]string{EnvToken: "\u201c" + fileTok + "\u201d"},
			"lockboxctl: the token from $" + EnvToken + " holds a character no token has (U+201C): give the token alone, as plain ASCII text\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := run(t, tc.args, tc.env, nil)
			if r.code != exitError || r.stderr != tc.want {
				t.Errorf("exit %d, stderr %q: want exit 1 and %q", r.code, r.stderr, tc.want)
			}
			if len(r.calls) != 0 {
				t.Errorf("calls were made: %v", r.calls)
			}
		})
	}
}
