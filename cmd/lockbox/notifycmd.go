package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/user"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"
	"unicode"
	"unicode/utf16"
	"unicode/utf8"

	"github.com/lockbox-oss/lockbox/audit"
	"github.com/lockbox-oss/lockbox/config"
	"github.com/lockbox-oss/lockbox/internal/keys"
	"github.com/lockbox-oss/lockbox/internal/server"
	"github.com/lockbox-oss/lockbox/notify"
)

const notifyUsage = `usage: lockbox notify dead-letters [--tenant T] [-o table|json]
       lockbox notify redrive --tenant T (--id ID [--id ID ...] | --all) [--reason TEXT]

dead-letters lists the tenant's dead letters, oldest first: the notifications given up on after a
permanent failure or their 16 attempts, each with its id, when it died, its kind, its request, its
attempts, the recipients it failed (mail:<address>, or webhook:<n>, the n-th URL of
LOCKBOX_WEBHOOK_URLS counting from 0) and the last error. Without --tenant it lists the tenants
that have dead letters, with how many. A tenant's stream holds its newest 10000 letters: the
oldest makes room for a new one, logged at error ("dead letter dropped") with what it was.

redrive puts the letters named (--id, repeated or comma-separated), or all of them (--all), back
in the tenant's outbox once their cause is fixed: each goes again to the recipients it failed
alone, with fresh attempts, and leaves the dead-letter stream in the same step, so re-driving a
letter twice, or from two terminals at once, sends it once. A webhook:<n> goes to the n-th URL
as LOCKBOX_WEBHOOK_URLS lists it now; a recipient that is no longer one (an address corrected,
an approver removed) gets nothing; an approvers' "awaits your decision" of a request that no
longer awaits them is not sent. A letter that names no recipient, or whose event can't be
read, is reported and left where it is. It exits 1 when a letter was not re-driven. Each letter
re-driven writes Resume-CustomerLockboxNotification to the tenant's audit log. The command holds
Redis credentials, not a signed-in user's token, so all it can name is the operating-system
account that ran it, which nothing verified: the record's provider-only ProviderUserId says
os:<user>@<host>, the os: prefix marking it as such; the tenant sees "Microsoft Support".
--reason (a ticket, the cause fixed; at most 500 bytes, no control characters, line separators
or bidirectional controls) goes in each record's Comment, which the tenant reads too, and in the
log line.

Both read the Redis of "lockbox serve" (LOCKBOX_REDIS_URL, LOCKBOX_REDIS_SENTINEL_ADDRS with
LOCKBOX_REDIS_SENTINEL_MASTER, or LOCKBOX_REDIS_CLUSTER_ADDRS, and its credentials and TLS
settings); the replicas running the jobs deliver what redrive puts back.`

// idList is a flag given once per id, or once with ids separated by
// commas.
type idList []string

func (l *idList) String() string { return strings.Join(*l, ",") }

func (l *idList) Set(v string) error {
	for id := range strings.SplitSeq(v, ",") {
		if id = strings.TrimSpace(id); id != "" {
			*l = append(*l, id)
		}
	}
	return nil
}

