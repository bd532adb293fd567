package notify_test

import (
	"strconv"
	"strings"
	"testing"

	"github.com/lockbox-oss/lockbox/notify"
)

// defangShapes are the inputs BenchmarkDefang measures: ordinary prose,
// and repetitions of short patterns chosen to make each of Defang's steps
// work hardest (a colon per scheme, one long scheme, many schemes with a
// separator every other byte, long host names, UNC runs, IDNA dots, one
// match per two bytes).
var defangShapes = []struct{ name, unit, last string }{
	{"prose", "Mailbox of the user stopped syncing after the 10:30 change; see SR 1234 and notes.txt, e.g. v1.2.3. ", ""},
	{"colons", "a:", ""},
	{"colon-letter", "x:y", ""},
	{"colon-digit", "a:0", ""},
	{"scheme-plus", "a+", ":a"},
	{"scheme-dot", "a.", ":a"},
	{"scheme-dash", "t-", "tel:0"},
	{"tel-plus", "+tel", ":0"},
	{"tel", "tel:", ""},
	{"host-dots", "ab.", ""},
	{"idna-dots", "ab\u3002", ""},
	{"digits-dots", "1.", ""},
	{"unc", `\\a`, ""},
	{"http", "http", ""},
	{"www", "www.", ""},
	{"url", "https://evil.com/ ", ""},
	{"words", "a ", ""},
	{"schemes-short", "+a+a+a+a+a+a+a+a:", ""},
}

// defangInput is shape's unit repeated to n bytes, ending in its last
// part.
func defangInput(unit, last string, n int) string {
	body := strings.Repeat(unit, n/len(unit)+1)
	return body[:n-len(last)] + last
}

// BenchmarkDefang measures Defang on each of defangShapes at the sizes user
// text reaches: a service request number or name (250), a reason (2000),
// and eight times that, to show how time grows with the input.
func BenchmarkDefang(b *testing.B) {
	for _, sh := range defangShapes {
		for _, n := range []int{250, 2000, 16000} {
			s := defangInput(sh.unit, sh.last, n)
			b.Run(sh.name+"/"+strconv.Itoa(n), func(b *testing.B) {
				b.SetBytes(int64(len(s)))
				for b.Loop() {
					notify.Defang(s)
				}
			})
		}
	}
}
