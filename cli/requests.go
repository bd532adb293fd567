package cli

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/http"
	"reflect"
	"slices"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/lockbox-oss/lockbox/api/client"
	"github.com/lockbox-oss/lockbox/api/wire"
)

// actions are what a user does to a request, each a top-level verb
// ("lockboxctl approve ID") and a command of the earlier "request" group.
// keep says which requests completion offers for it.
var actions = []struct {
	name, summary string
	keep          func(wire.Request) bool
}{
	{"approve", "approve a request, as support manager or as tenant approver", pendingRequest},
	{"deny", "deny a request, as support manager or as tenant approver", pendingRequest},
	{"cancel", "withdraw your own pending request", pendingRequest},
	{"revoke", "end an approved request's access before its window ends", func(r wire.Request) bool { return r.State == wire.StateApproved }},
}

func pendingRequest(r wire.Request) bool { return r.State.Pending() }

// services completes --service.
var services = []string{"exchange", "sharepoint", "onedrive"}

func (e *env) getCommand() *cobra.Command {
	return e.groupOf("get", "list requests, tenants, approvers or settings, or show one", groupRequests,
		e.getRequests(), e.activityCommand("activity ID"),
		e.tenantListCommand("tenants [ID]", []string{"tenant"}, true),
		e.approverListCommand("approvers TENANT", []string{"approver"}),
		e.settingsGetCommand("settings TENANT", []string{"setting"}))
}

func (e *env) describeCommand() *cobra.Command {
	return e.groupOf("describe", "show a request with its history, or a tenant with its settings", groupRequests,
		e.showRequest("request ID", []string{"requests", "req"}), e.describeTenant())
}

func (e *env) createCommand() *cobra.Command {
	return e.groupOf("create", "file a request, or onboard a tenant", groupRequests,
		e.createRequest("request", []string{"req"}), e.onboardCommand("tenant ID", nil))
}

// requestCommand is the "request" group of earlier releases.
func (e *env) requestCommand() *cobra.Command {
	req := e.groupOf("request", "create, list, show, approve, deny, cancel or revoke requests (the earlier form of get, describe, approve...)", groupCompat,
		e.createRequest("create", nil), e.listRequests("list"), e.showRequest("show ID", nil), e.activityCommand("activity ID"))
	for _, a := range actions {
		req.AddCommand(e.actionCommand(a, ""))
	}
	return req
}

func (e *env) actionCommand(a struct {
	name, summary string
	keep          func(wire.Request) bool
}, group string) *cobra.Command {
	var comment string
	cmd := &cobra.Command{
		Use:               a.name + " ID",
		Short:             a.summary,
		GroupID:           group,
		Args:              args("ID"),
		Annotations:       withOutputs("id"),
		ValidArgsFunction: e.completeRequests(a.keep),
		RunE:              func(_ *cobra.Command, pos []string) error { return e.act(a.name, pos[0], comment) },
	}
	cmd.Flags().StringVar(&comment, "comment", "", "recorded in the request's history and the audit log")
	limitChars(cmd.Flags(), "comment", maxCommentChars)
	return cmd
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
	return e.emit(r, requestIDs(r), func(w io.Writer) error {
		if detailed {
			return printRequest(w, r)
		}
		return printRequests(w, []wire.Request{r})
	})
}

