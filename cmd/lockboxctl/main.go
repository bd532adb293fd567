// Command lockboxctl is the command line of Lockbox for every role: support
// engineers file requests, support managers and tenant approvers decide
// them, tenant administrators manage the lockbox switch and approvers, and
// auditors search the audit log. All of it lives in package cli; main only
// wires the process's arguments, environment and signals.
package main

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"
	"time"

	"github.com/lockbox-oss/lockbox/cli"
)

func main() {
	// Not signal.NotifyContext: its cause names the signal in words only,
	// and cli exits 128 plus the signal's number (130 for SIGINT, 143 for
	// SIGTERM), so it is told which one came.
	ctx, cancel := context.WithCancelCause(context.Background())
	// Room for both signals watchSignals acts on, so that a second one
	// sent before the first is taken is not dropped.
	signals := make(chan os.Signal, 2)
	signal.Notify(signals, os.Interrupt, syscall.SIGTERM)
	// Caught, never read: a write to a stdout whose reader is gone
	// ("lockboxctl get requests | head -1") then fails with EPIPE, which
	// ends the command quietly with exit 0 (cli's stdoutWriter), rather
	// than the runtime killing the process with SIGPIPE (exit 141, a
	// failed pipeline under "set -o pipefail"). Caught rather than
	// ignored: an ignored signal stays ignored in the programs lockboxctl
	// starts (a browser for login).
	signal.Notify(make(chan os.Signal, 1), syscall.SIGPIPE)
	go watchSignals(signals, cancel, os.Stderr, os.Exit, againWait)
	code := cli.Run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	signal.Stop(signals)
	os.Exit(code)
}

// againWait bounds how long a second signal waits for its line to reach
// stderr before lockboxctl exits: a stderr nobody reads (a pager stopped,
// a full pipe) may be what the first one is stuck on.
const againWait = 500 * time.Millisecond

// watchSignals cancels the run with the first signal, which ends it
// cleanly once the call under way gives up. The second exits at once,
// with 128 plus its number, as kubectl and docker do: a call that does
// not give up (a write to a stdout or stderr nobody reads, a file system
// that hangs) must not leave the user unable to stop lockboxctl but by
// kill -9. The line gets up to wait to reach stderr.
func watchSignals(signals <-chan os.Signal, cancel context.CancelCauseFunc, stderr io.Writer, exit func(int), wait time.Duration) {
	first, _ := (<-signals).(syscall.Signal)
	cancel(cli.SignalCause{Signal: first})
	second, _ := (<-signals).(syscall.Signal)
	written := make(chan struct{})
	go func() {
		fmt.Fprintln(stderr, "lockboxctl: interrupted again: exiting without waiting for the canceled call to end")
		close(written)
	}()
	t := time.NewTimer(wait)
	select {
	case <-written:
	case <-t.C:
	}
	t.Stop()
	exit(cli.SignalCause{Signal: second}.ExitCode())
}
