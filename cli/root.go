package cli

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/lockbox-oss/lockbox/api/client"
	"github.com/lockbox-oss/lockbox/api/wire"
)

func init() {
	// Command names in any case, as lockboxctl always took them: PowerShell
	// users type Get-AccessToCustomerDataRequest as they please.
	cobra.EnableCaseInsensitive = true
}

// The groups of commands in the help.
const (
	groupRequests = "requests"
	groupTenants  = "tenants"
	groupAudit    = "audit"
	groupSession  = "session"
	groupCompat   = "compat"
)

// outputsAnnotation lists the output formats a command prints besides
// table, json and yaml ("id", "csv").
const outputsAnnotation = "lockboxctl/outputs"

// requiredAnnotation marks a flag a command can't run without, though
// other commands filter by a flag of that name (create request's
// --tenant): given empty, it is missing, not a filter to leave out.
const requiredAnnotation = "lockboxctl/required"

// rootCommand builds lockboxctl's commands for one run.
func (e *env) rootCommand() *cobra.Command {
	root := &cobra.Command{
		Use:   "lockboxctl",
		Short: "the command line of Lockbox",
		Long: "lockboxctl is the command line of Lockbox: requests for access to a tenant's data,\n" +
			"their approval by a support manager and the tenant's approvers, and the audit log.\n\n" +
			"Exit status: 0 on success, 1 when the call failed, 2 for a usage error, 3 when the\n" +
			"API refused the call (not allowed, not found, not in a state that allows it, or\n" +
			"changed since it was read), 4 when audit verify found the audit chain broken, 130\n" +
			"when interrupted (Ctrl-C), 143 when stopped by SIGTERM; a second Ctrl-C exits at\n" +
			"once, without waiting for the canceled call to end. Output piped to a reader that\n" +
			"stops reading (| head -1) ends the command quietly, with exit 0; a broken audit\n" +
			"chain still exits 4.",
		Args:          cobra.ArbitraryArgs,
		RunE:          e.group,
		SilenceErrors: true,
		SilenceUsage:  true,
		PersistentPreRunE: func(cmd *cobra.Command, _ []string) error {
			e.cmd = cmd
			if err := e.checkOutput(cmd); err != nil {
				return err
			}
			if err := e.notUTF8(func(fn func(name, value string)) {
				cmd.Flags().Visit(func(f *pflag.Flag) { fn(f.Name, f.Value.String()) })
			}); err != nil {
				return err
			}
			if err := e.tooLong(func(fn func(name, value string, most int)) {
				cmd.Flags().Visit(func(f *pflag.Flag) { fn(f.Name, f.Value.String(), flagLimit(f)) })
			}); err != nil {
				return err
			}
			return e.emptyFilter(func(fn func(name, value string)) {
				cmd.Flags().Visit(func(f *pflag.Flag) {
					if _, required := f.Annotations[requiredAnnotation]; !required {
						fn(f.Name, f.Value.String())
					}
				})
			})
		},
	}
	root.SuggestionsMinimumDistance = 2
	pf := root.PersistentFlags()
	pf.VarP(&e.g.output, "output", "o", "output format: table, json, yaml; id (request ids, one a line) for commands that return requests; csv for audit records")
	pf.StringVar(&e.g.addr, "addr", e.g.addr, "Lockbox API address, a URL or host:port (also --server; default $"+EnvAddr+", else "+DefaultAddr+")")
	pf.Lookup("addr").DefValue = "" // its default is in its usage, which names where it comes from
	pf.BoolVar(&e.g.insecureHTTP, "insecure-http", e.g.insecureHTTP, "send the token over plain http to an API address that is not loopback (refused without it; default $"+EnvInsecureHTTP+")")
	pf.Lookup("insecure-http").DefValue = "false" // $LOCKBOX_INSECURE_HTTP's value is no default to show
	pf.StringVar(&e.g.tokenFile, "token-file", "", "file holding your bearer token (default $"+EnvToken+", else the token lockboxctl login stored for this server)")
	root.SetGlobalNormalizationFunc(func(_ *pflag.FlagSet, name string) pflag.NormalizedName {
		if name == "server" {
			name = "addr"
		}
		return pflag.NormalizedName(name)
	})
	_ = root.RegisterFlagCompletionFunc("output", cobra.FixedCompletions(outputs, cobra.ShellCompDirectiveNoFileComp))
	root.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		// A mistyped command comes before its flags: report the command
		// (a group that found no subcommand), not a flag it doesn't know.
		if pos := c.Flags().Args(); c.HasAvailableSubCommands() && len(pos) > 0 {
			return e.group(c, pos)
		}
		// An unknown flag shows the command's flags; a bad value is one line.
		return &usageError{cmd: c, msg: err.Error(), usage: strings.HasPrefix(err.Error(), "unknown")}
	})
	// A command that only holds others runs, to report a missing or unknown
	// subcommand, but its usage shows only "COMMAND [command]".
	root.SetUsageTemplate(strings.Replace(root.UsageTemplate(), "{{if .Runnable}}", "{{if and .Runnable (not .HasAvailableSubCommands)}}", 1) + envHelp)
	root.AddGroup(
		&cobra.Group{ID: groupRequests, Title: "Requests:"},
		&cobra.Group{ID: groupTenants, Title: "Tenants, settings and approvers:"},
		&cobra.Group{ID: groupAudit, Title: "Audit log:"},
		&cobra.Group{ID: groupSession, Title: "Signing in:"},
		&cobra.Group{ID: groupCompat, Title: "Earlier forms, kept for scripts:"},
	)
	root.AddCommand(e.getCommand(), e.describeCommand(), e.createCommand())
	for _, a := range actions {
		root.AddCommand(e.actionCommand(a, groupRequests))
	}
	root.AddCommand(e.tenantCommand(), e.approverCommand(), e.auditCommand())
	root.AddCommand(e.sessionCommands()...)
	root.AddCommand(e.requestCommand())
	root.AddCommand(e.powershellCommands()...)
	root.AddCommand(e.versionCommand())
	root.SetHelpCommand(e.helpCommand(root))
	// cobra's completion command prints its help and succeeds when the
	// shell is missing or one it has no script for (completion tcsh):
	// like every other group, it is a wrong command line. Its scripts go
	// to the writer root has when it is made.
	root.SetOut(e.stdout)
	root.InitDefaultCompletionCmd()
	for _, c := range root.Commands() {
		if c.Name() == "completion" {
			c.Args, c.RunE = cobra.ArbitraryArgs, e.group
		}
	}
	return root
}