func (e *env) createRequest(use string, aliases []string) *cobra.Command {
	var (
		tenant, service, sr, reason, dur, key string
		acts                                  listValue
	)
	cmd := &cobra.Command{
		Use:         use + " --tenant T --service S --service-request SR --reason R --duration D [--activity A]... [--idempotency-key K]",
		Aliases:     aliases,
		Short:       "file a lockbox request for access to a tenant's data (support engineers)",
		Args:        args(),
		Annotations: withOutputs("id"),
		RunE: func(cmd *cobra.Command, _ []string) error {
			var missing []string
			for _, f := range []struct{ flag, v string }{
				{"--tenant", tenant}, {"--service", service}, {"--service-request", sr},
				{"--reason", reason}, {"--duration", dur},
			} {
				if strings.TrimSpace(f.v) == "" {
					missing = append(missing, f.flag)
				}
			}
			if len(missing) > 0 {
				return e.usage("missing %s", strings.Join(missing, ", "))
			}
			d, err := time.ParseDuration(strings.TrimSpace(dur))
			if err != nil || d <= 0 {
				return e.usage("--duration %q must be a positive duration with a unit, such as 2h, 90m or 1h30m", dur)
			}
			// The API refuses these too; said here, the flag is named and nothing is sent.
			if d > maxDuration {
				return e.usage("--duration %q is more than %s, the longest a request may ask for", dur, wire.Duration(maxDuration))
			}
			if d < minDuration {
				return e.usage("--duration %q is less than %s, the shortest a request may ask for", dur, wire.Duration(minDuration))
			}
			switch {
			case cmd.Flags().Changed("idempotency-key") && strings.TrimSpace(key) == "":
				// "--idempotency-key $KEY" with KEY unset: a key of its
				// own made here would file a second request on the retry
				// the key was given for.
				return e.usage("--idempotency-key is empty: give the key the first sending used, or leave the flag out")
			case key == "":
				key = rand.Text()
			}
			if msg := badIdempotencyKey(key); msg != "" {
				return e.usage("%s", msg)
			}
			c, err := e.client()
			if err != nil {
				return err
			}
			in := wire.CreateRequest{
				Tenant: tenant, Service: service, ServiceRequest: sr, Reason: reason,
				Duration: wire.Duration(d), Activities: acts,
			}
			r, err := c.CreateRequestOnce(e.ctx, in, key)
			if answerLost(err) && !lostByTimeout(err) {
				// Cut off after it was sent, it may have been filed: sent
				// again with its key it is filed at most once. Not after a
				// timeout, which an overloaded server would get again.
				r, err = c.CreateRequestOnce(e.ctx, in, key)
			}
			if answerLost(err) {
				e.afterError = fmt.Sprintf("the request may have been filed: run the same command with --idempotency-key %s to get it without filing it twice", key)
			}
			if err != nil {
				return err
			}
			return e.printRequest(r, false)
		},
	}
	f := cmd.Flags()
	f.StringVar(&tenant, "tenant", "", "tenant whose data you need")
	f.StringVar(&service, "service", "", "exchange, sharepoint or onedrive")
	f.StringVar(&sr, "service-request", "", "the support case number")
	f.StringVar(&reason, "reason", "", "why you need access")
	f.StringVar(&dur, "duration", "", "how long, e.g. 2h or 90m (at least 1m, at most 4h)")
	f.Var(&acts, "activity", "an activity you need, e.g. Get-Mailbox; repeat or separate with commas; none means the service's pre-approved read activities")
	f.StringVar(&key, "idempotency-key", "", "the Idempotency-Key to send (a new random one by default): a failed run's key gets the request that run filed, if it did, instead of filing another (within 24h, with the same flags)")
	limitChars(f, "service-request", maxServiceRequestChars)
	limitChars(f, "reason", maxReasonChars)
	_ = f.SetAnnotation("tenant", requiredAnnotation, nil)
	_ = cmd.RegisterFlagCompletionFunc("tenant", e.completeTenants)
	_ = cmd.RegisterFlagCompletionFunc("service", cobra.FixedCompletions(services, cobra.ShellCompDirectiveNoFileComp))
	return cmd
}

// listFlags are the filters of the request lists, and how far to read.
type listFlags struct {
	tenant, state, createdAfter string
	limit                       int
	cursor                      string
	all                         bool
}

func (e *env) registerListFlags(cmd *cobra.Command, l *listFlags) {
	f := cmd.Flags()
	f.StringVar(&l.tenant, "tenant", "", "only this tenant's requests")
	f.StringVar(&l.state, "state", "", "only requests in this state: "+statesList()+"; pending means both pending states (PowerShell's statuses work too)")
	f.StringVar(&l.createdAfter, "created-after", "", "only requests created after TIME (RFC 3339, e.g. 2026-01-02T15:04:05Z, or a date)")
	f.IntVar(&l.limit, "limit", 0, "at most N requests a page (the server's default when 0)")
	f.StringVar(&l.cursor, "cursor", "", "go on to the older or the newer requests, with the cursor a page's hint named for them (the same filters; --limit may change)")
	f.BoolVar(&l.all, "all", false, "follow the pages to the end of the listing")
	_ = cmd.RegisterFlagCompletionFunc("tenant", e.completeTenants)
	states := []string{"pending"}
	for _, st := range wire.States {
		states = append(states, string(st))
	}
	_ = cmd.RegisterFlagCompletionFunc("state", cobra.FixedCompletions(states, cobra.ShellCompDirectiveNoFileComp))
}

func (e *env) listRequests(use string) *cobra.Command {
	var lf listFlags
	cmd := &cobra.Command{
		Use:         use,
		Short:       "list the requests you may see, newest first",
		Long:        "List the requests you may see, newest first.\n\n" + requestHintsHelp + "\n\n" + unreadableRequestsHelp,
		Args:        args(),
		Annotations: withOutputs("id"),
		RunE: func(*cobra.Command, []string) error {
			opts, states, err := e.listOptions(lf, "--state", "--created-after")
			if err != nil {
				return err
			}
			return e.list(opts, states, lf.all)
		},
	}
	e.registerListFlags(cmd, &lf)
	return cmd
}

// requestHintsHelp tells, in the listings' help, which hint names which
// cursor.
const requestHintsHelp = `A page that more requests follow says on stderr "More requests: add --cursor C (or use
--all)." and one after the first "Newer requests: add --cursor P." for the requests just newer
than it. A page reached with such a P holds the requests just newer than the page it came
from: there "Newer requests" names the cursor on to the requests newer still, and "Older
requests: add --cursor C (or use --all)." the one back down to the page it came from.`

// unreadableRequestsHelp tells, in the listings' help, how a listing names
// a request it can't read.
const unreadableRequestsHelp = `A request whose stored record can't be read is left out of the rows and named on
stderr. With -o json or -o yaml the document also names it, as the API's page does:
"unreadable": [{"id": "...", "tenant": "...", "error": "cannot be read"}], absent when
there is none, so a script can tell the listing is incomplete.`

