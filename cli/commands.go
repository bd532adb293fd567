package cli

import (
	"flag"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/lockbox-oss/lockbox/api/client"
	"github.com/lockbox-oss/lockbox/api/wire"
)

// command is one lockboxctl command.
type command struct {
	// name is the lower-case words that select it, e.g. "request approve".
	name string
	// display is how usage spells the name, when it differs from name.
	display string
	// synopsis follows the name in the usage line.
	synopsis string
	summary  string
	// flags describes the command's own flags, one per line.
	flags string
	run   func(e *env, name string, args []string) error
}

func (c *command) title() string {
	if c.display != "" {
		return c.display
	}
	return c.name
}

var (
	commands      []*command
	commandByName = map[string]*command{}
	groups        = map[string]bool{}
)

// The table is built in init because "help" refers back to it.
func init() {
	commands = []*command{
		{
			name:     "request create",
			synopsis: "--tenant T --service S --service-request SR --reason R --duration D [--activity A]...",
			summary:  "file a lockbox request for access to a tenant's data (support engineers)",
			flags: `--tenant T               tenant whose data you need
--service S              exchange, sharepoint or onedrive
--service-request SR     the support case number
--reason R               why you need access
--duration D             how long, e.g. 2h or 90m (at most 4h)
--activity A             an activity you need, e.g. Get-Mailbox; repeat or separate with
                         commas; none means the service's pre-approved read activities`,
			run: runRequestCreate,
		},
		{
			name:     "request list",
			synopsis: "[--tenant T] [--state S] [--created-after TIME] [--limit N] [-o table|json|id]",
			summary:  "list the requests you may see, newest first",
			flags: `--tenant T               only this tenant's requests
--state S                only requests in state S: ` + statesList() + `;
                         pending means both pending states (PowerShell's statuses work too)
--created-after TIME     only requests created after TIME (RFC 3339, e.g. 2026-01-02T15:04:05Z, or a date)
--limit N                at most N requests (the server's default when 0)`,
			run: runRequestList,
		},
		{
			name:     "request show",
			synopsis: "ID [-o table|json|id]",
			summary:  "show a request with its history",
			run:      runRequestShow,
		},
		{
			name:     "request activity",
			synopsis: "ID [-o table|json|csv]",
			summary:  "list every audit record of a request, oldest first: its decisions and each operator action",
			run:      runRequestActivity,
		},
		actionCommand("approve", "approve a request, as support manager or as tenant approver"),
		actionCommand("deny", "deny a request, as support manager or as tenant approver"),
		actionCommand("cancel", "withdraw your own pending request"),
		actionCommand("revoke", "end an approved request's access before its window ends"),
		{
			name:     "tenant settings get",
			synopsis: "TENANT",
			summary:  "show a tenant's Customer Lockbox settings",
			run:      runSettingsGet,
		},
		{
			name:     "tenant settings set",
			synopsis: "TENANT [--lockbox on|off] [--notify ADDR,...]",
			summary:  "change a tenant's Customer Lockbox settings (its global administrators and approvers)",
			flags: `--lockbox on|off         turn Customer Lockbox on or off; off makes the support
                         manager's approval final
--notify ADDR,...        replace the notification addresses; --notify "" removes them all`,
			run: runSettingsSet,
		},
		{
			name:     "approver list",
			synopsis: "TENANT",
			summary:  "list a tenant's Customer Lockbox access approvers",
			run:      runApproverList,
		},
		{
			name:     "approver add",
			synopsis: "TENANT USER",
			summary:  "give USER the Customer Lockbox access approver role (global administrators)",
			run:      runApproverChange(true),
		},
		{
			name:     "approver remove",
			synopsis: "TENANT USER",
			summary:  "take the Customer Lockbox access approver role from USER (global administrators)",
			run:      runApproverChange(false),
		},
		{
			name:     "audit search",
			synopsis: "[--tenant T] [--from TIME] [--to TIME] [--user U] [--operation OP] [--request-id ID] [--limit N] [--cursor C | --all] [-o table|json|csv]",
			summary:  "search a tenant's audit log, newest first",
			flags: auditFilterHelp + `
--limit N                at most N records a page (the server's default when 0)
--cursor C               continue where the previous page ended
--all                    follow the pages to the end of the search`,
			run: runAuditSearch,
		},
		{
			name:     "audit export",
			synopsis: "[--tenant T] [filters as for audit search] [--format csv|jsonl] [--out FILE]",
			summary:  "write every matching audit record, as JSON Lines or as the CSV of the Microsoft 365 audit export",
			flags: auditFilterHelp + `
--format F               jsonl (one record a line, the default) or csv
--out FILE               write to FILE (only once the export is complete) instead of stdout`,
			run: runAuditExport,
		},
		{
			name:     "audit verify",
			synopsis: "[--tenant T]",
			summary:  "re-compute a tenant's audit hash chain and report the first broken or missing record (exit 1 when broken)",
			flags: `--tenant T               the tenant whose log to verify; a tenant's users may leave it
                         out for their own, the provider's staff must name it`,
			run: runAuditVerify,
		},
		{
			name:     "get-accesstocustomerdatarequest",
			display:  "Get-AccessToCustomerDataRequest",
			synopsis: "[-ApprovalStatus S] [-CreatedAfter TIME] [-RequestId ID] [--tenant T] [--limit N]",
			summary:  "list requests as PowerShell's cmdlet does, or show one with -RequestId",
			flags: `-ApprovalStatus S        only requests in this status: Pending (both pending states),
                         Approved, Denied, Canceled, Expired, Revoked, Completed, or a
                         Lockbox state such as pending_customer (also --approval-status, --state)
-CreatedAfter TIME       only requests created after TIME: a date (2026-01-02) or an RFC 3339
                         time (2026-01-02T15:04:05Z) (also --created-after)
-RequestId ID            show this request and its history (also --request-id)
--tenant T               only this tenant's requests
--limit N                at most N requests (the server's default when 0)
Parameter names and values are case-insensitive, as in PowerShell: -approvalstatus pending.`,
			run: runGetAlias,
		},
		{
			name:     "set-accesstocustomerdatarequest",
			display:  "Set-AccessToCustomerDataRequest",
			synopsis: "-RequestId ID -ApprovalDecision Approve|Deny|Cancel [-Comment C]",
			summary:  "approve or deny a request (managers, tenant approvers), or cancel your own (its requester)",
			flags: `-RequestId ID            the request (also --request-id)
-ApprovalDecision D      Approve, Deny or Cancel (also --approval-decision)
-Comment C               recorded with the decision (also --comment)
Parameter names and values are case-insensitive, as in PowerShell: -approvaldecision deny.`,
			run: runSetAlias,
		},
		{
			name:     "help",
			synopsis: "[COMMAND]",
			summary:  "show help for lockboxctl or a command",
			run:      runHelp,
		},
		{
			name:    "version",
			summary: "print lockboxctl's version",
			run:     runVersion,
		},
	}
	// The tenant registry's commands come first among the tenant ones.
	at := slices.IndexFunc(commands, func(c *command) bool { return c.name == "tenant settings get" })
	commands = slices.Insert(commands, at, tenantCommands...)
	at = slices.IndexFunc(commands, func(c *command) bool { return c.name == "help" })
	commands = slices.Insert(commands, at, sessionCommands...)
	for _, c := range commands {
		commandByName[c.name] = c
		words := strings.Fields(c.name)
		for i := 1; i < len(words); i++ {
			groups[strings.Join(words[:i], " ")] = true
		}
	}
}

