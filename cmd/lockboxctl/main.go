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
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := cli.Run(ctx, os.Args[1:], os.Getenv, os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