// getRequests is "get requests [ID]": a list, or one request as a row.
func (e *env) getRequests() *cobra.Command {
	var lf listFlags
	cmd := &cobra.Command{
		Use:     "requests [ID]",
		Aliases: []string{"request", "req"},
		Short:   "list the requests you may see, newest first, or show one",
		Long:    "List the requests you may see, newest first, or show one.\n\n" + requestHintsHelp + "\n\n" + unreadableRequestsHelp,
		Args: func(cmd *cobra.Command, pos []string) error {
			switch {
			case len(pos) > 1:
				return &usageError{cmd: cmd, msg: fmt.Sprintf("unexpected argument %q", pos[1])}
			case len(pos) == 1:
				if err := checkName("ID", pos[0]); err != nil {
					return &usageError{cmd: cmd, msg: err.Error()}
				}
			}
			return nil
		},
		Annotations:       withOutputs("id"),
		ValidArgsFunction: e.completeRequests(nil),
		RunE: func(cmd *cobra.Command, pos []string) error {
			if len(pos) == 1 {
				if anyChanged(cmd.Flags(), "tenant", "state", "created-after", "limit", "cursor", "all") {
					return e.usage("an ID shows one request: it can't be combined with --tenant, --state, --created-after, --limit, --cursor or --all")
				}
				return e.show(pos[0], false)
			}
			opts, states, err := e.listOptions(lf, "--state", "--created-after")
			if err != nil {
				return err
			}
			return e.list(opts, states, lf.all)
		},
	}
	e.registerListFlags(cmd, &lf)
	return cmd
}

func anyChanged(fs *pflag.FlagSet, names ...string) bool {
	return slices.ContainsFunc(names, fs.Changed)
}

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

// listOptions returns the list options and the states to list (none: any).
// stateFlag and afterFlag name the flags in messages, as the command's
// help spells them.
func (e *env) listOptions(l listFlags, stateFlag, afterFlag string) (client.ListOptions, []wire.State, error) {
	opts := client.ListOptions{Tenant: l.tenant, Limit: l.limit, Cursor: l.cursor}
	var states []wire.State
	if l.state != "" {
		var ok bool
		if states, ok = parseStatus(l.state); !ok {
			return opts, nil, e.usage("%s %q must be one of %s, or a state: %s", stateFlag, l.state, statusList(), statesList())
		}
	}
	if l.cursor != "" && len(states) > 1 {
		// A cursor continues the listing of one state; this status is
		// several listings, merged.
		return opts, nil, e.usage("--cursor continues a listing of one state, and %s %s lists %d: use --all, or one state", stateFlag, l.state, len(states))
	}
	if l.limit < 0 {
		return opts, nil, e.usage("--limit must not be negative")
	}
	if l.createdAfter != "" {
		t, err := parseTime(l.createdAfter)
		if err != nil {
			return opts, nil, e.usage("%s %q must be an RFC 3339 time such as 2026-01-02T15:04:05Z, or a date such as 2026-01-02", afterFlag, l.createdAfter)
		}
		opts.CreatedAfter = t
	}
	return opts, states, nil
}

// list prints the requests matching opts in any of states (in any state
// when there are none): a page, or with all every page, printed as they
// come. A page that was cut gets a hint on stderr (unless the JSON or YAML
// carries its next_cursor).
func (e *env) list(opts client.ListOptions, states []wire.State, all bool) error {
	c, err := e.client()
	if err != nil {
		return err
	}
	out := e.requestWriter()
	pg, cut, err := e.listStates(c, opts, states, all, out)
	if err != nil {
		return err
	}
	if err := out.close(pg); err != nil {
		return err
	}
	if cut && pg.next == "" {
		fmt.Fprintln(e.stderr, "More requests: use --all.")
	}
	if !e.g.output.structured() {
		e.tellCursors(pg, newerRequestsCursor(opts.Cursor), "requests")
	}
	return nil
}

// newerRequestsCursor reports whether c, a cursor of the API's request
// list, is a page's prev_cursor, which leads to the requests newer than
// its place rather than older. The API's page does not say which way its
// cursor went, and its cursors are opaque to scripts; lockboxctl, released
// with the API, reads how grants/cursor.go writes them, as newerCursor
// does the audit search's: base64url text starting "n1:"
// (newerCursorVersion). A cursor it can't read is taken as a next cursor,
// as every cursor was before prev cursors.
func newerRequestsCursor(c string) bool {
	b, err := base64.RawURLEncoding.DecodeString(c)
	return err == nil && strings.HasPrefix(string(b), "n1:")
}

// pageCursors are the cursors of what a listing printed: next continues
// after its last page, prev goes back to the page before its first (the
// newer requests or records); either empty when there is none or it can't
// be given.
type pageCursors struct{ next, prev string }