func isGroup(name string) bool { return groups[name] }

func statesList() string {
	s := make([]string, len(wire.States))
	for i, st := range wire.States {
		s[i] = string(st)
	}
	return strings.Join(s, ", ")
}

// approvalStatuses are the ApprovalStatus values of PowerShell's
// Get-AccessToCustomerDataRequest, each with the Lockbox states it means.
var approvalStatuses = []struct {
	name   string
	states []wire.State
}{
	{"Pending", []wire.State{wire.StatePendingManager, wire.StatePendingCustomer}},
	{"Approved", []wire.State{wire.StateApproved}},
	{"Denied", []wire.State{wire.StateDenied}},
	{"Canceled", []wire.State{wire.StateCanceled}},
	{"Expired", []wire.State{wire.StateExpired}},
	{"Revoked", []wire.State{wire.StateRevoked}},
	{"Completed", []wire.State{wire.StateCompleted}},
}

// parseStatus reads a status filter: a PowerShell ApprovalStatus
// ("Pending" is both pending states) or a Lockbox state, without regard to
// case, "_" or "-" (PendingCustomer, pending-customer), or the British
// "Cancelled". It returns the states to list.
func parseStatus(s string) ([]wire.State, bool) {
	norm := func(s string) string {
		return strings.ToLower(strings.NewReplacer("_", "", "-", "", " ", "").Replace(s))
	}
	v := norm(s)
	switch v {
	case "cancelled":
		v = "canceled"
	case "complete":
		v = "completed"
	}
	for _, st := range approvalStatuses {
		if v == norm(st.name) {
			return st.states, true
		}
	}
	for _, st := range wire.States {
		if v == norm(string(st)) {
			return []wire.State{st}, true
		}
	}
	return nil, false
}