// notifyCommand runs "lockbox notify": the dead letters of a tenant's
// notifications, listed and re-driven on the Redis "lockbox serve" uses.
func notifyCommand(ctx context.Context, args []string, env map[string]string, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return wrongCommandLine("notify", errors.New("missing command: dead-letters or redrive"))
	}
	if isHelp(args[0]) {
		fmt.Fprintln(stdout, notifyUsage)
		return errHelpShown
	}
	sub := args[0]
	if sub != "dead-letters" && sub != "redrive" {
		return wrongCommandLine("notify", fmt.Errorf("unknown command %q: dead-letters or redrive", sub))
	}
	fset := flag.NewFlagSet("lockbox notify "+sub, flag.ContinueOnError)
	fset.SetOutput(io.Discard)
	tenant := fset.String("tenant", "", "the tenant")
	output := "table"
	var ids idList
	all := false
	reason := ""
	if sub == "dead-letters" {
		fset.StringVar(&output, "o", "table", "table or json")
	} else {
		fset.Var(&ids, "id", "a dead letter's id")
		fset.BoolVar(&all, "all", false, "every dead letter of the tenant")
		fset.StringVar(&reason, "reason", "", "why the letters are re-driven (audited)")
	}
	if err := fset.Parse(args[1:]); errors.Is(err, flag.ErrHelp) || len(args) == 2 && args[1] == "help" {
		fmt.Fprintln(stdout, notifyUsage)
		return errHelpShown
	} else if err != nil {
		return wrongCommandLine("notify "+sub, err)
	}
	switch {
	case fset.NArg() > 0:
		return wrongCommandLine("notify "+sub, fmt.Errorf("unexpected argument %q", fset.Arg(0)))
	case *tenant == "" && sub == "redrive":
		return wrongCommandLine("notify "+sub, errors.New("--tenant is required"))
	case output != "table" && output != "json":
		return usageError{fmt.Errorf("-o %q: table or json", output)}
	case sub == "redrive" && all == (len(ids) > 0):
		return wrongCommandLine("notify "+sub, errors.New("give --id or --all, not both nor neither"))
	}
	// Checked before anything connects: the id becomes part of Redis keys.
	if err := keys.ValidTenant(*tenant); *tenant != "" && err != nil {
		return usageError{fmt.Errorf("--tenant: %w", err)}
	}
	if err := notify.ValidRedriveReason(reason); err != nil {
		return usageError{fmt.Errorf("--reason: %w", err)}
	}
	cfg, err := config.Load(env)
	if err != nil {
		return err
	}
	if !cfg.RedisConfigured() {
		return errors.New("LOCKBOX_REDIS_URL: required by \"lockbox notify\" (or LOCKBOX_REDIS_SENTINEL_ADDRS, or LOCKBOX_REDIS_CLUSTER_ADDRS): the Redis of \"lockbox serve\"")
	}
	log := cfg.Logger(stderr)
	if redisLogsHere {
		server.SetRedisLogger(log)
	}
	rdb, err := server.Connect(ctx, cfg)
	if err != nil {
		return err
	}
	defer rdb.Close()
	d := notify.NewDeadLetters(rdb, audit.NewLog(rdb, time.Now), time.Now, log)
	if sub == "dead-letters" && *tenant == "" {
		counts, err := d.Tenants(ctx)
		if err != nil {
			return err
		}
		if output == "json" {
			if counts == nil {
				counts = []notify.TenantDeadLetters{}
			}
			return writeJSON(stdout, counts)
		}
		if len(counts) == 0 {
			fmt.Fprintln(stdout, "no dead letters")
			return nil
		}
		tw := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(tw, "TENANT\tDEAD LETTERS")
		for _, c := range counts {
			fmt.Fprintf(tw, "%s\t%d\n", c.Tenant, c.DeadLetters)
		}
		return tw.Flush()
	}
	if sub == "dead-letters" {
		letters, err := d.List(ctx, *tenant)
		if err != nil {
			return err
		}
		if output == "json" {
			if letters == nil {
				letters = []notify.DeadLetter{} // [], not null
			}
			return writeJSON(stdout, letters)
		}
		return printDeadLetters(stdout, *tenant, letters)
	}
	if all {
		letters, err := d.List(ctx, *tenant)
		if err != nil {
			return err
		}
		for _, l := range letters {
			ids = append(ids, l.ID)
		}
		if len(ids) == 0 {
			fmt.Fprintf(stdout, "no dead letters for tenant %s\n", *tenant)
			return nil
		}
	}
	res, err := d.RedriveWithReason(ctx, *tenant, redriver(), reason, ids)
	failed := 0
	for _, r := range res {
		if r.Err != nil {
			failed++
			fmt.Fprintf(stdout, "not re-driven %s: %s\n", printable(r.ID), printable(r.Err.Error()))
			continue
		}
		fmt.Fprintf(stdout, "re-driven %s: %s of request %s to %s (outbox entry %s)\n",
			r.ID, printable(string(r.Kind)), printable(r.RequestID), printable(strings.Join(r.Recipients, ", ")), r.Entry)
	}
	if err != nil {
		return fmt.Errorf("%d of %d dead letters handled: %w", len(res), len(ids), err)
	}
	fmt.Fprintf(stdout, "%d of %d dead letters of tenant %s re-driven\n", len(res)-failed, len(ids), *tenant)
	if failed > 0 {
		return fmt.Errorf("%d dead letters not re-driven", failed)
	}
	return nil
}