// listStates writes the requests in any of states to out and returns the
// cursors of the next page and of the page before the first read (for one
// state), and whether the listing was cut.
// With all it reads every page. The API filters on one state, so several
// (PowerShell's "Pending" is two) are a listing each, merged newest first:
// a page each, of which those up to the last of any page that was cut, and
// at most opts.Limit, are the right ones, or with all every page of each,
// merged as they come.
func (e *env) listStates(c *client.Client, opts client.ListOptions, states []wire.State, all bool, out requestWriter) (pageCursors, bool, error) {
	if len(states) <= 1 {
		if len(states) == 1 {
			opts.State = states[0]
		}
		sent := cursors{opts.Cursor: true}
		var pg pageCursors
		for first := true; ; first = false {
			p, err := c.ListRequestsPage(e.ctx, opts)
			if err != nil {
				return pageCursors{}, false, err
			}
			e.tellUnreadable(p.Unreadable)
			if first {
				pg.prev = p.PrevCursor
			}
			if err := out.write(p.Requests); err != nil {
				return pageCursors{}, false, err
			}
			if !all || p.NextCursor == "" {
				pg.next = p.NextCursor
				return pg, p.NextCursor != "", nil
			}
			if err := sent.follow(p.NextCursor); err != nil {
				return pageCursors{}, false, err
			}
			opts.Cursor = p.NextCursor
		}
	}
	if all {
		ps := make([]*pager, len(states))
		for i, st := range states {
			o := opts
			o.State = st
			ps[i] = &pager{c: c, opts: o, sent: cursors{o.Cursor: true}}
		}
		return pageCursors{}, false, mergeAll(e, ps, out)
	}
	merged, cut, read := []wire.Request{}, false, map[string]bool{}
	// bound is the newest last request of the listings that were cut:
	// a request of theirs not read yet may come anywhere after it, so
	// none after it is known to be the next one. Without a limit each
	// page is the server's default, and the pages of the other states
	// went on past it.
	var bound *wire.Request
	for _, st := range states {
		opts.State = st
		p, err := c.ListRequestsPage(e.ctx, opts)
		if err != nil {
			return pageCursors{}, false, err
		}
		e.tellUnreadable(p.Unreadable)
		// A request that changed state between two of the reads is in
		// both: it is shown once, as the first read had it.
		for _, r := range p.Requests {
			if !read[r.ID] {
				read[r.ID] = true
				merged = append(merged, r)
			}
		}
		if p.NextCursor == "" {
			continue
		}
		cut = true
		if len(p.Requests) == 0 {
			// A cut page without a request says nothing of where the
			// rest comes: none of the others is known to come first.
			return pageCursors{}, true, out.write(nil)
		}
		if last := p.Requests[len(p.Requests)-1]; bound == nil || newestFirst(last, *bound) < 0 {
			bound = &last
		}
	}
	slices.SortStableFunc(merged, newestFirst)
	if bound != nil {
		n := 0
		for n < len(merged) && newestFirst(merged[n], *bound) <= 0 {
			n++
		}
		merged = merged[:n]
	}
	if opts.Limit > 0 && len(merged) > opts.Limit {
		merged, cut = merged[:opts.Limit], true
	}
	return pageCursors{}, cut, out.write(merged)
}

func (e *env) showRequest(use string, aliases []string) *cobra.Command {
	return &cobra.Command{
		Use:               use,
		Aliases:           aliases,
		Short:             "show a request with its history",
		Args:              args("ID"),
		Annotations:       withOutputs("id"),
		ValidArgsFunction: e.completeRequests(nil),
		RunE:              func(_ *cobra.Command, pos []string) error { return e.show(pos[0], true) },
	}
}

func (e *env) show(id string, detailed bool) error {
	c, err := e.client()
	if err != nil {
		return err
	}
	r, err := c.GetRequest(e.ctx, id)
	if err != nil {
		return err
	}
	return e.printRequest(r, detailed)
}

func (e *env) activityCommand(use string) *cobra.Command {
	return &cobra.Command{
		Use:   use,
		Short: "list every audit record of a request, oldest first: its decisions and each operator action",
		Long: `List every audit record of a request, oldest first: its decisions and each operator action.

An audit record of the tenant's log that can't be read, appended within the request's span,
may be one of the request's: it is named on stderr. With -o json or -o yaml the document also
names it, as the API's answer does:
"unreadable": [{"stream_id": "...", "tenant": "...", "error": "cannot be read"}], absent
when there is none, so a script can tell the list may be incomplete.`,
		Args:              args("ID"),
		Annotations:       withOutputs("csv"),
		ValidArgsFunction: e.completeRequests(nil),
		RunE: func(_ *cobra.Command, pos []string) error {
			c, err := e.client()
			if err != nil {
				return err
			}
			list, err := c.RequestActivity(e.ctx, pos[0])
			if err != nil {
				return err
			}
			e.tellUnreadableRecords(list.Unreadable)
			return e.printRecords(wire.RecordList{Records: list.Records, Unreadable: e.unreadableRecords}, list.Records)
		},
	}
}

// The PowerShell verbs of Microsoft 365's Customer Lockbox.

