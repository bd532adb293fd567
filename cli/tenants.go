package cli

import (
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strings"

	"github.com/spf13/cobra"

	"github.com/lockbox-oss/lockbox/api/client"
	"github.com/lockbox-oss/lockbox/api/wire"
)

// The tenant registry: the provider's Lockbox administrators onboard tenants
// and keep their entries; everyone else may list and show what they may see.
// A tenant's settings and approvers are its administrators'.

func (e *env) tenantCommand() *cobra.Command {
	settings := e.groupOf("settings", "get or set a tenant's Customer Lockbox settings", "",
		e.settingsGetCommand("get TENANT", nil), e.settingsSetCommand())
	return e.groupOf("tenant", "onboard, list, show, update and offboard tenants; get or set a tenant's settings", groupTenants,
		e.onboardCommand("onboard ID", nil), e.tenantListCommand("list", nil, false),
		e.tenantShowCommand("show ID"), e.tenantUpdateCommand(), e.offboardCommand(), settings)
}

// offboardCommand is "tenant offboard ID --reason TEXT [--if-match ETAG]".
// It asks for no confirmation, as no other command does: lockboxctl is
// scripted, and the reason it requires is the deliberate step. Running it
// again is harmless (the server answers the first offboarding).
//
// An administrator who decided on the entry as "tenant show" printed it
// passes the ETag it printed with --if-match: the server then offboards
// the tenant only if nobody changed the entry since (its domains or
// global administrators, which say whose requests are ended), else nothing
// is done. Without it the tenant is offboarded whatever its entry is now,
// as before the flag existed. With it the entry is read first, so that a
// server that does not check If-Match can't turn the condition into an
// unconditional offboarding.
func (e *env) offboardCommand() *cobra.Command {
	var reason, ifMatch string
	cmd := &cobra.Command{
		Use: "offboard ID --reason TEXT [--if-match ETAG]",
		Short: "offboard a tenant that left: revoke its access, cancel its pending requests, refuse new ones; " +
			"its audit log stays readable (the provider's Lockbox administrators)",
		Args:              args("ID"),
		ValidArgsFunction: e.firstArgTenant,
		RunE: func(cmd *cobra.Command, pos []string) error {
			if strings.TrimSpace(reason) == "" {
				return e.usage("missing --reason")
			}
			etag := ""
			if cmd.Flags().Changed("if-match") {
				// An unset shell variable must not turn the condition
				// into an unconditional offboarding.
				if etag = quoteETag(ifMatch); etag == "" {
					return e.usage("--if-match needs the ETag 'lockboxctl tenant show %s' prints", pos[0])
				}
			}
			c, err := e.client()
			if err != nil {
				return err
			}
			// One line, in the command's terms: what to run to see the
			// entry as it is now.
			changedMsg := fmt.Sprintf("the registry entry of tenant %s changed since the ETag %s was read; nothing was done: run 'lockboxctl tenant show %s' and offboard it with its new ETag if you still mean to", pos[0], etag, pos[0])
			if etag != "" {
				// A server that does not check If-Match on an offboarding
				// (one from before it did, which ignored the header, or
				// one whose entries have no ETag) offboards the tenant
				// whatever its entry is now: read the entry first, and
				// send only what the condition still covers. The server
				// checks it again in the offboarding's own transaction.
				cur, curETag, err := c.TenantETag(e.ctx, pos[0])
				if err != nil {
					return err
				}
				switch {
				case curETag == "":
					return fmt.Errorf("the server sent no ETag for the registry entry of tenant %s, so --if-match can't be checked; nothing was done", pos[0])
				case cur.Offboarded == nil && cur.State != wire.TenantOffboarded && strongETag(etag) && etag != curETag:
					// An offboarded tenant is sent whatever its ETag: the
					// server answers a retry with the offboarding done.
					return &refusedError{msg: changedMsg}
				}
			}
			var t wire.Tenant
			if etag == "" {
				t, err = c.Offboard(e.ctx, pos[0], reason)
			} else {
				t, err = c.OffboardIfMatch(e.ctx, pos[0], reason, etag)
			}
			if apiErr, ok := errors.AsType[*client.APIError](err); ok && apiErr.Status == http.StatusPreconditionFailed && apiErr.Code == client.CodeTenantChanged {
				changed := *apiErr
				changed.Message = changedMsg
				return &changed
			}
			if err != nil {
				return err
			}
			return e.emit(t, nil, func(w io.Writer) error { return printTenant(w, t) })
		},
	}
	cmd.Flags().StringVar(&reason, "reason", "", "why the tenant is offboarded (kept in its registry entry and audit log)")
	cmd.Flags().StringVar(&ifMatch, "if-match", "", `offboard only if the registry entry is still the revision whose ETag 'tenant show' printed ("7" or 7); if anyone changed it since, nothing is done (exit 3); a server that sends no ETag gets no offboarding (exit 1)`)
	limitChars(cmd.Flags(), "reason", maxOffboardReasonChars)
	return cmd
}