func statusList() string {
	s := make([]string, len(approvalStatuses))
	for i, st := range approvalStatuses {
		s[i] = st.name
	}
	return strings.Join(s, ", ")
}

func actionCommand(action, summary string) *command {
	return &command{
		name:     "request " + action,
		synopsis: "ID [--comment C]",
		summary:  summary,
		flags:    "--comment C              recorded in the request's history and the audit log",
		run: func(e *env, name string, args []string) error {
			fs := e.flagSet(name)
			comment := fs.String("comment", "", "")
			pos, err := parseArgs(fs, args)
			if err != nil {
				return flagError(name, err)
			}
			if err := wantArgs(name, pos, "ID"); err != nil {
				return err
			}
			return e.act(action, pos[0], *comment)
		},
	}
}

// act takes action on request id and prints the result.
func (e *env) act(action, id, comment string) error {
	c, err := e.client()
	if err != nil {
		return err
	}
	var r wire.Request
	switch action {
	case "approve":
		r, err = c.Approve(e.ctx, id, comment)
	case "deny":
		r, err = c.Deny(e.ctx, id, comment)
	case "cancel":
		r, err = c.Cancel(e.ctx, id, comment)
	case "revoke":
		r, err = c.Revoke(e.ctx, id, comment)
	default:
		return fmt.Errorf("unknown action %q", action)
	}
	if err != nil {
		return err
	}
	return e.printRequest(r, false)
}

// printRequest prints r; detailed adds its fields and history to the table.
func (e *env) printRequest(r wire.Request, detailed bool) error {
	switch e.g.output {
	case "json":
		return writeJSON(e.stdout, r)
	case "id":
		return printIDs(e.stdout, []wire.Request{r})
	}
	if detailed {
		return printRequest(e.stdout, r)
	}
	return printRequests(e.stdout, []wire.Request{r})
}

func runRequestCreate(e *env, name string, args []string) error {
	fs := e.flagSet(name)
	tenant := fs.String("tenant", "", "")
	service := fs.String("service", "", "")
	sr := fs.String("service-request", "", "")
	reason := fs.String("reason", "", "")
	dur := fs.String("duration", "", "")
	var acts listValue
	fs.Var(&acts, "activity", "")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return flagError(name, err)
	}
	if err := wantArgs(name, pos); err != nil {
		return err
	}
	var missing []string
	for _, f := range []struct{ flag, v string }{
		{"--tenant", *tenant}, {"--service", *service}, {"--service-request", *sr},
		{"--reason", *reason}, {"--duration", *dur},
	} {
		if strings.TrimSpace(f.v) == "" {
			missing = append(missing, f.flag)
		}
	}
	if len(missing) > 0 {
		return &usageError{cmd: name, msg: "missing " + strings.Join(missing, ", ")}
	}
	d, err := time.ParseDuration(strings.TrimSpace(*dur))
	if err != nil || d <= 0 {
		return &usageError{cmd: name, msg: fmt.Sprintf("--duration %q must be a positive duration with a unit, such as 2h, 90m or 1h30m", *dur)}
	}
	c, err := e.client()
	if err != nil {
		return err
	}
	r, err := c.CreateRequest(e.ctx, wire.CreateRequest{
		Tenant: *tenant, Service: *service, ServiceRequest: *sr, Reason: *reason,
		Duration: wire.Duration(d), Activities: acts,
	})
	if err != nil {
		return err
	}
	return e.printRequest(r, false)
}

