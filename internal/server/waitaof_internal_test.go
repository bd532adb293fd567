package server

import (
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/lockbox-oss/lockbox/config"
)

// Every answer Redis gives a WAITAOF it can't honour, as the Redis source
// words it, is classified: a refusal of the setting that stays until the
// operator changes Redis or Lockbox (exit 78), or a failure a restart may
// mend (exit 1). A real Redis sends each text (a script's error reply),
// so that go-redis parses it as it parses WAITAOF's own; only Redis 7.0's
// "unknown command" can be provoked with WAITAOF itself on the Redis the
// tests run (TestServeExitStatusForWhatRedisRefuses).
func TestWAITAOFErrorsTellTheConfigurationFromAFailure(t *testing.T) {
	send := errorReplies(t)
	cfg := config.Config{RedisURL: "redis://127.0.0.1:6379/0"}
	tests := []struct {
		name, reply string
		config      bool
		wantVar     string // the line starts with it
	}{
		{"Redis 7.0 and before: no such command", "ERR unknown command 'WAITAOF', with args beginning with: '1' '0' '1' ", true, "LOCKBOX_AUDIT_AOF: "},
		{"Redis 6.0's wording", "ERR unknown command `WAITAOF`, with args beginning with: `1`, `0`, `1`, ", true, "LOCKBOX_AUDIT_AOF: "},
		{"appendonly no", "ERR WAITAOF cannot be used when numlocal is set but appendonly is disabled.", true, "LOCKBOX_AUDIT_AOF: "},
		{"an ACL without WAITAOF", "NOPERM User lockbox has no permissions to run the 'waitaof' command", true, "LOCKBOX_REDIS_USERNAME: "},
		{"Redis 6.2's NOPERM wording", "NOPERM this user has no permissions to run the 'waitaof' command or its subcommand", true, "LOCKBOX_REDIS_USERNAME: "},
		// A master a failover demoted answers this until the clients
		// follow the new one.
		{"a replica", "ERR WAITAOF cannot be used with replica instances. Please also note that writes to replicas are just local and are not propagated.", false, "LOCKBOX_AUDIT_AOF: "},
		{"loading its data set", "LOADING Redis is loading the dataset in memory", false, "LOCKBOX_AUDIT_AOF: "},
		{"a long script", "BUSY Redis is busy running a script. You can only call SCRIPT KILL or SHUTDOWN NOSAVE.", false, "LOCKBOX_AUDIT_AOF: "},
		{"a replica cut from its master", "MASTERDOWN Link with MASTER is down and replica-serve-stale-data is set to 'no'.", false, "LOCKBOX_AUDIT_AOF: "},
		{"a cluster down", "CLUSTERDOWN The cluster is down", false, "LOCKBOX_AUDIT_AOF: "},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			reply := send(tt.reply)
			// The one server's error, and a cluster master's as the
			// probe of each master wraps it.
			for _, err := range []error{reply, fmt.Errorf("127.0.0.1:7000: %w", reply)} {
				got := waitaofError(cfg, "the Redis at 127.0.0.1:6379", err)
				if refused := errors.Is(got, config.ErrInvalid); refused != tt.config {
					t.Errorf("%v: a refusal of the configuration (exit 78): %t, want %t", got, refused, tt.config)
				}
				if !strings.HasPrefix(got.Error(), tt.wantVar) || !strings.Contains(got.Error(), tt.reply) {
					t.Errorf("%q does not start with %q and hold Redis's answer", got, tt.wantVar)
				}
				if !errors.Is(got, reply) {
					t.Errorf("%v does not wrap Redis's answer", got)
				}
			}
		})
	}
}
