package cli

import (
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/lockbox-oss/lockbox/api/wire"
)

// The tenant registry: the provider's Lockbox administrators onboard tenants
// and keep their entries; everyone else may list and show what they may see.

var tenantCommands = []*command{
	{
		name:     "tenant onboard",
		synopsis: "ID --name NAME --domain D [--domain D]... [--global-admin ADDR]... [--lockbox on|off] [--organization-id GUID]",
		summary:  "onboard a tenant, so requests can name it (the provider's Lockbox administrators)",
		flags: `--name NAME              the organization's display name
--domain D               a user domain of the tenant; repeat or separate with commas.
                         Its users, and so its approvers, are user@ these domains
--global-admin ADDR      e-mail address of a global administrator, notified of every
                         request awaiting the tenant; repeat or separate with commas
--lockbox on|off         the tenant's Customer Lockbox switch from the start (on when left out)
--organization-id GUID   the tenant's GUID, as Microsoft 365 names it; generated when left out`,
		run: runTenantOnboard,
	},
	{
		name:     "tenant list",
		synopsis: "[-o table|json]",
		summary:  "list the onboarded tenants you may see",
		run:      runTenantList,
	},
	{
		name:     "tenant show",
		synopsis: "ID [-o table|json]",
		summary:  "show a tenant's registry entry",
		run:      runTenantShow,
	},
	{
		name:     "tenant update",
		synopsis: "ID [--name NAME] [--domain D]... [--global-admin ADDR]...",
		summary:  "change a tenant's registry entry (the provider's Lockbox administrators)",
		flags: `--name NAME              a new display name
--domain D               replace the user domains; repeat or separate with commas.
                         Approvers outside the new domains lose their rights
--global-admin ADDR      replace the global administrators' addresses; --global-admin ""
                         removes them all`,
		run: runTenantUpdate,
	},
}

func runTenantOnboard(e *env, name string, args []string) error {
	fs := e.flagSet(name)
	display := fs.String("name", "", "")
	orgID := fs.String("organization-id", "", "")
	lockbox := fs.String("lockbox", "", "")
	var domains, admins listValue
	fs.Var(&domains, "domain", "")
	fs.Var(&admins, "global-admin", "")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return flagError(name, err)
	}
	if err := wantArgs(name, pos, "ID"); err != nil {
		return err
	}
	in := wire.Onboarding{ID: pos[0], OrganizationID: *orgID, DisplayName: *display,
		Domains: slices.Clone([]string(domains)), GlobalAdmins: slices.Clone([]string(admins))}
	if in.GlobalAdmins == nil {
		in.GlobalAdmins = []string{}
	}
	if given(fs, "lockbox") {
		on, err := parseOnOff(*lockbox)
		if err != nil {
			return &usageError{cmd: name, msg: err.Error()}
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
	if e.g.output.json() {
		return writeJSON(e.stdout, t)
	}
	if err := printTenant(e.stdout, t.Tenant); err != nil {
		return err
	}
	tw := newTable(e.stdout)
	row(tw, "Customer Lockbox:", onOff(t.Settings.LockboxEnabled))
	return tw.Flush()
}

func runTenantList(e *env, name string, args []string) error {
	fs := e.flagSet(name)
	pos, err := parseArgs(fs, args)
	if err != nil {
		return flagError(name, err)
	}
	if err := wantArgs(name, pos); err != nil {
		return err
	}
	c, err := e.client()
	if err != nil {
		return err
	}
	list, err := c.Tenants(e.ctx)
	if err != nil {
		return err
	}
	if e.g.output.json() {
		return writeJSON(e.stdout, map[string]any{"tenants": list})
	}
	tw := newTable(e.stdout)
	row(tw, "ID", "NAME", "DOMAINS", "ORGANIZATION ID")
	for _, t := range list {
		row(tw, cell(t.ID), cell(t.DisplayName), cell(strings.Join(t.Domains, ",")), cell(t.OrganizationID))
	}
	return tw.Flush()
}

func runTenantShow(e *env, name string, args []string) error {
	fs := e.flagSet(name)
	pos, err := parseArgs(fs, args)
	if err != nil {
		return flagError(name, err)
	}
	if err := wantArgs(name, pos, "ID"); err != nil {
		return err
	}
	c, err := e.client()
	if err != nil {
		return err
	}
	t, err := c.Tenant(e.ctx, pos[0])
	if err != nil {
		return err
	}
	if e.g.output.json() {
		return writeJSON(e.stdout, t)
	}
	return printTenant(e.stdout, t)
}

func runTenantUpdate(e *env, name string, args []string) error {
	fs := e.flagSet(name)
	display := fs.String("name", "", "")
	var domains, admins listValue
	fs.Var(&domains, "domain", "")
	fs.Var(&admins, "global-admin", "")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return flagError(name, err)
	}
	if err := wantArgs(name, pos, "ID"); err != nil {
		return err
	}
	var u wire.TenantUpdate
	if given(fs, "name") {
		u.DisplayName = display
	}
	if given(fs, "domain") {
		d := slices.Clone([]string(domains))
		u.Domains = &d
	}
	if given(fs, "global-admin") {
		a := append([]string{}, admins...)
		u.GlobalAdmins = &a
	}
	if u == (wire.TenantUpdate{}) {
		return &usageError{cmd: name, msg: "nothing to change: give --name, --domain or --global-admin"}
	}
	c, err := e.client()
	if err != nil {
		return err
	}
	t, err := c.UpdateTenant(e.ctx, pos[0], u)
	if err != nil {
		return err
	}
	if e.g.output.json() {
		return writeJSON(e.stdout, t)
	}
	return printTenant(e.stdout, t)
}

func printTenant(w io.Writer, t wire.Tenant) error {
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
	return tw.Flush()
}

// parseOnOff reads a switch value as "tenant settings set --lockbox" does.
func parseOnOff(v string) (bool, error) {
	switch strings.ToLower(v) {
	case "on", "true", "enabled":
		return true, nil
	case "off", "false", "disabled":
		return false, nil
	}
	return false, fmt.Errorf("--lockbox %q must be on or off", v)
}