func (e *env) powershellCommands() []*cobra.Command {
	return []*cobra.Command{
		{
			Use:     "Get-AccessToCustomerDataRequest [-ApprovalStatus S] [-CreatedAfter TIME] [-RequestId ID] [--tenant T] [--limit N] [--cursor C] [-All]",
			Short:   "list requests as PowerShell's cmdlet does, or show one with -RequestId",
			GroupID: groupCompat,
			Long: `List requests as PowerShell's Get-AccessToCustomerDataRequest does, or show one.

  -ApprovalStatus S        only requests in this status: Pending (both pending states),
                           Approved, Denied, Canceled, Expired, Revoked, Completed, or a
                           Lockbox state such as pending_customer (also --approval-status, --state)
  -CreatedAfter TIME       only requests created after TIME: a date (2026-01-02) or an RFC 3339
                           time (2026-01-02T15:04:05Z, or as Microsoft writes it in UTC,
                           "2026-01-02 15:04:05z") (also --created-after)
  -RequestId ID            show this request and its history (also --request-id); with
                           -ApprovalStatus or -CreatedAfter, only if it passes them; one id,
                           not a list
  --tenant T               only this tenant's requests
  --limit N                at most N requests a page (the server's default when 0)
  --cursor C               go on to the older or the newer requests, with the cursor a page's
                           "More", "Older" or "Newer requests" hint named (with the same
                           filters); not with -ApprovalStatus Pending, which lists two states
  -All                     follow the pages to the end of the listing (also --all); with
                           --cursor, from the cursor on

Parameter names and values are case-insensitive, as in PowerShell: -approvalstatus pending.`,
			DisableFlagParsing: true,
			Annotations:        withOutputs("id"),
			ValidArgsFunction: e.completePowerShell([]psParam{
				{name: "ApprovalStatus", aliases: []string{"approval-status", "state"}, values: completeApprovalStatus},
				{name: "CreatedAfter", aliases: []string{"created-after"}},
				{name: "RequestId", aliases: []string{"request-id"}, values: e.completeRequests(nil)},
				{name: "tenant", values: e.completeTenants},
				{name: "limit"},
				{name: "cursor"},
				{name: "All", aliases: []string{"all"}, isSwitch: true},
			}),
			RunE: e.runGetAlias,
		},
		{
			Use:     "Set-AccessToCustomerDataRequest -RequestId ID -ApprovalDecision Approve|Deny|Cancel [-Comment C] [-ServiceName S]",
			Short:   "approve or deny a request (managers, tenant approvers), or cancel your own (its requester)",
			GroupID: groupCompat,
			Long: `Approve or deny a request (managers, tenant approvers), or cancel your own (its requester),
as PowerShell's Set-AccessToCustomerDataRequest does.

  -RequestId ID            the request, one id, not a list (also --request-id)
  -ApprovalDecision D      Approve, Deny or Cancel (also --approval-decision)
  -Comment C               recorded with the decision (also --comment)
  -ServiceName S           decide only if the request is for this service: Microsoft 365's
                           Exchange (or EOP, EXO), SharePoint (SharePoint and OneDrive
                           requests), Teams, or a Lockbox service name; another service's
                           request is refused, exit 3, undecided (also --service-name)

Parameter names and values are case-insensitive, as in PowerShell: -approvaldecision deny.`,
			DisableFlagParsing: true,
			Annotations:        withOutputs("id"),
			ValidArgsFunction: e.completePowerShell([]psParam{
				{name: "RequestId", aliases: []string{"request-id"}, values: e.completeRequests(pendingRequest)},
				{name: "ApprovalDecision", aliases: []string{"approval-decision"}, values: completeFixed("Approve", "Deny", "Cancel")},
				{name: "Comment", aliases: []string{"comment"}},
				{name: "ServiceName", aliases: []string{"service-name"}, values: completeFixed(psServiceNames...)},
			}),
			RunE: e.runSetAlias,
		},
		e.searchUnifiedAuditLogCommand(),
	}
}

// psParam is a parameter of a PowerShell verb, for shell completion: its
// PowerShell name, the other spellings it takes, and the candidates for its
// value (none when nil: a value typed freely, or a switch).
type psParam struct {
	name     string
	aliases  []string
	values   cobra.CompletionFunc
	isSwitch bool
}

