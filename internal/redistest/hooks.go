package redistest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/redis/go-redis/v9"
)

// FailInPipelines is a hook that fails, in the pipelines sent through the
// client it is added to, the commands Match matches (see Command) without
// sending them, as a node that timed out or restarted mid-pipeline would.
type FailInPipelines struct{ Match func(redis.Cmder) bool }

func (f FailInPipelines) DialHook(next redis.DialHook) redis.DialHook          { return next }
func (f FailInPipelines) ProcessHook(next redis.ProcessHook) redis.ProcessHook { return next }
func (f FailInPipelines) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		var send []redis.Cmder
		for _, c := range cmds {
			if f.Match(c) {
				c.SetErr(errors.New("i/o timeout"))
			} else {
				send = append(send, c)
			}
		}
		if len(send) == 0 {
			return nil
		}
		return next(ctx, send)
	}
}

// RoundTrips is a hook that counts what the client it is added to sends
// Redis: each command outside a pipeline, and each pipeline, once.
type RoundTrips struct{ n atomic.Int64 }

// N is how many round trips were made since the hook was added or Reset.
func (h *RoundTrips) N() int64 { return h.n.Load() }

// Reset starts the count again.
func (h *RoundTrips) Reset() { h.n.Store(0) }

func (h *RoundTrips) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *RoundTrips) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.n.Add(1)
		return next(ctx, cmd)
	}
}
func (h *RoundTrips) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h.n.Add(1)
		return next(ctx, cmds)
	}
}

// EntriesRead is a hook that counts the stream entries Redis hands the
// client it is added to (XRANGE, XREVRANGE, alone or in a pipeline): what a
// read of a stream costs, whatever it returns.
type EntriesRead struct{ n atomic.Int64 }

// N is how many entries were read since the hook was added or Reset.
func (h *EntriesRead) N() int64 { return h.n.Load() }

// Reset starts the count again.
func (h *EntriesRead) Reset() { h.n.Store(0) }

func (h *EntriesRead) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *EntriesRead) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		if c, ok := cmd.(*redis.XMessageSliceCmd); ok {
			h.n.Add(int64(len(c.Val())))
		}
		return err
	}
}
func (h *EntriesRead) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		err := next(ctx, cmds)
		for _, cmd := range cmds {
			if c, ok := cmd.(*redis.XMessageSliceCmd); ok {
				h.n.Add(int64(len(c.Val())))
			}
		}
		return err
	}
}

// Commands is a hook that keeps the arguments of every command sent
// through the client it is added to, alone or in a pipeline: what a test
// asks of Redis, to tell which commands touched a key.
type Commands struct {
	mu   sync.Mutex
	args [][]any
}

// On returns the names, lower case and in order, of the commands sent
// since the hook was added that named key as one of their arguments.
func (h *Commands) On(key string) []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var out []string
	for _, args := range h.args {
		if len(args) > 0 && slices.Contains(args[1:], any(key)) {
			out = append(out, strings.ToLower(fmt.Sprint(args[0])))
		}
	}
	return out
}

func (h *Commands) keep(cmds ...redis.Cmder) {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, c := range cmds {
		h.args = append(h.args, c.Args())
	}
}

func (h *Commands) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *Commands) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h.keep(cmd)
		return next(ctx, cmd)
	}
}
func (h *Commands) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		h.keep(cmds...)
		return next(ctx, cmds)
	}
}
