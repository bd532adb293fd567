package sendonce

import (
	"context"
	"errors"
	"io"
	"net"
	"slices"
	"testing"

	"github.com/redis/go-redis/v9"
)

// TestPipelineSendsAgainOnlyWhatDidNotRun: when go-redis sends a node's
// commands of a pipeline again, those that ran or may have run (answered,
// answered with a script's error, answer lost) keep their first outcome;
// those Redis refused without running them (MOVED, TRYAGAIN) or that never
// left (no connection) go again, and commands new to the call go.
func TestPipelineSendsAgainOnlyWhatDidNotRun(t *testing.T) {
	ctx := context.Background()
	cmd := func() *redis.Cmd { return redis.NewCmd(ctx, "xadd", "s", "*", "n", "1") }
	answered, failed, lost, timedOut, moved, tryAgain, noConn, fresh := cmd(), cmd(), cmd(), cmd(), cmd(), cmd(), cmd(), cmd()
	call := &call{pipeline: true, sent: map[redis.Cmder]struct{}{}}
	first := []redis.Cmder{answered, failed, lost, timedOut, moved, tryAgain, noConn}
	if got := call.toSend(first); !slices.Equal(got, first) {
		t.Fatalf("first send: %d of %d commands go", len(got), len(first))
	}
	// Their outcomes.
	failed.SetErr(errors.New("ERR the script failed after it wrote"))
	lost.SetErr(io.EOF)
	timedOut.SetErr(&net.OpError{Op: "read", Err: errors.New("i/o timeout")})
	moved.SetErr(errors.New("MOVED 3999 127.0.0.1:6381"))
	tryAgain.SetErr(errors.New("TRYAGAIN Multiple keys request during rehashing of slot"))
	noConn.SetErr(&net.OpError{Op: "dial", Err: errors.New("connection refused")})
	again := []redis.Cmder{answered, failed, lost, timedOut, moved, tryAgain, noConn, fresh}
	got := call.toSend(again)
	if want := []redis.Cmder{moved, tryAgain, noConn, fresh}; !slices.Equal(got, want) {
		t.Errorf("sent again: %v, want only the refused, the never sent and the new", got)
	}
	if !slices.Equal(again, []redis.Cmder{answered, failed, lost, timedOut, moved, tryAgain, noConn, fresh}) {
		t.Error("toSend changed go-redis's slice")
	}
}