// listFlags are the filters shared by "request list" and
// Get-AccessToCustomerDataRequest.
type listFlags struct {
	tenant, state, createdAfter string
	limit                       int
}

// register adds the filters to fs; powershell adds the names of
// Get-AccessToCustomerDataRequest's parameters.
func (l *listFlags) register(fs *flag.FlagSet, powershell bool) {
	fs.StringVar(&l.tenant, "tenant", "", "")
	fs.StringVar(&l.state, "state", "", "")
	fs.StringVar(&l.createdAfter, "created-after", "", "")
	fs.IntVar(&l.limit, "limit", 0, "")
	if powershell {
		fs.StringVar(&l.state, "approval-status", "", "")
		fs.StringVar(&l.state, "ApprovalStatus", "", "")
		fs.StringVar(&l.createdAfter, "CreatedAfter", "", "")
	}
}

// options returns the list options and the states to list (none: any).
// stateFlag and afterFlag name the flags in messages, as the command's
// help spells them.
func (l *listFlags) options(cmd, stateFlag, afterFlag string) (client.ListOptions, []wire.State, error) {
	opts := client.ListOptions{Tenant: l.tenant, Limit: l.limit}
	var states []wire.State
	if l.state != "" {
		var ok bool
		if states, ok = parseStatus(l.state); !ok {
			return opts, nil, &usageError{cmd: cmd, msg: fmt.Sprintf("%s %q must be one of %s, or a state: %s",
				stateFlag, l.state, statusList(), statesList())}
		}
	}
	if l.limit < 0 {
		return opts, nil, &usageError{cmd: cmd, msg: "--limit must not be negative"}
	}
	if l.createdAfter != "" {
		t, err := parseTime(l.createdAfter)
		if err != nil {
			return opts, nil, &usageError{cmd: cmd, msg: fmt.Sprintf("%s %q must be an RFC 3339 time such as 2026-01-02T15:04:05Z, or a date such as 2026-01-02", afterFlag, l.createdAfter)}
		}
		opts.CreatedAfter = t
	}
	return opts, states, nil
}

func parseTime(s string) (time.Time, error) {
	if t, err := time.Parse(time.RFC3339, s); err == nil {
		return t, nil
	}
	return time.Parse(time.DateOnly, s)
}

func runRequestList(e *env, name string, args []string) error {
	fs := e.flagSet(name)
	var lf listFlags
	lf.register(fs, false)
	pos, err := parseArgs(fs, args)
	if err != nil {
		return flagError(name, err)
	}
	if err := wantArgs(name, pos); err != nil {
		return err
	}
	opts, states, err := lf.options(name, "--state", "--created-after")
	if err != nil {
		return err
	}
	return e.list(opts, states)
}

// list prints the requests matching opts in any of states (in any state
// when there are none).
func (e *env) list(opts client.ListOptions, states []wire.State) error {
	c, err := e.client()
	if err != nil {
		return err
	}
	reqs, err := listStates(e, c, opts, states)
	if err != nil {
		return err
	}
	switch e.g.output {
	case "json":
		return writeJSON(e.stdout, map[string]any{"requests": reqs})
	case "id":
		return printIDs(e.stdout, reqs)
	}
	return printRequests(e.stdout, reqs)
}

