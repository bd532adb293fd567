package cli

import (
	"strings"
	"testing"

	"github.com/lockbox-oss/lockbox/api/wire"
)

// TestCursorHintIsQuotedForTheShell: the hint to continue a list is
// copied onto a command line, so a cursor with characters the shell reads
// (a ; or $(...) from a broken or hostile server) is shown single-quoted,
// as one word that runs nothing; an ordinary cursor is shown as it is.
func TestCursorHintIsQuotedForTheShell(t *testing.T) {
	for _, tc := range []struct{ cursor, want string }{
		{"x;reboot $(id) `id` it's", `--cursor 'x;reboot $(id) ` + "`id`" + ` it'\''s' (or use --all)`},
		{"a b", `--cursor 'a b' (or use --all)`},
		{"eyJ0IjoiMjAyNiJ9.AbC-_=+/:1", `--cursor eyJ0IjoiMjAyNiJ9.AbC-_=+/:1 (or use --all)`},
		{"~root", `--cursor '~root' (or use --all)`},
	} {
		for _, c := range []struct {
			args  []string
			reply map[string]reply
		}{
			{[]string{"get", "requests"}, map[string]reply{
				"GET /v1/requests": {200, mustJSON(wire.RequestList{Requests: []wire.Request{sampleRequest()}, NextCursor: tc.cursor})}}},
			{[]string{"audit", "search"}, map[string]reply{
				"GET /v1/audit": {200, mustJSON(wire.RecordPage{Records: sampleRecords(), NextCursor: tc.cursor})}}},
		} {
			r := run(t, c.args, nil, c.reply)
			if r.code != 0 || !strings.Contains(r.stderr, tc.want) {
				t.Errorf("%v, cursor %q: exit %d, stderr %q, want %q", c.args, tc.cursor, r.code, r.stderr, tc.want)
			}
		}
	}
}