// completePowerShell completes a PowerShell verb's command line, which
// cobra leaves unparsed (DisableFlagParsing): after a parameter that takes
// a value, that value's candidates; for a word starting with "-", the
// parameters not given yet. Never file names: no parameter takes one.
// Values are asked of the API with the token and server the command line
// names, as for every other command.
func (e *env) completePowerShell(params []psParam) cobra.CompletionFunc {
	// lookup finds the parameter arg names, when arg is a parameter
	// whose value is the next word (not -Name:value or -Name=value).
	lookup := func(arg string) (psParam, bool) {
		name, ok := strings.CutPrefix(arg, "-")
		if !ok || strings.ContainsAny(name, ":=") {
			return psParam{}, false
		}
		name = strings.TrimPrefix(name, "-")
		for _, p := range params {
			for _, n := range append([]string{p.name}, p.aliases...) {
				if strings.EqualFold(n, name) {
					return p, true
				}
			}
		}
		return psParam{}, false
	}
	return func(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		fs := e.psFlagSet(cmd.Name())
		for _, p := range params {
			for _, n := range append([]string{p.name}, p.aliases...) {
				if p.isSwitch {
					fs.Bool(n, false, "")
				} else {
					fs.String(n, "", "")
				}
			}
		}
		_, _ = parseArgs(fs, foldFlagNames(fs, args)) // for --addr and --token-file only
		given := map[string]bool{}
		for _, arg := range args {
			if i := strings.IndexAny(arg, ":="); i >= 0 {
				arg = arg[:i] // -Name:value
			}
			if p, ok := lookup(arg); ok {
				given[p.name] = true
			}
		}
		if len(args) > 0 {
			if p, ok := lookup(args[len(args)-1]); ok && !p.isSwitch {
				if p.values == nil {
					return nil, cobra.ShellCompDirectiveNoFileComp
				}
				return p.values(cmd, nil, toComplete)
			}
		}
		var out []cobra.Completion
		if strings.HasPrefix(toComplete, "-") {
			for _, p := range params {
				if !given[p.name] && hasPrefixFold("-"+p.name, toComplete) {
					out = append(out, "-"+p.name)
				}
			}
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	}
}

// completeApprovalStatus completes -ApprovalStatus with PowerShell's
// statuses.
func completeApprovalStatus(cmd *cobra.Command, args []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
	var names []string
	for _, st := range approvalStatuses {
		names = append(names, st.name)
	}
	return completeFixed(names...)(cmd, args, toComplete)
}

// completeFixed completes a value from choices, matching what was typed
// without regard to case, as the PowerShell verbs read their values.
func completeFixed(choices ...string) cobra.CompletionFunc {
	return func(_ *cobra.Command, _ []string, toComplete string) ([]cobra.Completion, cobra.ShellCompDirective) {
		var out []cobra.Completion
		for _, c := range choices {
			if hasPrefixFold(c, toComplete) {
				out = append(out, c)
			}
		}
		return out, cobra.ShellCompDirectiveNoFileComp
	}
}

// hasPrefixFold is strings.HasPrefix without regard to ASCII case.
func hasPrefixFold(s, prefix string) bool {
	return len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix)
}

// psParse parses a PowerShell verb's command line with fs; -h shows its
// help (errHelpShown).
func (e *env) psParse(cmd *cobra.Command, fs *flag.FlagSet, argv []string) error {
	args := foldFlagNames(fs, argv)
	if name, ok := repeatedParam(fs, args); ok {
		return &usageError{cmd: cmd, msg: fmt.Sprintf("%s is given more than once, as PowerShell does not allow: give it once, with a list's values separated by commas", name)}
	}
	pos, err := parseArgs(fs, args)
	switch {
	case errors.Is(err, flag.ErrHelp):
		_ = cmd.Help()
		return errHelpShown
	case err != nil:
		unknown := strings.HasPrefix(err.Error(), "flag provided but not defined") || strings.HasPrefix(err.Error(), "bad flag syntax")
		return &usageError{cmd: cmd, msg: err.Error(), usage: unknown}
	}
	if err := wantArgs(pos); err != nil {
		return &usageError{cmd: cmd, msg: err.Error()}
	}
	return e.checkOutput(cmd)
}

// repeatedParam returns the first parameter of args (folded to fs's
// names) given a second time, under its name or an alias of it, as it
// was written the second time. The flag package keeps the last value,
// so "-Operations a -Operations b" searched b alone while the user read
// it as both; PowerShell refuses it ("parameter 'Operations' is
// specified more than once").
func repeatedParam(fs *flag.FlagSet, args []string) (string, bool) {
	seen := map[any]bool{}
	for i := 0; i < len(args); i++ {
		arg := args[i]
		if arg == "--" {
			break
		}
		name, ok := strings.CutPrefix(arg, "-")
		if !ok || name == "" {
			continue
		}
		name = strings.TrimPrefix(name, "-")
		name, _, _ = strings.Cut(name, "=")
		f := fs.Lookup(name)
		if f == nil {
			continue
		}
		// Aliases share the variable they set: the flag package's values
		// are pointers to it.
		var key any = f.Name
		if v := reflect.ValueOf(f.Value); v.Kind() == reflect.Pointer {
			key = v.Pointer()
		}
		if seen[key] {
			flagName, _, _ := strings.Cut(arg, "=")
			return flagName, true
		}
		seen[key] = true
		if takesValue(fs, arg) {
			i++ // the value, whatever it looks like
		}
	}
	return "", false
}