// listStates lists the requests in any of states. The API filters on one
// state, so several (PowerShell's "Pending" is two) take a call each; each
// answer is newest first and at most opts.Limit long, so the newest
// opts.Limit of their merge are the right ones.
func listStates(e *env, c *client.Client, opts client.ListOptions, states []wire.State) ([]wire.Request, error) {
	if len(states) <= 1 {
		if len(states) == 1 {
			opts.State = states[0]
		}
		return c.ListRequests(e.ctx, opts)
	}
	var all []wire.Request
	for _, st := range states {
		opts.State = st
		reqs, err := c.ListRequests(e.ctx, opts)
		if err != nil {
			return nil, err
		}
		all = append(all, reqs...)
	}
	slices.SortStableFunc(all, func(a, b wire.Request) int {
		if c := b.CreatedAt.Compare(a.CreatedAt); c != 0 {
			return c
		}
		return strings.Compare(b.ID, a.ID)
	})
	if opts.Limit > 0 && len(all) > opts.Limit {
		all = all[:opts.Limit]
	}
	return all, nil
}

func runRequestShow(e *env, name string, args []string) error {
	fs := e.flagSet(name)
	pos, err := parseArgs(fs, args)
	if err != nil {
		return flagError(name, err)
	}
	if err := wantArgs(name, pos, "ID"); err != nil {
		return err
	}
	return e.show(pos[0])
}

func (e *env) show(id string) error {
	c, err := e.client()
	if err != nil {
		return err
	}
	r, err := c.GetRequest(e.ctx, id)
	if err != nil {
		return err
	}
	return e.printRequest(r, true)
}

func runSettingsGet(e *env, name string, args []string) error {
	fs := e.flagSet(name)
	pos, err := parseArgs(fs, args)
	if err != nil {
		return flagError(name, err)
	}
	if err := wantArgs(name, pos, "TENANT"); err != nil {
		return err
	}
	c, err := e.client()
	if err != nil {
		return err
	}
	s, err := c.Settings(e.ctx, pos[0])
	if err != nil {
		return err
	}
	return e.printSettings(pos[0], s)
}

func (e *env) printSettings(tenant string, s wire.Settings) error {
	if s.NotificationAddresses == nil {
		s.NotificationAddresses = []string{}
	}
	if e.g.output.json() {
		return writeJSON(e.stdout, s)
	}
	return printSettings(e.stdout, tenant, s)
}

func runSettingsSet(e *env, name string, args []string) error {
	fs := e.flagSet(name)
	lockbox := fs.String("lockbox", "", "")
	var notify listValue
	fs.Var(&notify, "notify", "")
	pos, err := parseArgs(fs, args)
	if err != nil {
		return flagError(name, err)
	}
	if err := wantArgs(name, pos, "TENANT"); err != nil {
		return err
	}
	setLockbox, setNotify := given(fs, "lockbox"), given(fs, "notify")
	if !setLockbox && !setNotify {
		return &usageError{cmd: name, msg: "nothing to change: give --lockbox or --notify"}
	}
	var enabled bool
	if setLockbox {
		if enabled, err = parseOnOff(*lockbox); err != nil {
			return &usageError{cmd: name, msg: err.Error()}
		}
	}
	c, err := e.client()
	if err != nil {
		return err
	}
	// The API replaces the settings as a whole, so read them first and
	// change only what was asked. Two administrators changing different
	// settings at the same moment can still overwrite each other: the API
	// offers no version to compare against.
	s, err := c.Settings(e.ctx, pos[0])
	if err != nil {
		return err
	}
	if setLockbox {
		s.LockboxEnabled = enabled
	}
	if setNotify {
		s.NotificationAddresses = slices.Clone([]string(notify))
	}
	s, err = c.PutSettings(e.ctx, pos[0], s)
	if err != nil {
		return err
	}
	return e.printSettings(pos[0], s)
}

