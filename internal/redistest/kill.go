package redistest

import (
	"context"
	"errors"
	"net"
	"slices"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/redis/go-redis/v9"
)

// ErrKilled is what every command of a killed client fails with.
var ErrKilled = errors.New("redistest: this replica was killed")

// Killable returns a client of its own to the database of like, for a
// replica that a test kills in the middle of its work: once killed, the
// client fails every command without sending it, as a process killed with
// SIGKILL sends nothing more, while everything it sent before stands.
// KillAfter picks the moment: the client dies right after Redis answered
// the first command for which when returns true.
func Killable(t testing.TB, like *redis.Client) *Kill {
	t.Helper()
	opts := *like.Options()
	c := redis.NewClient(&opts)
	t.Cleanup(func() { c.Close() })
	k := &Kill{Client: c}
	c.AddHook(k)
	return k
}

// Kill is a killable client; see Killable.
type Kill struct {
	*redis.Client
	dead atomic.Bool
	when atomic.Pointer[func(redis.Cmder) bool]
}

// KillAfter arms the client to die after the first command matching when.
func (k *Kill) KillAfter(when func(redis.Cmder) bool) { k.when.Store(&when) }

// Killed reports whether the client died.
func (k *Kill) Killed() bool { return k.dead.Load() }

// Command matches a command by name and, when given, an argument it
// carries (e.g. a key), case-insensitively.
func Command(name string, arg ...string) func(redis.Cmder) bool {
	return func(c redis.Cmder) bool {
		if !strings.EqualFold(c.Name(), name) {
			return false
		}
		for _, want := range arg {
			if !slices.ContainsFunc(c.Args(), func(a any) bool { s, ok := a.(string); return ok && strings.EqualFold(s, want) }) {
				return false
			}
		}
		return true
	}
}

func (k *Kill) check(cmds ...redis.Cmder) {
	if w := k.when.Load(); w != nil {
		for _, c := range cmds {
			if (*w)(c) {
				k.dead.Store(true)
				return
			}
		}
	}
}

// DialHook implements redis.Hook.
func (k *Kill) DialHook(next redis.DialHook) redis.DialHook {
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		if k.dead.Load() {
			return nil, ErrKilled
		}
		return next(ctx, network, addr)
	}
}

// ProcessHook implements redis.Hook.
func (k *Kill) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		if k.dead.Load() {
			cmd.SetErr(ErrKilled)
			return ErrKilled
		}
		err := next(ctx, cmd)
		k.check(cmd)
		return err
	}
}

// ProcessPipelineHook implements redis.Hook; transactions come through it
// too.
func (k *Kill) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if k.dead.Load() {
			for _, c := range cmds {
				c.SetErr(ErrKilled)
			}
			return ErrKilled
		}
		err := next(ctx, cmds)
		k.check(cmds...)
		return err
	}
}
