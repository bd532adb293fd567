// Command lockboxctl is the command line of Lockbox for every role: support
// engineers file requests, support managers and tenant approvers decide
// them, tenant administrators manage the lockbox switch and approvers, and
// auditors search the audit log. All of it lives in package cli; main only
// wires the process's arguments, environment and signals.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/lockbox-oss/lockbox/cli"
)

func main() {
	// Not signal.NotifyContext: its cause names the signal in words only,
	// and cli exits 128 plus the signal's number (130 for SIGINT, 143 for
	// SIGTERM), so it is told which one came.
	ctx, cancel := context.WithCancelCause(context.Background())
	signals := make(chan os.Signal, 1)
	signal.Notify(signals, os.Interrupt, syscall.SIGTERM)
	go func() {
		sig, _ := (<-signals).(syscall.Signal)
		cancel(cli.SignalCause{Signal: sig})
	}()
	code := cli.Run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	signal.Stop(signals)
	os.Exit(code)
}
