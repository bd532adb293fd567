package grants_test

import (
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/lockbox-oss/lockbox/grants"
)

// thousands writes n with a comma every three digits, as the docs do.
func thousands(n int) string {
	s := strconv.Itoa(n)
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	return b.String()
}

// TestDocumentedRetentionBounds holds what README.md and
// docs/operations.md tell operators about how a backlog of requests is
// deleted to the defaults: the most a run deletes, a batch, and the pace
// at a run a minute.
func TestDocumentedRetentionBounds(t *testing.T) {
	limit, perHour := thousands(grants.DefaultRetentionLimit), thousands(60*grants.DefaultRetentionLimit)
	for file, want := range map[string][]string{
		"../README.md": {
			"at most " + limit + " requests, " + strconv.Itoa(grants.DefaultRetentionBatch) + " at a time",
			"about " + perHour + " requests an hour",
		},
		"../docs/operations.md": {
			"about " + perHour + " requests an hour",
			"runs of at most " + limit + ", a minute apart",
		},
	} {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		// Lines wrap anywhere: compared with runs of white space as one.
		text := strings.Join(strings.Fields(string(b)), " ")
		for _, w := range want {
			if !strings.Contains(text, w) {
				t.Errorf("%s does not say %q", file, w)
			}
		}
	}
}