// oneRequestID returns the one request id of verb's -RequestId, read as
// its list parameters are (listValues): PowerShell writes an array as
// values separated by commas, and Microsoft's cmdlets take one request
// id. An empty value ("a,,b", "$unset,x") or several ids are refused
// before anything is sent; sent, they came back as the API's 400 for an
// id that is no UUID (exit 1), as if the server had failed.
func oneRequestID(verb, v string) (string, error) {
	ids, err := listValues(v)
	switch {
	case err != nil:
		return "", fmt.Errorf("-RequestId %q holds an empty value: give one request id", v)
	case len(ids) > 1:
		return "", fmt.Errorf("-RequestId names %d request ids: %s takes one, so run it once for each", len(ids), verb)
	}
	return ids[0], checkName("-RequestId", ids[0])
}

// errHelpShown ends a run whose help was asked for and printed.
var errHelpShown = errors.New("help shown")

// runGetAlias is Get-AccessToCustomerDataRequest: a list, or one request
// when a request id is given.
func (e *env) runGetAlias(cmd *cobra.Command, argv []string) error {
	fs := e.psFlagSet(cmd.Name())
	var lf listFlags
	fs.StringVar(&lf.tenant, "tenant", "", "")
	fs.StringVar(&lf.state, "state", "", "")
	fs.StringVar(&lf.state, "approval-status", "", "")
	fs.StringVar(&lf.state, "ApprovalStatus", "", "")
	fs.StringVar(&lf.createdAfter, "created-after", "", "")
	fs.StringVar(&lf.createdAfter, "CreatedAfter", "", "")
	fs.IntVar(&lf.limit, "limit", 0, "")
	fs.StringVar(&lf.cursor, "cursor", "", "")
	fs.BoolVar(&lf.all, "all", false, "")
	var id string
	fs.StringVar(&id, "request-id", "", "")
	fs.StringVar(&id, "RequestId", "", "")
	if err := e.psParse(cmd, fs, argv); err != nil {
		return err
	}
	if err := e.notUTF8(func(fn func(name, value string)) {
		fs.Visit(func(f *flag.Flag) { fn(f.Name, f.Value.String()) })
	}); err != nil {
		return err
	}
	if err := e.emptyFilter(func(fn func(name, value string)) {
		fs.Visit(func(f *flag.Flag) { fn(f.Name, f.Value.String()) })
	}); err != nil {
		return err
	}
	if given(fs, "request-id", "RequestId") {
		if err := checkName("-RequestId", id); err != nil {
			return e.usage("%s", err)
		}
		var err error
		if id, err = oneRequestID(cmd.Name(), id); err != nil {
			return e.usage("%s", err)
		}
		// PowerShell's cmdlet takes -RequestId with its other
		// parameters, all filters of one listing: the request is shown
		// if it passes them. Lockbox's paging flags are no filters.
		filters := listFlags{state: lf.state, createdAfter: lf.createdAfter}
		if lf != filters {
			return e.usage("-RequestId shows one request: it can't be combined with --tenant, --limit, --cursor or --all")
		}
		if filters != (listFlags{}) {
			return e.showIfMatches(id, filters)
		}
		return e.show(id, true)
	}
	opts, states, err := e.listOptions(lf, "-ApprovalStatus", "-CreatedAfter")
	if err != nil {
		return err
	}
	return e.list(opts, states, lf.all)
}

// showIfMatches shows request id, as -RequestId does, if it passes the
// -ApprovalStatus and -CreatedAfter of l; otherwise it prints nothing on
// stdout, as the cmdlet returns nothing, and says why on stderr.
func (e *env) showIfMatches(id string, l listFlags) error {
	opts, states, err := e.listOptions(l, "-ApprovalStatus", "-CreatedAfter")
	if err != nil {
		return err
	}
	c, err := e.client()
	if err != nil {
		return err
	}
	r, err := c.GetRequest(e.ctx, id)
	if err != nil {
		return err
	}
	switch {
	case len(states) > 0 && !slices.Contains(states, r.State):
		fmt.Fprintf(e.stderr, "Request %s is %s, not %s: nothing to show.\n", clean(id), clean(string(r.State)), clean(l.state))
		return nil
	case !opts.CreatedAfter.IsZero() && !r.CreatedAt.After(opts.CreatedAfter):
		// After, strictly, as the API's created_after lists.
		fmt.Fprintf(e.stderr, "Request %s was created at %s, not after %s: nothing to show.\n",
			clean(id), r.CreatedAt.UTC().Format(timeLayout), opts.CreatedAfter.UTC().Format(timeLayout))
		return nil
	}
	return e.printRequest(r, true)
}

