package main

import (
	"bytes"
	"context"
	"errors"
	"strings"
	"testing"

	"github.com/lockbox-oss/lockbox/config"
)

// TestHelpNeedsNoConfiguration: every command's help prints, exit 0,
// whatever the LOCKBOX_ variables say. "lockbox dev token --help" read
// the configuration before its flags, so LOCKBOX_GRANT_TIMEOUT=banana
// made it exit 1 with that variable's error and no help: the help that
// would have told how to mend the command line was out of reach until the
// environment was mended. The commands are those "lockbox --help" lists,
// the words that group them (policy, notify) and lockbox itself.
func TestHelpNeedsNoConfiguration(t *testing.T) {
	bad := []struct{ name, value string }{
		{"LOCKBOX_GRANT_TIMEOUT", "banana"},
		{"LOCKBOX_LOG_LEVEL", "banana"},
		{"LOCKBOX_LOG_FORMAT", "banana"},
		{"LOCKBOX_API_ADDR", "banana"},
		{"LOCKBOX_REDIS_URL", "banana://"},
	}
	for _, v := range bad {
		if _, err := config.Load(map[string]string{v.name: v.value}); !errors.Is(err, config.ErrInvalid) {
			t.Fatalf("config.Load with %s=%s: %v, want it refused", v.name, v.value, err)
		}
	}
	commands := []string{""}
	seen := map[string]bool{"": true}
	for _, c := range listedCommands(t) {
		words := strings.Fields(c)
		for i := range words {
			if w := strings.Join(words[:i+1], " "); !seen[w] {
				seen[w] = true
				commands = append(commands, w)
			}
		}
	}
	for _, c := range commands {
		for _, help := range []string{"--help", "-h"} {
			args := append(strings.Fields(c), help)
			for _, v := range bad {
				t.Run(strings.Join(args, " ")+" "+v.name, func(t *testing.T) {
					var stdout, stderr bytes.Buffer
					code := run(context.Background(), args, map[string]string{v.name: v.value}, &stdout, &stderr)
					out := stdout.String()
					if code != 0 || !strings.HasPrefix(out, "usage: lockbox") || !strings.Contains(out, strings.TrimSpace("lockbox "+c)) || stderr.Len() > 0 {
						t.Errorf("exit %d, stdout %q, stderr %q; want exit 0 and the usage of lockbox %s", code, out, stderr.String(), c)
					}
				})
			}
		}
	}
}
