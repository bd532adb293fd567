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
// like may be a client of one server or of a cluster.
func Killable(t testing.TB, like redis.UniversalClient) *Kill {
	t.Helper()
	k := &Kill{}
	switch r := like.(type) {
	case *redis.Client:
		opts := *r.Options()
		k.UniversalClient = redis.NewClient(&opts)
	case *redis.ClusterClient:
		// A cluster client's own hooks miss what runs on one node's
		// client, such as a WATCH transaction: hook every node as well.
		opts := *r.Options()
		c := redis.NewClusterClient(&opts)
		c.OnNewNode(func(n *redis.Client) { n.AddHook(k) })
		k.UniversalClient = c
	default:
		t.Fatalf("redistest: can't make a killable %T", like)
	}
	t.Cleanup(func() { k.UniversalClient.Close() })
	k.AddHook(k)
	return k
}

// Kill is a killable client; see Killable.
type Kill struct {
	redis.UniversalClient
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
			if (*w)(c) && !redirected(c.Err()) {
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
		if !redirected(err) {
			k.check(cmd)
		}
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

// redirected reports whether Redis refused a command without running it,
// asking for it again in another form or on another node (NOSCRIPT before
// a script's EVAL, MOVED, ASK, TRYAGAIN on Cluster): the kill waits for the
// command that runs.
func redirected(err error) bool {
	var rerr redis.Error
	if err == nil || !errors.As(err, &rerr) {
		return false
	}
	for _, p := range []string{"NOSCRIPT", "MOVED ", "ASK ", "TRYAGAIN", "CLUSTERDOWN"} {
		if strings.HasPrefix(err.Error(), p) {
			return true
		}
	}
	return false
}