const envHelp = `
An https API with a private CA: $LOCKBOX_CA_FILE (PEM CA certificates). One that requires
client certificates: $LOCKBOX_CLIENT_CERT_FILE and $LOCKBOX_CLIENT_KEY_FILE (PEM).
`

// group runs a command that only holds others: without a subcommand it is a
// usage error, with an unknown one it suggests the likely one.
func (e *env) group(cmd *cobra.Command, args []string) error {
	if len(args) == 0 {
		return &usageError{cmd: cmd, msg: "missing command", usage: true}
	}
	msg := fmt.Sprintf("unknown command %q", strings.TrimSpace(commandWords(cmd)+" "+args[0]))
	if s := suggest(cmd, args[0]); s != "" {
		return &usageError{cmd: cmd, msg: fmt.Sprintf("%s; did you mean %q?", msg, s)}
	}
	return &usageError{cmd: cmd, msg: msg, usage: true}
}

// groupOf is a command that only groups subs: run alone or with an unknown
// word it says so (group), suggesting the nearest subcommand.
func (e *env) groupOf(use, short, groupID string, subs ...*cobra.Command) *cobra.Command {
	cmd := &cobra.Command{Use: use, Short: short, GroupID: groupID, Args: cobra.ArbitraryArgs, RunE: e.group}
	cmd.AddCommand(subs...)
	return cmd
}

// commandWords is cmd's path without the program's name.
func commandWords(cmd *cobra.Command) string {
	_, words, _ := strings.Cut(cmd.CommandPath(), " ")
	return words
}

// suggest returns the command (its words, e.g. "request list") under cmd
// that the unknown word most likely meant, or "": a plural or singular
// form first ("requests" → "request"), then cobra's suggestions (an edit
// distance of at most 2, or a prefix).
func suggest(cmd *cobra.Command, word string) string {
	full := func(name string) string { return strings.TrimSpace(commandWords(cmd) + " " + name) }
	if cmd.SuggestionsMinimumDistance <= 0 {
		cmd.SuggestionsMinimumDistance = 2 // cobra sets it on the root only
	}
	w := strings.ToLower(word)
	for _, c := range cmd.Commands() {
		if n := strings.ToLower(c.Name()); c.IsAvailableCommand() && (w+"s" == n || n+"s" == w) {
			return full(c.Name())
		}
	}
	if s := cmd.SuggestionsFor(word); len(s) > 0 {
		return full(s[0])
	}
	return ""
}

