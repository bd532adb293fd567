package config

import (
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/lockbox-oss/lockbox/grants"
)

// TestDocumentedRequestLife: what the documentation says of how long a
// request lives is what grants does, each of its two approval stages
// waiting grants.DecisionWindow and the access lasting up to
// grants.MaxDuration; and the audit retention's floor keeps the records of
// a request's decisions and access until it ends, as its description
// says. README's table said a request lives up to 16 hours, one stage's
// window and the access, while a request that waits at both stages lives
// 28: an operator choosing a retention from it would expect the records
// of every live request to be kept.
func TestDocumentedRequestLife(t *testing.T) {
	if maxAccessWindow != grants.MaxDuration {
		t.Errorf("maxAccessWindow is %s, grants.MaxDuration %s", maxAccessWindow, grants.MaxDuration)
	}
	// The filing, two stages and the access: the oldest record a live
	// request has.
	life := 2*grants.DecisionWindow + grants.MaxDuration
	if minAuditRetention < life {
		t.Errorf("minAuditRetention is %s: the filing record of a live request may be %s old", minAuditRetention, life)
	}
	lives := regexp.MustCompile(`\ba request lives up to (\d+) hours\b`)
	texts := map[string]string{}
	for _, v := range Vars() {
		texts["the description of "+v.Name] = v.Description
	}
	files, err := filepath.Glob("../docs/*.md")
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range append(files, "../README.md", "../deploy/RUNBOOK.md") {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		texts[f] = strings.Join(strings.Fields(string(b)), " ")
	}
	found := 0
	for where, text := range texts {
		for _, m := range lives.FindAllStringSubmatch(text, -1) {
			found++
			if n, _ := strconv.Atoi(m[1]); time.Duration(n)*time.Hour != life {
				t.Errorf("%s says %q: a request lives up to %s, %s at each of its two approval stages and %s of access",
					where, m[0], life, grants.DecisionWindow, grants.MaxDuration)
			}
		}
	}
	if found == 0 {
		t.Error(`no documentation says how long a request lives ("a request lives up to N hours"): LOCKBOX_AUDIT_RETENTION's description should`)
	}
}