// runSetAlias is Set-AccessToCustomerDataRequest: the decision named as in
// the audit record's ApprovalDecision, Approve or Deny, or Cancel, the
// requester's withdrawal.
func (e *env) runSetAlias(cmd *cobra.Command, argv []string) error {
	fs := e.psFlagSet(cmd.Name())
	var id, decision, comment string
	fs.StringVar(&id, "request-id", "", "")
	fs.StringVar(&id, "RequestId", "", "")
	fs.StringVar(&decision, "approval-decision", "", "")
	fs.StringVar(&decision, "ApprovalDecision", "", "")
	fs.StringVar(&comment, "comment", "", "")
	var serviceName string
	fs.StringVar(&serviceName, "service-name", "", "")
	fs.StringVar(&serviceName, "ServiceName", "", "")
	if err := e.psParse(cmd, fs, argv); err != nil {
		return err
	}
	if err := e.notUTF8(func(fn func(name, value string)) {
		fs.Visit(func(f *flag.Flag) { fn(f.Name, f.Value.String()) })
	}); err != nil {
		return err
	}
	if err := e.tooLong(func(fn func(name, value string, most int)) {
		fs.Visit(func(f *flag.Flag) {
			if strings.EqualFold(f.Name, "comment") {
				fn(f.Name, f.Value.String(), maxCommentChars)
			}
		})
	}); err != nil {
		return err
	}
	if err := e.emptyFilter(func(fn func(name, value string)) {
		fs.Visit(func(f *flag.Flag) { fn(f.Name, f.Value.String()) })
	}); err != nil {
		return err
	}
	if strings.TrimSpace(id) == "" {
		return e.usage("missing -RequestId")
	}
	if err := checkName("-RequestId", id); err != nil {
		return e.usage("%s", err)
	}
	id, err := oneRequestID(cmd.Name(), id)
	if err != nil {
		return e.usage("%s", err)
	}
	var action string
	switch strings.ToLower(strings.TrimSpace(decision)) {
	case "approve", "deny", "cancel":
		action = strings.ToLower(strings.TrimSpace(decision))
	case "":
		return e.usage("missing -ApprovalDecision (Approve, Deny or Cancel)")
	default:
		return e.usage("-ApprovalDecision %q must be Approve, Deny or Cancel", decision)
	}
	if given(fs, "service-name", "ServiceName") {
		if err := e.checkServiceName(id, strings.TrimSpace(serviceName)); err != nil {
			return err
		}
	}
	return e.act(action, id, comment)
}

// psServiceNames are the values Microsoft 365 documents for
// Set-AccessToCustomerDataRequest -ServiceName, offered by completion.
var psServiceNames = []string{"EOP", "Exchange", "SharePoint", "Teams"}

// psServices are the Lockbox services each of Microsoft 365's -ServiceName
// values covers. EXO is the name older releases of the cmdlet took.
// OneDrive for Business keeps its files in SharePoint Online, and Customer
// Lockbox files its requests under SharePoint.
var psServices = map[string][]string{
	"eop":        {"exchange"},
	"exchange":   {"exchange"},
	"exo":        {"exchange"},
	"sharepoint": {"sharepoint", "onedrive"},
}

// serviceNameCovers reports whether -ServiceName name covers service:
// Microsoft 365's name for it, or its own name in any case.
func serviceNameCovers(name, service string) bool {
	return strings.EqualFold(name, service) || slices.Contains(psServices[strings.ToLower(name)], service)
}

// checkServiceName reads request id and refuses it when its service is
// not the one -ServiceName names: a script written for Microsoft 365
// passes it to decide only that service's request, so deciding another
// service's request under the same id would grant or refuse what its
// author never meant to. A request's service never changes, so reading
// it first is as good as the decision checking it.
func (e *env) checkServiceName(id, name string) error {
	c, err := e.client()
	if err != nil {
		return err
	}
	r, err := c.GetRequest(e.ctx, id)
	if err != nil {
		return err
	}
	if !serviceNameCovers(name, r.Service) {
		return &refusedError{msg: fmt.Sprintf("request %s is for %s, not -ServiceName %s: nothing was decided", id, r.Service, name)}
	}
	return nil
}

// maxIdempotencyKey is the longest Idempotency-Key the API takes.
const maxIdempotencyKey = 255

// badIdempotencyKey says what is wrong with a --idempotency-key the API
// would refuse, naming the flag, or "": 1 to 255 visible ASCII characters
// other than '"' and '\'.
func badIdempotencyKey(k string) string {
	if len(k) > maxIdempotencyKey {
		return fmt.Sprintf("--idempotency-key is longer than %d characters", maxIdempotencyKey)
	}
	for _, c := range []byte(k) {
		if c <= ' ' || c > '~' || c == '"' || c == '\\' {
			return "--idempotency-key may hold only visible ASCII characters other than '\"' and '\\', such as those of a UUID"
		}
	}
	return ""
}

// answerLost reports whether err leaves unknown whether the call took
// effect: it was sent, and no answer of the API's came back (the
// connection was closed or reset before an answer, the call timed out, or
// a gateway in front answered 502 or 504 in the API's stead). A call
// refused at connecting, or at its TLS handshake, never went out.
func answerLost(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) {
		return false
	}
	if _, notSent := errors.AsType[*client.NotSentError](err); notSent {
		// Never written whole: nothing can have been filed.
		return false
	}
	if apiErr, ok := errors.AsType[*client.APIError](err); ok {
		return apiErr.Code == "" && (apiErr.Status == http.StatusBadGateway || apiErr.Status == http.StatusGatewayTimeout)
	}
	return errors.Is(err, context.DeadlineExceeded) || errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.EPIPE)
}

// lostByTimeout reports whether err is a call that waited its timeout out.
func lostByTimeout(err error) bool {
	return errors.Is(err, context.DeadlineExceeded)
}