// redriver names who re-drives in the audit record: the account that runs
// the command, on its host. The command holds the Redis credentials, not a
// signed-in user's token, so the host's account is the one name it has,
// and nothing verified it: the "os:" prefix says so to whoever reads the
// record, beside the verified identities other records name.
func redriver() string {
	name := "uid " + strconv.Itoa(os.Getuid())
	if u, err := user.Current(); err == nil && u.Username != "" {
		name = u.Username
	}
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "unknown-host"
	}
	return "os:" + name + "@" + host
}

func printDeadLetters(w io.Writer, tenant string, letters []notify.DeadLetter) error {
	if len(letters) == 0 {
		_, err := fmt.Fprintf(w, "no dead letters for tenant %s\n", tenant)
		return err
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tAT\tKIND\tREQUEST\tATTEMPTS\tRECIPIENTS\tERROR\tCAN'T RE-DRIVE")
	for _, l := range letters {
		at := "-"
		if !l.At.IsZero() {
			at = l.At.UTC().Format(time.RFC3339)
		}
		problem := "-"
		if l.Problem != "" {
			problem = l.Problem
		}
		cells := []string{l.ID, at, string(l.Kind), l.RequestID, strconv.Itoa(l.Attempts), strings.Join(l.Recipients, ","), l.Error, problem}
		for i, c := range cells {
			if c == "" {
				c = "-"
			}
			cells[i] = printable(c)
		}
		fmt.Fprintln(tw, strings.Join(cells, "\t"))
	}
	return tw.Flush()
}

// printable escapes what a terminal would act on rather than show: an
// error's text is a mail server's or a receiver's words, and an address
// may be anything a tenant typed. Controls (a tab would also break the
// table's columns), bidirectional overrides and other invisible format
// characters are written as \u escapes.
func printable(s string) string {
	if !strings.ContainsFunc(s, unsafeRune) {
		return s
	}
	var b strings.Builder
	for _, r := range s {
		if unsafeRune(r) {
			fmt.Fprintf(&b, `\u%04x`, r)
			continue
		}
		b.WriteRune(r)
	}
	return b.String()
}

func unsafeRune(r rune) bool { return r != ' ' && !unicode.IsPrint(r) }

// writeJSON writes v as indented JSON whose strings hold no character a
// terminal acts on: encoding/json escapes the C0 controls, not DEL, the
// C1 controls or bidirectional overrides; those are escaped here, and the
// document reads back the same.
func writeJSON(w io.Writer, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	var out bytes.Buffer
	for len(b) > 0 {
		r, n := utf8.DecodeRune(b)
		if r >= 0x7f && unsafeRune(r) {
			if r1, r2 := utf16.EncodeRune(r); r1 != unicode.ReplacementChar {
				fmt.Fprintf(&out, `\u%04x\u%04x`, r1, r2)
			} else {
				fmt.Fprintf(&out, `\u%04x`, r)
			}
		} else {
			out.Write(b[:n])
		}
		b = b[n:]
	}
	out.WriteByte('\n')
	_, err = w.Write(out.Bytes())
	return err
}