func runApproverList(e *env, name string, args []string) error {
	fs := e.flagSet(name)
	pos, err := parseArgs(fs, args)
	if err != nil {
		return flagError(name, err)
	}
	if err := wantArgs(name, pos, "TENANT"); err != nil {
		return err
	}
	c, err := e.client()
	if err != nil {
		return err
	}
	users, err := c.Approvers(e.ctx, pos[0])
	if err != nil {
		return err
	}
	if e.g.output.json() {
		return writeJSON(e.stdout, map[string]any{"approvers": users})
	}
	return printApprovers(e.stdout, users)
}

func runApproverChange(add bool) func(*env, string, []string) error {
	return func(e *env, name string, args []string) error {
		fs := e.flagSet(name)
		pos, err := parseArgs(fs, args)
		if err != nil {
			return flagError(name, err)
		}
		if err := wantArgs(name, pos, "TENANT", "USER"); err != nil {
			return err
		}
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
		if err != nil {
			return err
		}
		// The API answers 204 with no body: JSON output stays empty, and
		// the exit code says it worked.
		if !e.g.output.json() {
			if add {
				fmt.Fprintf(e.stdout, "%s is an approver of tenant %s.\n", clean(user), clean(tenant))
			} else {
				fmt.Fprintf(e.stdout, "%s is not an approver of tenant %s.\n", clean(user), clean(tenant))
			}
		}
		return nil
	}
}

// runGetAlias is Get-AccessToCustomerDataRequest: a list, or one request
// when a request id is given. It takes the cmdlet's parameters
// (-ApprovalStatus, -CreatedAfter, -RequestId) in any case, besides the
// kebab-case flags.
func runGetAlias(e *env, name string, args []string) error {
	fs := e.flagSet(name)
	var lf listFlags
	lf.register(fs, true)
	var id string
	fs.StringVar(&id, "request-id", "", "")
	fs.StringVar(&id, "RequestId", "", "")
	pos, err := parseArgs(fs, foldFlagNames(fs, args))
	if err != nil {
		return flagError(name, err)
	}
	if err := wantArgs(name, pos); err != nil {
		return err
	}
	if given(fs, "request-id", "RequestId") {
		if strings.TrimSpace(id) == "" {
			return &usageError{cmd: name, msg: "-RequestId must not be empty"}
		}
		if lf != (listFlags{}) {
			return &usageError{cmd: name, msg: "-RequestId shows one request: it can't be combined with -ApprovalStatus, -CreatedAfter, --tenant or --limit"}
		}
		return e.show(id)
	}
	opts, states, err := lf.options(name, "-ApprovalStatus", "-CreatedAfter")
	if err != nil {
		return err
	}
	return e.list(opts, states)
}

// runSetAlias is Set-AccessToCustomerDataRequest: the decision named as in
// the audit record's ApprovalDecision, Approve or Deny, or Cancel, the
// requester's withdrawal. It takes the cmdlet's parameters (-RequestId,
// -ApprovalDecision, -Comment) in any case, besides the kebab-case flags.
func runSetAlias(e *env, name string, args []string) error {
	fs := e.flagSet(name)
	var id, decision, comment string
	fs.StringVar(&id, "request-id", "", "")
	fs.StringVar(&id, "RequestId", "", "")
	fs.StringVar(&decision, "approval-decision", "", "")
	fs.StringVar(&decision, "ApprovalDecision", "", "")
	fs.StringVar(&comment, "comment", "", "")
	pos, err := parseArgs(fs, foldFlagNames(fs, args))
	if err != nil {
		return flagError(name, err)
	}
	if err := wantArgs(name, pos); err != nil {
		return err
	}
	if strings.TrimSpace(id) == "" {
		return &usageError{cmd: name, msg: "missing -RequestId"}
	}
	var action string
	switch strings.ToLower(strings.TrimSpace(decision)) {
	case "approve":
		action = "approve"
	case "deny":
		action = "deny"
	case "cancel":
		action = "cancel"
	case "":
		return &usageError{cmd: name, msg: "missing -ApprovalDecision (Approve, Deny or Cancel)"}
	default:
		return &usageError{cmd: name, msg: fmt.Sprintf("-ApprovalDecision %q must be Approve, Deny or Cancel", decision)}
	}
	return e.act(action, id, comment)
}

