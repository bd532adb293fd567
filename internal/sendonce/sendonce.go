// Package sendonce keeps a Redis Cluster client from sending a write twice.
//
// go-redis's ClusterClient sends a command, or a pipeline's commands, again
// when its connection broke or timed out after the command was written (its
// MaxRedirects loop: the same node first, then another), though Redis may
// have run it, and reports the second answer as if the first had never
// been: an audit record or an outbox entry appended twice for one call.
// A single Redis and a Sentinel master are kept from it by MaxRetries -1;
// on a cluster that setting is only the node clients' own, and the cluster
// client's loop, which also follows MOVED and ASK, resends regardless.
//
// The narrowest place to stop it is between that loop and the nodes: a
// hook on every node client (OnNewNode) sees each send and its outcome, and
// a hook on the cluster client marks the calls it guards. A lost reply of
// one command is reported to the loop as an error it does not retry, and
// the caller gets the connection's own error back. A pipeline's loop
// decides to resend inside the node's send, so there the node hook lets
// through again only the commands Redis refused without running them
// (MOVED, ASK, TRYAGAIN, CLUSTERDOWN, LOADING, READONLY, MASTERDOWN) or
// that never left (the connection could not be had); the others keep the
// outcome of their first send. MaxRedirects stays as it is: lowering it
// would stop following redirections too.
//
// Transactions (MULTI/EXEC) pass as they are: go-redis already fails, and
// does not resend, one whose answer was lost after EXEC was written. (Its
// Watch runs a WATCH transaction's function again only when the function
// did not fail: a lost EXEC answer is the function's error, returned.)
package sendonce

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"sync"

	"github.com/redis/go-redis/v9"
)

// NewClusterClient returns a cluster client that sends no command a second
// time after its answer may have been lost, and whose node clients don't
// retry either.
func NewClusterClient(o *redis.ClusterOptions) *redis.ClusterClient {
	o.MaxRetries = -1
	c := redis.NewClusterClient(o)
	// Before the first command: go-redis makes node clients only when it
	// first needs one, and each new one gets the hook.
	c.OnNewNode(func(n *redis.Client) { n.AddHook(nodeHook{}) })
	c.AddHook(clusterHook{})
	return c
}

// callKey marks, in the context of a guarded call, its *call.
type callKey struct{}

// call is one guarded call on the cluster client.
type call struct {
	// pipeline is false for one command (its ASK redirection goes as a
	// pipeline of ASKING and the command, on the node).
	pipeline bool
	mu       sync.Mutex
	// sent holds the pipeline's commands sent so far.
	sent map[redis.Cmder]struct{}
}

// oneCommand marks every call of one command: it keeps no state.
var oneCommand = &call{}

// lostReply is a transport error after a command was written, told to
// go-redis's loop as an error it does not retry (it neither unwraps to
// the connection's error nor is a net.Error); the cluster hook hands the
// caller the connection's error again.
type lostReply struct{ err error }

func (e *lostReply) Error() string { return e.err.Error() }

type clusterHook struct{}

func (clusterHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (clusterHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		return restore(next(context.WithValue(ctx, callKey{}, oneCommand), cmd))
	}
}

func (clusterHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		if isTx(cmds) {
			return next(ctx, cmds)
		}
		c := &call{pipeline: true, sent: make(map[redis.Cmder]struct{}, len(cmds))}
		return restore(next(context.WithValue(ctx, callKey{}, c), cmds))
	}
}

// restore gives back the connection's error a node hook stood in for.
func restore(err error) error {
	if l, ok := err.(*lostReply); ok {
		return l.err
	}
	return err
}

// isTx reports whether cmds are a MULTI/EXEC transaction as go-redis
// sends it (after ASKING when redirected).
func isTx(cmds []redis.Cmder) bool {
	for _, c := range cmds {
		switch strings.ToLower(c.Name()) {
		case "asking":
			continue
		case "multi":
			return true
		}
		return false
	}
	return false
}

type nodeHook struct{}

func (nodeHook) DialHook(next redis.DialHook) redis.DialHook { return next }

func (nodeHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		if c, _ := ctx.Value(callKey{}).(*call); c == oneCommand && mayHaveRun(err) {
			return &lostReply{err}
		}
		return err
	}
}

func (nodeHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return func(ctx context.Context, cmds []redis.Cmder) error {
		c, _ := ctx.Value(callKey{}).(*call)
		switch {
		case c == nil || isTx(cmds):
			return next(ctx, cmds)
		case !c.pipeline:
			err := next(ctx, cmds)
			if mayHaveRun(err) {
				return &lostReply{err}
			}
			return err
		}
		send := c.toSend(cmds)
		if len(send) == 0 {
			// Nothing may go again: each command keeps its first
			// outcome, and the loop ends.
			return nil
		}
		return next(ctx, send)
	}
}

// toSend returns the commands of cmds that may be sent now, and counts
// them as sent.
func (c *call) toSend(cmds []redis.Cmder) []redis.Cmder {
	c.mu.Lock()
	defer c.mu.Unlock()
	var send []redis.Cmder // nil while every command so far goes
	for i, cmd := range cmds {
		if _, again := c.sent[cmd]; again && !notRun(cmd.Err()) {
			if send == nil {
				// cmds is go-redis's: hold back on a copy.
				send = append(make([]redis.Cmder, 0, len(cmds)), cmds[:i]...)
			}
			continue
		}
		c.sent[cmd] = struct{}{}
		if send != nil {
			send = append(send, cmd)
		}
	}
	if send == nil {
		return cmds
	}
	return send
}

// mayHaveRun reports whether err, a command's outcome, leaves open whether
// Redis ran it: the connection broke or timed out once it was written.
func mayHaveRun(err error) bool {
	if err == nil || neverSent(err) || errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return false
	}
	var netErr net.Error
	return errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.As(err, &netErr)
}

// neverSent reports whether err means the command never left: no
// connection could be had.
func neverSent(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial" || errors.Is(err, redis.ErrPoolTimeout) || errors.Is(err, redis.ErrClosed)
}

// notRun reports whether err, the outcome of a command's earlier send,
// says it did not run: Redis refused it before running it, or it never
// left.
func notRun(err error) bool {
	if err == nil {
		return false
	}
	if _, moved := redis.IsMovedError(err); moved {
		return true
	}
	if _, ask := redis.IsAskError(err); ask {
		return true
	}
	return redis.IsTryAgainError(err) || redis.IsClusterDownError(err) || redis.IsLoadingError(err) ||
		redis.IsReadOnlyError(err) || redis.IsMasterDownError(err) || neverSent(err)
}