// quoteETag returns the ETag v names as the API wants it, quotes included:
// "tenant show" prints "7", which a shell strips to 7 unless it is quoted
// again, so a bare revision number is quoted here. Anything else is sent
// as given, for the server to judge; blank is "".
func quoteETag(v string) string {
	v = strings.TrimSpace(v)
	if v != "" && strings.Trim(v, "0123456789") == "" {
		return `"` + v + `"`
	}
	return v
}

// strongETag reports whether v is one strong entity tag ("7"), the only
// form whose mismatch lockboxctl judges itself; any other (W/"7", *) is
// the server's to judge.
func strongETag(v string) bool {
	return len(v) >= 2 && v[0] == '"' && v[len(v)-1] == '"' && !strings.Contains(v[1:len(v)-1], `"`)
}

func (e *env) approverCommand() *cobra.Command {
	return e.groupOf("approver", "list, add or remove a tenant's Customer Lockbox access approvers", groupTenants,
		e.approverListCommand("list TENANT", nil), e.approverChange(true), e.approverChange(false))
}

func (e *env) onboardCommand(use string, aliases []string) *cobra.Command {
	var (
		display, orgID, lockbox string
		domains, admins         listValue
	)
	cmd := &cobra.Command{
		Use:               use + " --name NAME --domain D [--domain D]... [--global-admin ADDR]... [--lockbox on|off] [--organization-id GUID]",
		Aliases:           aliases,
		Short:             "onboard a tenant, so requests can name it (the provider's Lockbox administrators)",
		Args:              args("ID"),
		ValidArgsFunction: cobra.NoFileCompletions,
		RunE: func(cmd *cobra.Command, pos []string) error {
			in := wire.Onboarding{ID: pos[0], OrganizationID: orgID, DisplayName: display,
				Domains: slices.Clone([]string(domains)), GlobalAdmins: slices.Clone([]string(admins))}
			if in.GlobalAdmins == nil {
				in.GlobalAdmins = []string{}
			}
			if cmd.Flags().Changed("lockbox") {
				on, err := parseOnOff(lockbox)
				if err != nil {
					return e.usage("%s", err)
				}
				in.LockboxEnabled = &on
			}
			c, err := e.client()
			if err != nil {
				return err
			}
			t, err := c.Onboard(e.ctx, in)
			if err != nil {
				return err
			}
			return e.emit(t, nil, func(w io.Writer) error {
				return printTenant(w, t.Tenant, [2]string{"Customer Lockbox:", onOff(t.Settings.LockboxEnabled)})
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&display, "name", "", "the organization's display name")
	f.Var(&domains, "domain", "a user domain of the tenant; repeat or separate with commas. Its users, and so its approvers, are user@ these domains")
	f.Var(&admins, "global-admin", "e-mail address of a global administrator, notified of every request awaiting the tenant; repeat or separate with commas")
	f.StringVar(&lockbox, "lockbox", "", "the tenant's Customer Lockbox switch from the start, on or off (on when left out)")
	f.StringVar(&orgID, "organization-id", "", "the tenant's GUID, as Microsoft 365 names it; generated when left out")
	_ = cmd.RegisterFlagCompletionFunc("lockbox", cobra.FixedCompletions([]string{"on", "off"}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

// tenantListCommand lists tenants; withID also shows one when named ("get
// tenants [ID]").
func (e *env) tenantListCommand(use string, aliases []string, withID bool) *cobra.Command {
	cmd := &cobra.Command{
		Use:     use,
		Aliases: aliases,
		Short:   "list the onboarded tenants you may see",
		Long:    "List the onboarded tenants you may see.\n\n" + unreadableTenantsHelp,
		Args:    args(),
		RunE: func(_ *cobra.Command, pos []string) error {
			if len(pos) == 1 {
				return e.showTenant(pos[0])
			}
			c, err := e.client()
			if err != nil {
				return err
			}
			out, err := c.TenantList(e.ctx)
			if err != nil {
				return err
			}
			e.tellUnreadableTenants(out.Unreadable)
			list := out.Tenants
			return e.emit(out, nil, func(w io.Writer) error {
				tw := newTable(w)
				// STATE comes last: scripts reading the columns by
				// position from before it existed keep their columns.
				row(tw, "ID", "NAME", "DOMAINS", "ORGANIZATION ID", "STATE")
				for _, t := range list {
					row(tw, cell(t.ID), cell(t.DisplayName), cell(strings.Join(t.Domains, ",")), cell(t.OrganizationID), tenantState(t))
				}
				return tw.Flush()
			})
		},
	}
	if withID {
		cmd.Short = "list the onboarded tenants you may see, or show one"
		cmd.Long = "List the onboarded tenants you may see, or show one.\n\n" + unreadableTenantsHelp
		cmd.Args = func(cmd *cobra.Command, pos []string) error {
			if len(pos) > 1 {
				return &usageError{cmd: cmd, msg: fmt.Sprintf("unexpected argument %q", pos[1])}
			}
			if len(pos) == 1 {
				if err := checkName("ID", pos[0]); err != nil {
					return &usageError{cmd: cmd, msg: err.Error()}
				}
			}
			return nil
		}
		cmd.ValidArgsFunction = e.firstArgTenant
	}
	return cmd
}

// unreadableTenantsHelp tells, in the tenant list's help, how it names a
// tenant whose registry entry it can't read.
const unreadableTenantsHelp = `A tenant whose stored registry entry can't be read is left out of the rows and named on
stderr. With -o json or -o yaml the document also names it, as the API's list does:
"unreadable": [{"id": "...", "tenant": "...", "error": "cannot be read"}], absent when
there is none, so a script can tell the list is incomplete. Showing that tenant alone
fails (record_unreadable).`

func (e *env) tenantShowCommand(use string) *cobra.Command {
	return &cobra.Command{
		Use:   use,
		Short: "show a tenant's registry entry",
		Long: "Show a tenant's registry entry, with its ETag: the ETag: line of the table, the etag\n" +
			"field of -o json and -o yaml (quotes included, as the API sent it), which\n" +
			"\"tenant offboard --if-match\" takes.",
		Args:              args("ID"),
		ValidArgsFunction: e.firstArgTenant,
		RunE:              func(_ *cobra.Command, pos []string) error { return e.showTenant(pos[0]) },
	}
}

func (e *env) showTenant(id string) error {
	c, err := e.client()
	if err != nil {
		return err
	}
	t, etag, err := c.TenantETag(e.ctx, id)
	if err != nil {
		return err
	}
	return e.printTenantETag(t, etag)
}

// printTenantETag prints a registry entry with the ETag of its revision.
// The documents carry the ETag the table prints, as the API sent it
// (quotes included), for a script to pass to "tenant offboard --if-match"
// or send as If-Match; none from a server that sent none.
func (e *env) printTenantETag(t wire.Tenant, etag string) error {
	doc := struct {
		wire.Tenant
		ETag string `json:"etag,omitempty"`
	}{Tenant: t, ETag: etag}
	return e.emit(doc, nil, func(w io.Writer) error {
		if etag == "" {
			// A server from before registry entries had revisions.
			return printTenant(w, t)
		}
		// What "tenant offboard --if-match" takes, to offboard the entry
		// as shown here.
		return printTenant(w, t, [2]string{"ETag:", cell(etag)})
	})
}

// describeTenant is "describe tenant ID": the registry entry with the
// tenant's settings and approvers, as far as the caller may read them.
// More provider staff may read the entry than the settings and approvers
// (the tenant's administrators and approvers, and support managers): a 403
// for either marks that part not visible, in the table and as null in JSON
// and YAML, rather than failing the whole command. Any other error still
// fails it. Both ETags are shown, as "tenant show" and "tenant settings
// get" show them: this is where an administrator reads the settings before
// changing them with "tenant settings set --if-match".
func (e *env) describeTenant() *cobra.Command {
	return &cobra.Command{
		Use:     "tenant ID",
		Aliases: []string{"tenants"},
		Short:   "show a tenant's registry entry, settings and approvers",
		Long: "Show a tenant's registry entry, settings and approvers, as far as you may read them.\n\n" +
			"The entry's ETag is the ETag: line of the table (the etag field of -o json and -o yaml),\n" +
			"which \"tenant offboard --if-match\" takes; the settings' is the Settings ETag: line (the\n" +
			"settings.etag field), which \"tenant settings set --if-match\" takes. Both as the API sent\n" +
			"them, quotes included.",
		Args:              args("ID"),
		ValidArgsFunction: e.firstArgTenant,
		RunE: func(_ *cobra.Command, pos []string) error {
			c, err := e.client()
			if err != nil {
				return err
			}
			t, etag, err := c.TenantETag(e.ctx, pos[0])
			if err != nil {
				return err
			}
			// The ETags as the API sent them (quotes included), as "tenant
			// show" and "tenant settings get" print them; none from a
			// server that sent none.
			type settingsDoc struct {
				wire.Settings
				ETag string `json:"etag,omitempty"`
			}
			v := struct {
				wire.Tenant
				ETag        string                     `json:"etag,omitempty"`
				Settings    *settingsDoc               `json:"settings"`
				Approvers   []string                   `json:"approvers"`
				NotCounting []wire.NotCountingApprover `json:"not_counting,omitempty"`
			}{Tenant: t, ETag: etag}
			s, settingsETag, err := c.SettingsETag(e.ctx, pos[0])
			switch {
			case err == nil:
				if s.NotificationAddresses == nil {
					s.NotificationAddresses = []string{}
				}
				v.Settings = &settingsDoc{Settings: s, ETag: settingsETag}
			case !isForbidden(err):
				return err
			}
			approvers, err := c.ApproverList(e.ctx, pos[0])
			switch {
			case err == nil:
				v.Approvers, v.NotCounting = approvers.Approvers, approvers.NotCounting
			case !isForbidden(err):
				return err
			}
			return e.emit(v, nil, func(w io.Writer) error {
				var rows [][2]string
				if etag != "" {
					rows = append(rows, [2]string{"ETag:", cell(etag)})
				}
				lockbox, notify := notVisible, notVisible
				if v.Settings != nil {
					lockbox, notify = onOff(s.LockboxEnabled), cell(strings.Join(s.NotificationAddresses, ", "))
				}
				rows = append(rows, [2]string{"Customer Lockbox:", lockbox}, [2]string{"Notification addresses:", notify})
				if v.Settings != nil && settingsETag != "" {
					rows = append(rows, [2]string{"Settings ETag:", cell(settingsETag)})
				}
				approvers := notVisible
				if v.Approvers != nil {
					approvers = cell(strings.Join(v.Approvers, ", "))
				}
				rows = append(rows, [2]string{"Approvers:", approvers})
				if len(v.NotCounting) > 0 {
					// Assignments that approve nothing are never shown as
					// approvers: apart, each with why.
					nc := make([]string, len(v.NotCounting))
					for i, n := range v.NotCounting {
						nc[i] = n.User + " (" + n.Reason + ")"
					}
					rows = append(rows, [2]string{"Not counting:", cell(strings.Join(nc, "; "))})
				}
				return printTenant(w, t, rows...)
			})
		},
	}
}

// notVisible stands for a value the API would not show the caller.
const notVisible = "(not visible to you)"

// isForbidden reports whether err is the API's 403: the caller may not.
func isForbidden(err error) bool {
	var apiErr *client.APIError
	return errors.As(err, &apiErr) && apiErr.Status == http.StatusForbidden
}

func (e *env) tenantUpdateCommand() *cobra.Command {
	var (
		display                 string
		domains, admins         listValue
		addDomains, dropDomains listValue
		addAdmins, dropAdmins   listValue
	)
	cmd := &cobra.Command{
		Use:   "update ID [--name NAME] [--domain D | --add-domain D | --remove-domain D]... [--global-admin ADDR | --add-global-admin ADDR | --remove-global-admin ADDR]...",
		Short: "change a tenant's registry entry (the provider's Lockbox administrators)",
		Long: "Change a tenant's registry entry (the provider's Lockbox administrators).\n\n" +
			"--domain and --global-admin replace the list whole with what they name. --add-* and\n" +
			"--remove-* change the list as it is: the command reads the entry and saves it only if\n" +
			"nobody changed it meanwhile; if someone did, nothing is saved and it exits 3: run it\n" +
			"again to apply your change to the new entry.\n\n" +
			"It prints the entry as saved with its new ETag (the ETag: line of the table, the etag\n" +
			"field of -o json and -o yaml), which \"tenant offboard --if-match\" takes.",
		Args:              args("ID"),
		ValidArgsFunction: e.firstArgTenant,
		RunE: func(cmd *cobra.Command, pos []string) error {
			var u wire.TenantUpdate
			f := cmd.Flags()
			for _, edit := range []struct {
				flag string
				v    listValue
			}{{"add-domain", addDomains}, {"remove-domain", dropDomains}, {"add-global-admin", addAdmins}, {"remove-global-admin", dropAdmins}} {
				if f.Changed(edit.flag) && len(edit.v) == 0 {
					return e.usage("--%s needs a value", edit.flag)
				}
			}
			editDomains := f.Changed("add-domain") || f.Changed("remove-domain")
			editAdmins := f.Changed("add-global-admin") || f.Changed("remove-global-admin")
			if f.Changed("domain") && editDomains {
				return e.usage("--domain replaces the domains: give it, or --add-domain and --remove-domain, not both")
			}
			if f.Changed("global-admin") && editAdmins {
				return e.usage("--global-admin replaces the global administrators: give it, or --add-global-admin and --remove-global-admin, not both")
			}
			if f.Changed("name") {
				u.DisplayName = &display
			}
			if f.Changed("domain") {
				// Never nil: --domain "" leaves domains empty, and nil
				// would go out as null, which the API reads as "no change"
				// where the user asked for none (which it refuses).
				d := append([]string{}, domains...)
				u.Domains = &d
			}
			if f.Changed("global-admin") {
				a := append([]string{}, admins...)
				u.GlobalAdmins = &a
			}
			if u == (wire.TenantUpdate{}) && !editDomains && !editAdmins {
				return e.usage("nothing to change: give --name, --domain, --global-admin, or --add-/--remove- one of them")
			}
			c, err := e.client()
			if err != nil {
				return err
			}
			if !editDomains && !editAdmins {
				// What the flags name replaces the entry's fields: nothing
				// was read, so there is nothing to compare against.
				t, saved, err := c.UpdateTenantETag(e.ctx, pos[0], u)
				if err != nil {
					return err
				}
				return e.printTenantETag(t, saved)
			}
			// The API replaces a list whole, so read it, change what was
			// asked and send the ETag read back: a change another
			// administrator saved in between (a global administrator
			// added while this adds a domain) is then refused (412)
			// rather than undone by the lists read before it.
			t, etag, err := c.TenantETag(e.ctx, pos[0])
			if err != nil {
				return err
			}
			if editDomains {
				d, err := editList("domain", pos[0], t.Domains, normalizeDomains(addDomains), normalizeDomains(dropDomains), sameAddress)
				if err != nil {
					return err
				}
				u.Domains = &d
			}
			if editAdmins {
				a, err := editList("global administrator", pos[0], t.GlobalAdmins, addAdmins, dropAdmins, sameAddress)
				if err != nil {
					return err
				}
				u.GlobalAdmins = &a
			}
			var saved string
			if etag == "" {
				// A server from before registry entries had revisions: it
				// has nothing to compare against.
				t, err = c.UpdateTenant(e.ctx, pos[0], u)
			} else {
				t, saved, err = c.UpdateTenantIfMatch(e.ctx, pos[0], u, etag)
			}
			if apiErr, ok := errors.AsType[*client.APIError](err); ok && apiErr.Status == http.StatusPreconditionFailed && apiErr.Code == client.CodeTenantChanged {
				// One line, in the command's terms: the server's message
				// asks to "read it again", which running the command
				// again does.
				changed := *apiErr
				changed.Message = fmt.Sprintf("the registry entry of tenant %s changed while this command ran; nothing was saved: run it again to apply your change to the new entry", pos[0])
				return &changed
			}
			if err != nil {
				return err
			}
			return e.printTenantETag(t, saved)
		},
	}
	f := cmd.Flags()
	f.StringVar(&display, "name", "", "a new display name")
	f.Var(&domains, "domain", "replace the user domains; repeat or separate with commas. Approvers outside the new domains lose their rights")
	f.Var(&addDomains, "add-domain", "add user domains to the entry's")
	f.Var(&dropDomains, "remove-domain", "remove user domains from the entry's; their approvers lose their rights")
	f.Var(&admins, "global-admin", `replace the global administrators' addresses; --global-admin "" removes them all`)
	f.Var(&addAdmins, "add-global-admin", "add global administrators' addresses to the entry's")
	f.Var(&dropAdmins, "remove-global-admin", "remove global administrators' addresses from the entry's")
	return cmd
}

// normalizeDomains puts domains as the registry keeps them: lower case,
// without a final dot, so that --remove-domain Contoso.COM. finds
// contoso.com. Only ASCII letters are lowered, as the registry lowers
// them: strings.ToLower would turn a Kelvin sign (U+212A), which the
// server refuses, into the k of another domain.
func normalizeDomains(in []string) []string {
	out := make([]string, len(in))
	for i, d := range in {
		out[i] = strings.TrimSuffix(strings.Map(func(r rune) rune {
			if 'A' <= r && r <= 'Z' {
				return r + ('a' - 'A')
			}
			return r
		}, d), ".")
	}
	return out
}

// sameAddress reports whether a and b are one global administrator's
// address, or one domain, as the registry tells them apart: equal without
// ASCII case (Gina@Contoso.example is gina@contoso.example), every other
// byte as it is, so that no Unicode case mapping (a Kelvin sign for k)
// makes two addresses, or two domains, one.
func sameAddress(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range len(a) {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// editList returns list with add appended (those not in it yet) and drop
// removed, comparing with same. A value of drop that is not in the list
// is refused before anything is saved: it is most likely a typo, and
// saving the rest would hide it.
func editList(what, tenant string, list, add, drop []string, same func(a, b string) bool) ([]string, error) {
	out := make([]string, 0, len(list)+len(add))
	for _, v := range list {
		if !slices.ContainsFunc(drop, func(d string) bool { return same(d, v) }) {
			out = append(out, v)
		}
	}
	for _, d := range drop {
		if !slices.ContainsFunc(list, func(v string) bool { return same(d, v) }) {
			return nil, fmt.Errorf("%s is not a %s of tenant %s; nothing was saved", d, what, tenant)
		}
	}
	for _, a := range add {
		if !slices.ContainsFunc(out, func(v string) bool { return same(a, v) }) {
			out = append(out, a)
		}
	}
	return out, nil
}

// printTenant prints t's registry entry, then the label and value rows of
// more. They go into the same table so that their values line up with the
// entry's: a table of their own was aligned on its own labels.
func printTenant(w io.Writer, t wire.Tenant, more ...[2]string) error {
	admins := "-"
	if len(t.GlobalAdmins) > 0 {
		admins = clean(strings.Join(t.GlobalAdmins, ", "))
	}
	tw := newTable(w)
	row(tw, "Tenant:", cell(t.ID))
	row(tw, "Name:", cell(t.DisplayName))
	row(tw, "Organization id:", cell(t.OrganizationID))
	row(tw, "Domains:", cell(strings.Join(t.Domains, ", ")))
	row(tw, "Global administrators:", admins)
	row(tw, "Onboarded:", fmtTime(t.OnboardedAt))
	row(tw, "State:", tenantState(t))
	if o := t.Offboarded; o != nil {
		row(tw, "Offboarded:", fmtTime(o.At)+" by "+cell(o.By))
		row(tw, "Offboard reason:", cell(o.Reason))
	}
	for _, r := range more {
		row(tw, r[0], r[1])
	}
	return tw.Flush()
}

// tenantState is t's state as the tables show it. A server from before
// offboarding existed sends none, and its tenants are all active; one
// that sends an offboarding without a state is believed on the
// offboarding, never shown active.
func tenantState(t wire.Tenant) string {
	switch {
	case t.Offboarded != nil:
		return wire.TenantOffboarded
	case t.State == "":
		return wire.TenantActive
	}
	return cell(t.State)
}

// parseOnOff reads a switch value as --lockbox takes it.
func parseOnOff(v string) (bool, error) {
	switch strings.ToLower(v) {
	case "on", "true", "enabled":
		return true, nil
	case "off", "false", "disabled":
		return false, nil
	}
	return false, fmt.Errorf("--lockbox %q must be on or off", v)
}

func (e *env) settingsGetCommand(use string, aliases []string) *cobra.Command {
	return &cobra.Command{
		Use:     use,
		Aliases: aliases,
		Short:   "show a tenant's Customer Lockbox settings",
		Long: "Show a tenant's Customer Lockbox settings, with their ETag: the ETag: line of the table,\n" +
			"the etag field of -o json and -o yaml (quotes included, as the API sent it), which\n" +
			"\"tenant settings set --if-match\" takes.",
		Args:              args("TENANT"),
		ValidArgsFunction: e.firstArgTenant,
		RunE: func(_ *cobra.Command, pos []string) error {
			c, err := e.client()
			if err != nil {
				return err
			}
			s, etag, err := c.SettingsETag(e.ctx, pos[0])
			if err != nil {
				return err
			}
			return e.printSettings(pos[0], s, etag)
		},
	}
}

// printSettings prints a tenant's settings with the ETag of their
// revision, for a script to pass to "tenant settings set --if-match" or
// send as If-Match: in the table when there is one, and in the documents
// as the API sent it (quotes included); none from a server that sent none.
func (e *env) printSettings(tenant string, s wire.Settings, etag string) error {
	if s.NotificationAddresses == nil {
		s.NotificationAddresses = []string{}
	}
	doc := struct {
		wire.Settings
		ETag string `json:"etag,omitempty"`
	}{Settings: s, ETag: etag}
	return e.emit(doc, nil, func(w io.Writer) error {
		if etag == "" {
			// A server from before settings had revisions.
			return printSettings(w, tenant, s)
		}
		return printSettings(w, tenant, s, [2]string{"ETag:", cell(etag)})
	})
}

func (e *env) settingsSetCommand() *cobra.Command {
	var (
		lockbox, ifMatch string
		notify           listValue
	)
	cmd := &cobra.Command{
		Use:               "set TENANT [--lockbox on|off] [--notify ADDR,...] [--if-match ETAG]",
		Short:             "change a tenant's Customer Lockbox settings (its global administrators and approvers)",
		Args:              args("TENANT"),
		ValidArgsFunction: e.firstArgTenant,
		RunE: func(cmd *cobra.Command, pos []string) error {
			setLockbox, setNotify := cmd.Flags().Changed("lockbox"), cmd.Flags().Changed("notify")
			if !setLockbox && !setNotify {
				return e.usage("nothing to change: give --lockbox or --notify")
			}
			var enabled bool
			if setLockbox {
				var err error
				if enabled, err = parseOnOff(lockbox); err != nil {
					return e.usage("%s", err)
				}
			}
			shown := ""
			if cmd.Flags().Changed("if-match") {
				// An unset shell variable must not turn the condition
				// into an unconditional change.
				if shown = quoteETag(ifMatch); shown == "" {
					return e.usage("--if-match needs the ETag 'lockboxctl tenant settings get %s' prints", pos[0])
				}
			}
			c, err := e.client()
			if err != nil {
				return err
			}
			// The API replaces the settings as a whole, so read them first
			// and change only what was asked, sending back the ETag read:
			// a change another administrator saved in between is then
			// refused (412) rather than undone by the settings read before
			// it.
			s, etag, err := c.SettingsETag(e.ctx, pos[0])
			if err != nil {
				return err
			}
			if shown != "" {
				if etag == "" {
					// Nothing to compare against: saving anyway would
					// drop the condition the command line asked for.
					return fmt.Errorf("the server sent no ETag for the settings of tenant %s, so --if-match can't be checked; nothing was saved", pos[0])
				}
				// The settings as the administrator saw them, not as read
				// just now: a change since refuses this one (412).
				etag = shown
			}
			if setLockbox {
				s.LockboxEnabled = enabled
			}
			if setNotify {
				s.NotificationAddresses = slices.Clone([]string(notify))
			}
			var saved string
			if etag == "" {
				// A server from before settings had revisions: it has
				// nothing to compare against.
				s, err = c.PutSettings(e.ctx, pos[0], s)
			} else {
				s, saved, err = c.PutSettingsIfMatch(e.ctx, pos[0], s, etag)
			}
			if apiErr, ok := errors.AsType[*client.APIError](err); ok && apiErr.Status == http.StatusPreconditionFailed && apiErr.Code == client.CodeSettingsChanged {
				// One line, said in the command's terms: the server's
				// message asks to "read them again", which running the
				// command again does.
				changed := *apiErr
				changed.Message = fmt.Sprintf("the settings of tenant %s changed while this command ran; nothing was saved: run it again to apply your change to the new settings", pos[0])
				if shown != "" {
					changed.Message = fmt.Sprintf("the settings of tenant %s changed since the ETag %s was read; nothing was saved: run 'lockboxctl tenant settings get %s' and set them with its new ETag if you still mean to", pos[0], shown, pos[0])
				}
				return &changed
			}
			if err != nil {
				return err
			}
			return e.printSettings(pos[0], s, saved)
		},
	}
	cmd.Flags().StringVar(&lockbox, "lockbox", "", "turn Customer Lockbox on or off; off makes the support manager's approval final")
	cmd.Flags().Var(&notify, "notify", `replace the notification addresses; --notify "" removes them all`)
	cmd.Flags().StringVar(&ifMatch, "if-match", "", `change them only if they are still the revision whose ETag 'tenant settings get' printed ("3" or 3); if anyone changed them since, nothing is saved (exit 3); a server that sends no ETag gets no change (exit 1)`)
	_ = cmd.RegisterFlagCompletionFunc("lockbox", cobra.FixedCompletions([]string{"on", "off"}, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

func (e *env) approverListCommand(use string, aliases []string) *cobra.Command {
	return &cobra.Command{
		Use:               use,
		Aliases:           aliases,
		Short:             "list a tenant's Customer Lockbox access approvers",
		Args:              args("TENANT"),
		ValidArgsFunction: e.firstArgTenant,
		RunE: func(_ *cobra.Command, pos []string) error {
			c, err := e.client()
			if err != nil {
				return err
			}
			list, err := c.ApproverList(e.ctx, pos[0])
			if err != nil {
				return err
			}
			return e.emit(list, nil, func(w io.Writer) error { return printApprovers(w, list) })
		},
	}
}

// approverState is what -o json and -o yaml print after approver add or
// remove: whether user is now an approver of tenant.
type approverState struct {
	Tenant   string `json:"tenant"`
	User     string `json:"user"`
	Approver bool   `json:"approver"`
}

// foldASCII is u with ASCII letters in lower case, as the API keeps an
// approver's id: user principal names are case-insensitive, and only
// ASCII is folded so that no other name (a Kelvin sign for k) becomes one.
func foldASCII(u string) string {
	return strings.Map(func(r rune) rune {
		if 'A' <= r && r <= 'Z' {
			return r + ('a' - 'A')
		}
		return r
	}, u)
}

func (e *env) approverChange(add bool) *cobra.Command {
	use, short := "add TENANT USER", "give USER the Customer Lockbox access approver role (global administrators)"
	if !add {
		use, short = "remove TENANT USER", "take the Customer Lockbox access approver role from USER (global administrators)"
	}
	return &cobra.Command{
		Use:   use,
		Short: short,
		Long: strings.ToUpper(short[:1]) + short[1:] + ".\n\n" +
			`With -o json or -o yaml it prints what now holds, {"tenant": T, "user": U,` + "\n" +
			`"approver": true} after add and false after remove, U in lower case as the` + "\n" +
			"tenant keeps it; the table output is the sentence saying so.",
		Args:              args("TENANT", "USER"),
		ValidArgsFunction: e.firstArgTenant,
		RunE: func(_ *cobra.Command, pos []string) error {
			c, err := e.client()
			if err != nil {
				return err
			}
			tenant, user := pos[0], pos[1]
			if add {
				err = c.AddApprover(e.ctx, tenant, user)
			} else {
				err = c.RemoveApprover(e.ctx, tenant, user)
			}
			if apiErr, ok := errors.AsType[*client.APIError](err); ok && apiErr.Status == http.StatusNotFound && apiErr.Code == client.CodeApproverNotFound {
				// Most likely a typo in the name: it printed the sentence
				// of a removal and exited 0. The API's 404 is exit 3, as
				// for every command: what was named does not exist (a
				// retry, which exit 1 invites, never helps). The API's
				// error, with its code and trace id, in the command's
				// words.
				notFound := *apiErr
				notFound.Message = fmt.Sprintf("%s is not an approver of tenant %s; nothing was changed", foldASCII(user), tenant)
				return &notFound
			}
			if err != nil {
				return err
			}
			// The API answers 204 with no body. A script reading -o json or
			// -o yaml still gets a document, saying what now holds; the
			// user as the tenant keeps it, in lower case, so it compares
			// equal to the approver list's, and so does the table's
			// sentence (it printed the user as typed).
			if e.g.output.structured() {
				return e.emit(approverState{Tenant: tenant, User: foldASCII(user), Approver: add}, nil, nil)
			}
			if add {
				_, err = fmt.Fprintf(e.stdout, "%s is an approver of tenant %s.\n", clean(foldASCII(user)), clean(tenant))
			} else {
				_, err = fmt.Fprintf(e.stdout, "%s is no longer an approver of tenant %s.\n", clean(foldASCII(user)), clean(tenant))
			}
			return err
		},
	}
}