func runHelp(e *env, name string, args []string) error {
	fs := e.flagSet(name)
	pos, err := parseArgs(fs, args)
	if err != nil {
		return flagError(name, err)
	}
	topic := strings.ToLower(strings.Join(pos, " "))
	if _, ok := commandByName[topic]; topic != "" && !ok && !isGroup(topic) {
		msg := fmt.Sprintf("no help for unknown command %q", strings.Join(pos, " "))
		group, word := "", topic
		if i := strings.LastIndexByte(topic, ' '); i >= 0 {
			group, word = topic[:i], topic[i+1:]
		}
		if s := suggest(group, word); s != "" && (group == "" || isGroup(group)) {
			msg += fmt.Sprintf("; did you mean %q?", s)
		}
		return &usageError{msg: msg}
	}
	return &helpRequested{cmd: topic}
}

func runVersion(e *env, name string, args []string) error {
	fs := e.flagSet(name)
	pos, err := parseArgs(fs, args)
	if err != nil {
		return flagError(name, err)
	}
	if err := wantArgs(name, pos); err != nil {
		return err
	}
	if e.g.output.json() {
		return writeJSON(e.stdout, map[string]string{"version": version(), "go": goVersion()})
	}
	_, err = fmt.Fprintf(e.stdout, "lockboxctl %s (%s)\n", version(), goVersion())
	return err
}

// usageOf returns the usage of a command, a group of commands ("request",
// "tenant settings") or, for "", of lockboxctl.
func usageOf(name string) string {
	var b strings.Builder
	if c, ok := commandByName[name]; ok {
		fmt.Fprintf(&b, "Usage:\n  lockboxctl %s", c.title())
		if c.synopsis != "" {
			fmt.Fprintf(&b, " %s", c.synopsis)
		}
		fmt.Fprintf(&b, "\n\n%s.\n", capitalize(c.summary))
		if c.flags != "" {
			b.WriteString("\nFlags:\n")
			for l := range strings.Lines(c.flags) {
				b.WriteString("  " + l)
			}
			b.WriteString("\n")
		}
		b.WriteString("\n" + globalUsage)
		return b.String()
	}
	if name == "" {
		b.WriteString("lockboxctl is the command line of Lockbox: requests for access to a tenant's data,\n" +
			"their approval by a support manager and the tenant's approvers, and the audit log.\n\n" +
			"Usage:\n  lockboxctl [global flags] COMMAND [flags] [arguments]\n\nCommands:\n")
	} else {
		fmt.Fprintf(&b, "Usage:\n  lockboxctl %s COMMAND [flags] [arguments]\n\nCommands:\n", name)
	}
	tw := newTable(&b)
	for _, c := range commands {
		if name == "" || strings.HasPrefix(c.name, name+" ") {
			row(tw, "  "+c.title(), c.summary)
		}
	}
	_ = tw.Flush()
	b.WriteString("\n" + globalUsage)
	if name == "" {
		b.WriteString("\nRun \"lockboxctl help COMMAND\" for a command's flags.\n" +
			"Exit status: 0 on success, 1 when the call failed, 2 for a usage error.\n")
	}
	return b.String()
}

const globalUsage = `Global flags (before or after the command):
  -o, --output FORMAT      table (the default) or json; id prints only the ids of the requests
                           a request command returns, one a line; csv for audit search and
                           request activity
  --addr URL               Lockbox API address, a URL or host:port (http) (default
                           $LOCKBOX_ADDR, else ` + DefaultAddr + `)
  --token-file FILE        file holding your bearer token (default $LOCKBOX_TOKEN, else the
                           token lockboxctl login stored for this server)
  -h, --help               show help

An https API with a private CA: $LOCKBOX_CA_FILE (PEM CA certificates). One that requires
client certificates: $LOCKBOX_CLIENT_CERT_FILE and $LOCKBOX_CLIENT_KEY_FILE (PEM).
`

func capitalize(s string) string {
	if s == "" {
		return s
	}
	return strings.ToUpper(s[:1]) + s[1:]
}
