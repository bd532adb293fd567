package main

import (
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// TestDependencies: lockboxctl links the API's wire types, never the
// server's domain, so it carries no Redis client, no metrics library, no
// policy engine and no token verifier. It links grantsig, whose public
// keys check seals ("audit check-siem"), and no more of the audit package
// than the offline check (audit/siemcheck).
func TestDependencies(t *testing.T) {
	gobin := filepath.Join(runtime.GOROOT(), "bin", "go")
	out, err := exec.Command(gobin, "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list -deps: %v", err)
	}
	deps := strings.Fields(string(out))
	if len(deps) < 10 {
		t.Fatalf("go list -deps listed only %v", deps)
	}
	forbidden := []string{
		"github.com/redis/go-redis/",
		"github.com/prometheus/",
		"github.com/open-policy-agent/",
		"github.com/go-jose/",
		"github.com/golang-jwt/",
		"github.com/lockbox-oss/lockbox/grants/",
		"github.com/lockbox-oss/lockbox/tenants",
		"github.com/lockbox-oss/lockbox/identity",
		"github.com/lockbox-oss/lockbox/policy",
		"github.com/lockbox-oss/lockbox/proxy",
	}
	for _, d := range deps {
		for _, f := range forbidden {
			if strings.HasPrefix(d, f) || d == "github.com/lockbox-oss/lockbox/audit" || d == "github.com/lockbox-oss/lockbox/grants" {
				t.Errorf("lockboxctl links %s", d)
				break
			}
		}
	}
}
