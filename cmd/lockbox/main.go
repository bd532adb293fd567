// Command lockbox is the Lockbox server.
//
//	lockbox serve       run the control plane, API and metrics (production)
//	lockbox dev         the same with an embedded store, dev keys and tokens
//	lockbox dev token   mint a dev token from the dev signing key
//	lockbox policy test DIR  run the Rego tests of a policy directory
//	lockbox version
//
// Configuration comes from LOCKBOX_* environment variables; bad
// configuration stops start-up with a message naming the variable.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/lockbox-oss/lockbox/config"
	"github.com/lockbox-oss/lockbox/internal/server"
	"github.com/lockbox-oss/lockbox/policy"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	os.Exit(run(ctx, os.Args[1:], environ(), os.Stdout, os.Stderr))
}

func environ() map[string]string {
	m := map[string]string{}
	for _, kv := range os.Environ() {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m[k] = v
		}
	}
	return m
}

const usage = `usage: lockbox <command>

commands:
  serve              run Lockbox (needs LOCKBOX_REDIS_URL and a JWT key setting)
  dev                run Lockbox for development: embedded store, dev keys, demo tenant, tokens
  dev token          mint a dev token: --sub S --roles R[,R] [--tid T] [--ttl D]
  policy test DIR    run the Rego tests (*_test.rego) of a policy directory [-v]
  version            print the version

Configuration is read from LOCKBOX_* environment variables (see README).
`

func run(ctx context.Context, args []string, env map[string]string, stdout, stderr io.Writer) int {
	if len(args) == 0 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	var err error
	switch args[0] {
	case "serve":
		err = serve(ctx, env, stderr)
	case "dev":
		if len(args) > 1 && args[1] == "token" {
			err = devToken(args[2:], env, stdout, stderr)
			break
		}
		err = dev(ctx, env, stdout, stderr)
	case "policy":
		if len(args) < 2 || args[1] != "test" {
			err = usageError{errors.New("usage: lockbox policy test DIR [-v]")}
			break
		}
		err = policyTest(ctx, args[2:], stdout)
	case "version":
		fmt.Fprintln(stdout, "lockbox", version)
	case "help", "-h", "--help":
		fmt.Fprint(stdout, usage)
	default:
		fmt.Fprintf(stderr, "lockbox: unknown command %q\n\n%s", args[0], usage)
		return 2
	}
	var ue usageError
	switch {
	case errors.As(err, &ue):
		fmt.Fprintf(stderr, "lockbox: %v\n", err)
		return 2
	case err != nil:
		fmt.Fprintf(stderr, "lockbox: %v\n", err)
		return 1
	}
	return 0
}

type usageError struct{ error }

func serve(ctx context.Context, env map[string]string, stderr io.Writer) error {
	cfg, err := config.Load(env)
	if err != nil {
		return err
	}
	if err := cfg.Validate(config.ModeServe); err != nil {
		return err
	}
	log := cfg.Logger(stderr)
	srv, err := server.New(ctx, cfg, server.Options{Logger: log})
	if err != nil {
		return err
	}
	if err := srv.Listen(); err != nil {
		return err
	}
	return srv.Run(ctx)
}

// policyTest runs the Rego tests of a policy directory, as security teams
// do before shipping a change.
func policyTest(ctx context.Context, args []string, stdout io.Writer) error {
	fset := flag.NewFlagSet("lockbox policy test", flag.ContinueOnError)
	verbose := fset.Bool("v", false, "print every test")
	if err := fset.Parse(args); err != nil {
		return usageError{err}
	}
	if fset.NArg() != 1 {
		return usageError{errors.New("usage: lockbox policy test DIR [-v]")}
	}
	_, failed, err := policy.RunTests(ctx, fset.Arg(0), stdout, *verbose)
	if err != nil {
		return err
	}
	if failed > 0 {
		return fmt.Errorf("%d Rego tests failed", failed)
	}
	return nil
}