// helpCommand is "help [COMMAND]": cobra's prints the top-level help for an
// unknown topic and succeeds; this one says so and fails.
func (e *env) helpCommand(root *cobra.Command) *cobra.Command {
	return &cobra.Command{
		Use:   "help [COMMAND]",
		Short: "show help for lockboxctl or a command",
		Args:  cobra.ArbitraryArgs,
		ValidArgsFunction: func(_ *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
			c, _, err := root.Find(args)
			if err != nil {
				return nil, cobra.ShellCompDirectiveNoFileComp
			}
			var out []cobra.Completion
			for _, sub := range c.Commands() {
				if sub.IsAvailableCommand() && strings.HasPrefix(sub.Name(), toComplete) {
					out = append(out, cobra.CompletionWithDesc(sub.Name(), sub.Short))
				}
			}
			return out, cobra.ShellCompDirectiveNoFileComp
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			target, rest, err := root.Find(args)
			if err == nil && len(rest) == 0 {
				return target.Help()
			}
			if target == nil {
				target = root
			}
			msg := fmt.Sprintf("no help for unknown command %q", strings.Join(args, " "))
			if len(rest) > 0 {
				if s := suggest(target, rest[0]); s != "" {
					msg += fmt.Sprintf("; did you mean %q?", s)
				}
			}
			return &usageError{cmd: root, msg: msg}
		},
	}
}

// checkOutput refuses an output format the command can't print.
func (e *env) checkOutput(cmd *cobra.Command) error {
	o := string(e.g.output)
	if o == "table" || o == "json" || o == "yaml" {
		return nil
	}
	extra := strings.Fields(cmd.Annotations[outputsAnnotation])
	if slices.Contains(extra, o) {
		return nil
	}
	return &usageError{cmd: cmd, msg: fmt.Sprintf("-o %s is not available for %q: use %s",
		o, commandWords(cmd), strings.Join(append([]string{"table", "json", "yaml"}, extra...), ", "))}
}

// outputs returns the annotation for commands that print formats besides
// table, json and yaml.
func withOutputs(formats ...string) map[string]string {
	return map[string]string{outputsAnnotation: strings.Join(formats, " ")}
}

// args returns an argument check that wants exactly the named positional
// arguments; its errors are usage errors.
func args(names ...string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, pos []string) error {
		if err := wantArgs(pos, names...); err != nil {
			return &usageError{cmd: cmd, msg: err.Error()}
		}
		return nil
	}
}

// completionTimeout bounds the API calls of shell completion: a slow
// server must not hang the user's shell.
const completionTimeout = 5 * time.Second

// completeRequests completes a request id (only the first argument) from
// the requests the caller may see, keeping those keep says to offer.
func (e *env) completeRequests(keep func(wire.Request) bool) cobra.CompletionFunc {
	return func(_ *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		if len(args) > 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		c, err := e.client()
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		ctx, cancel := context.WithTimeout(e.ctx, completionTimeout)
		defer cancel()
		reqs, err := c.ListRequests(ctx, client.ListOptions{Limit: 200})
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		var out []cobra.Completion
		for _, r := range reqs {
			if strings.HasPrefix(r.ID, toComplete) && (keep == nil || keep(r)) {
				out = append(out, cobra.CompletionWithDesc(r.ID, clean(fmt.Sprintf("%s %s %s", r.Tenant, r.Service, r.State))))
			}
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	}
}

// completeTenants completes a tenant (the first argument, or a --tenant
// flag's value) from the tenants the caller may see.
func (e *env) completeTenants(_ *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	c, err := e.client()
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	ctx, cancel := context.WithTimeout(e.ctx, completionTimeout)
	defer cancel()
	list, err := c.Tenants(ctx)
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	var out []cobra.Completion
	for _, t := range list {
		if strings.HasPrefix(t.ID, toComplete) {
			out = append(out, cobra.CompletionWithDesc(t.ID, clean(t.DisplayName)))
		}
	}
	return out, cobra.ShellCompDirectiveNoFileComp
}

// firstArgTenant completes the first argument as a tenant, nothing after.
func (e *env) firstArgTenant(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	if len(args) > 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	return e.completeTenants(cmd, args, toComplete)
}

func (e *env) versionCommand() *cobra.Command {
	return &cobra.Command{
		Use:   "version",
		Short: "print lockboxctl's version",
		Args:  args(),
		RunE: func(*cobra.Command, []string) error {
			v := map[string]string{"version": version(), "go": goVersion()}
			return e.emit(v, nil, func(w io.Writer) error {
				_, err := fmt.Fprintf(w, "lockboxctl %s (%s)\n", version(), goVersion())
				return err
			})
		},
	}
}
