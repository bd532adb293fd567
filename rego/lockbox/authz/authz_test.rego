package lockbox.authz_test

import data.lockbox.authz

# A read through a grant that names no activities: allowed. Each test below
# changes one thing of it.
base := {
	"operator": {"id": "op-1", "roles": ["operator"]},
	"call": {
		"method": "GET",
		"path": "/tenants/contoso/mailboxes",
		"service": "exchange",
		"activity": "Get-Mailbox",
		"access": "read",
		"tenant": "contoso",
		"client_ip": "192.0.2.10",
	},
	"grant": {
		"request_id": "req-1",
		"tenant": "contoso",
		"operator": "op-1",
		"service": "exchange",
		"activities": [],
		"approver": "admin@contoso",
		"tenant_approved": true,
		"approved_at": "2026-03-01T10:00:00Z",
		"expires_at": "2026-03-01T14:00:00Z",
	},
	"tenant": {"id": "contoso", "lockbox_enabled": true},
	"now": "2026-03-01T11:00:00Z",
}

allowed := {"allow": true, "reasons": []}

denied(reasons) := {"allow": false, "reasons": reasons}

with_call(patch) := object.union(base, {"call": patch})

with_grant(patch) := object.union(base, {"grant": patch})

delete_mailbox_message := {
	"method": "DELETE",
	"path": "/tenants/contoso/mailboxes/alice/messages/42",
	"activity": "Remove-MailboxMessage",
	"access": "write",
}

# Allowed

test_read_allowed_when_grant_names_no_activities if {
	authz.decision == allowed with input as base
}

test_read_allowed_when_grant_activities_null if {
	authz.decision == allowed with input as with_grant({"activities": null})
}

test_read_allowed_when_grant_has_no_activities_field if {
	authz.decision == allowed with input as json.remove(base, ["grant/activities"])
}

test_named_write_allowed if {
	inp := object.union(
		with_call(delete_mailbox_message),
		{"grant": {"activities": ["Remove-MailboxMessage"]}},
	)
	authz.decision == allowed with input as inp
}

test_named_read_allowed if {
	authz.decision == allowed with input as with_grant({"activities": ["Get-MailboxMessage", "Get-Mailbox"]})
}

test_allowed_one_nanosecond_before_expiry if {
	authz.decision == allowed with input as object.union(base, {"now": "2026-03-01T13:59:59.999999999Z"})
}

test_clock_used_when_input_has_no_now if {
	inp := json.remove(base, ["now"])
	authz.decision == allowed with input as inp with time.now_ns as time.parse_rfc3339_ns("2026-03-01T12:00:00Z")
	authz.decision == denied(["grant_expired"]) with input as inp with time.now_ns as time.parse_rfc3339_ns("2026-03-01T15:00:00Z")
}

test_clock_used_when_input_now_empty if {
	inp := object.union(base, {"now": ""})
	authz.decision == allowed with input as inp with time.now_ns as time.parse_rfc3339_ns("2026-03-01T12:00:00Z")
}

test_input_now_wins_over_clock if {
	authz.decision == allowed with input as base with time.now_ns as time.parse_rfc3339_ns("2030-01-01T00:00:00Z")
}

# no_grant

test_no_grant_when_null if {
	authz.decision == denied(["no_grant"]) with input as object.union(base, {"grant": null})
}

test_no_grant_when_absent if {
	authz.decision == denied(["no_grant"]) with input as json.remove(base, ["grant"])
}

test_no_grant_when_not_an_object if {
	authz.decision == denied(["no_grant"]) with input as object.union(base, {"grant": "req-1"})
}

# tenant_mismatch, service_mismatch, operator_mismatch

test_tenant_mismatch if {
	authz.decision == denied(["tenant_mismatch"]) with input as with_grant({"tenant": "fabrikam"})
}

test_tenant_mismatch_when_both_empty if {
	inp := object.union(base, {"call": {"tenant": ""}, "grant": {"tenant": ""}})
	authz.decision == denied(["tenant_mismatch"]) with input as inp
}

test_service_mismatch if {
	authz.decision == denied(["service_mismatch"]) with input as with_grant({"service": "sharepoint"})
}

test_operator_mismatch if {
	authz.decision == denied(["operator_mismatch"]) with input as with_grant({"operator": "op-2"})
}

test_operator_mismatch_when_both_empty if {
	inp := object.union(base, {"operator": {"id": ""}, "grant": {"operator": ""}})
	authz.decision == denied(["operator_mismatch"]) with input as inp
}

test_operator_mismatch_when_operator_absent if {
	authz.decision == denied(["operator_mismatch"]) with input as json.remove(base, ["operator"])
}

# grant_expired

test_expired_at_expiry if {
	authz.decision == denied(["grant_expired"]) with input as object.union(base, {"now": "2026-03-01T14:00:00Z"})
}

test_expired_after_expiry if {
	authz.decision == denied(["grant_expired"]) with input as object.union(base, {"now": "2026-03-02T00:00:00Z"})
}

test_expiry_compared_as_instants_not_strings if {
	# 15:30+02:00 is 13:30Z, before the 14:00Z expiry.
	authz.decision == allowed with input as object.union(base, {"now": "2026-03-01T15:30:00+02:00"})
}

# Without an expiry the window can't be measured either.
test_expired_when_expires_at_malformed if {
	authz.decision == denied(["grant_expired", "grant_window_too_long"]) with input as with_grant({"expires_at": "tomorrow"})
}

test_expired_when_expires_at_absent if {
	authz.decision == denied(["grant_expired", "grant_window_too_long"]) with input as json.remove(base, ["grant/expires_at"])
}

# Without a time, neither the expiry nor whether the window has begun can
# be judged.
test_expired_when_now_malformed if {
	authz.decision == denied(["grant_expired", "grant_window_too_long"]) with input as object.union(base, {"now": "2026-03-01 11:00"})
}

# grant_window_too_long: a grant's window, from its approval to its expiry,
# is at most 4 hours, whatever the lifecycle stored.

test_window_of_four_hours_allowed if {
	base.grant.approved_at == "2026-03-01T10:00:00Z"
	base.grant.expires_at == "2026-03-01T14:00:00Z"
	authz.decision == allowed with input as base
}

test_window_one_nanosecond_over_four_hours_denied if {
	inp := with_grant({"expires_at": "2026-03-01T14:00:00.000000001Z"})
	authz.decision == denied(["grant_window_too_long"]) with input as inp
}

test_window_of_a_day_denied if {
	inp := with_grant({"approved_at": "2026-03-01T10:00:00Z", "expires_at": "2026-03-02T10:00:00Z"})
	authz.decision == denied(["grant_window_too_long"]) with input as inp
}

test_window_compared_as_instants_not_strings if {
	# 12:00+02:00 is 10:00Z: a window of exactly 4 hours.
	authz.decision == allowed with input as with_grant({"approved_at": "2026-03-01T12:00:00+02:00"})
}

test_window_too_long_when_approved_at_malformed if {
	authz.decision == denied(["grant_window_too_long"]) with input as with_grant({"approved_at": "this morning"})
}

test_window_too_long_when_approved_at_absent if {
	authz.decision == denied(["grant_window_too_long"]) with input as json.remove(base, ["grant/approved_at"])
}

# The window counts from the approval, so an approval later than now is no
# window at all: an edited record that moves approved_at forward would pass
# the 4 hour measure on paper and be honoured from now until its expiry,
# however far off.
test_window_approved_in_the_future_denied if {
	inp := with_grant({"approved_at": "2026-03-31T10:00:00Z", "expires_at": "2026-03-31T14:00:00Z"})
	authz.decision == denied(["grant_window_too_long"]) with input as inp
}

test_window_ending_before_its_approval_denied if {
	inp := with_grant({"approved_at": "2026-03-31T10:00:00Z", "expires_at": "2026-03-02T10:00:00Z"})
	authz.decision == denied(["grant_window_too_long"]) with input as inp
}

# The same within the clock tolerance: an approval a few seconds after now
# has begun, but a window that ends before it begins is no window.
test_window_ending_before_its_approval_within_the_clock_tolerance_denied if {
	inp := with_grant({"approved_at": "2026-03-01T11:00:30Z", "expires_at": "2026-03-01T11:00:20Z"})
	authz.decision == denied(["grant_window_too_long"]) with input as inp
}

test_window_of_no_time_denied if {
	inp := with_grant({"approved_at": "2026-03-01T11:00:30Z", "expires_at": "2026-03-01T11:00:30Z"})
	authz.decision == denied(["grant_window_too_long"]) with input as inp
}

# input.now is truncated to the second and the replicas' clocks differ a
# little, so an approval just after it is not in the future.
test_window_approved_within_the_clock_tolerance_allowed if {
	inp := with_grant({"approved_at": "2026-03-01T11:00:59Z", "expires_at": "2026-03-01T15:00:59Z"})
	authz.decision == allowed with input as inp
}

test_window_approved_past_the_clock_tolerance_denied if {
	inp := with_grant({"approved_at": "2026-03-01T11:01:00.000000001Z", "expires_at": "2026-03-01T15:00:00Z"})
	authz.decision == denied(["grant_window_too_long"]) with input as inp
}

# unknown_activity

test_unknown_activity_name if {
	authz.decision == denied(["unknown_activity"]) with input as with_call({"activity": "Get-Everything"})
}

test_unknown_activity_of_other_service if {
	# Get-SPOSite is a sharepoint activity, not an exchange one.
	authz.decision == denied(["unknown_activity"]) with input as with_call({"activity": "Get-SPOSite"})
}

test_unknown_activity_when_access_mislabelled if {
	# A write activity labelled read must not pass as a pre-approved read.
	inp := with_call(object.union(delete_mailbox_message, {"access": "read"}))
	authz.decision == denied(["unknown_activity"]) with input as inp
}

test_unknown_activity_when_method_differs if {
	authz.decision == denied(["unknown_activity"]) with input as with_call({"method": "DELETE"})
}

test_unknown_activity_when_service_not_in_catalog if {
	inp := object.union(base, {"call": {"service": "teams"}, "grant": {"service": "teams"}})
	authz.decision == denied(["unknown_activity"]) with input as inp
}

test_catalog_comes_from_data_activities if {
	catalog := {"exchange": [{"activity": "Get-Mailbox", "method": "GET", "path": "/tenants/{tenant}/mailboxes", "access": "write"}]}
	authz.decision == denied(["unknown_activity"]) with input as base with data.activities as catalog
}

test_default_catalog_loaded_as_data_activities if {
	some entry in data.activities.exchange
	entry == {"activity": "Get-Mailbox", "method": "GET", "path": "/tenants/{tenant}/mailboxes", "access": "read"}
}

# activity_not_requested

test_activity_not_requested_read if {
	authz.decision == denied(["activity_not_requested"]) with input as with_grant({"activities": ["Get-MailboxMessage"]})
}

test_activity_not_requested_write if {
	inp := object.union(with_call(delete_mailbox_message), {"grant": {"activities": ["New-MailboxRepairRequest"]}})
	authz.decision == denied(["activity_not_requested"]) with input as inp
}

# write_not_requested

test_write_not_requested_when_grant_names_none if {
	authz.decision == denied(["write_not_requested"]) with input as with_call(delete_mailbox_message)
}

test_write_not_requested_when_activities_null if {
	inp := object.union(with_call(delete_mailbox_message), {"grant": {"activities": null}})
	authz.decision == denied(["write_not_requested"]) with input as inp
}

# Several reasons, and the shape of every answer

test_all_grant_reasons_sorted if {
	inp := object.union(base, {
		"grant": {
			"tenant": "fabrikam",
			"service": "sharepoint",
			"operator": "op-2",
			"expires_at": "2026-03-01T10:30:00Z",
			"activities": ["Get-SPOSite"],
		},
	})
	authz.decision == denied([
		"activity_not_requested",
		"grant_expired",
		"operator_mismatch",
		"service_mismatch",
		"tenant_mismatch",
	]) with input as inp
}

test_no_grant_and_unknown_activity if {
	inp := object.union(with_call({"activity": "Get-Everything"}), {"grant": null})
	authz.decision == denied(["no_grant", "unknown_activity"]) with input as inp
}

test_empty_input_denied_with_reasons if {
	authz.decision == denied(["no_grant", "unknown_activity"]) with input as {}
}

test_no_input_denied_with_reasons if {
	authz.decision == denied(["no_grant", "unknown_activity"])
}

test_policy_gap_denied_as_not_allowed if {
	# If an edit made allow fail without adding a denial, the default still
	# denies, with its own reason.
	authz.decision == denied(["not_allowed"]) with input as base with authz.allow as false
}

test_allow_and_denial_together_denies if {
	authz.decision == denied(["no_grant"]) with input as base with authz.denials as {"no_grant"}
}

test_every_reason_documented if {
	documented := {
		"no_grant", "tenant_mismatch", "service_mismatch", "operator_mismatch",
		"grant_expired", "grant_window_too_long", "unknown_activity", "activity_not_requested",
		"write_not_requested", "tenant_approval_required", "not_allowed",
	}
	inputs := [
		base,
		{},
		with_grant({"tenant": "x", "service": "y", "operator": "z", "expires_at": "bad", "activities": ["Nope-Nope"], "tenant_approved": false}),
		with_grant({"expires_at": "2026-03-02T10:00:00Z"}),
		with_call(delete_mailbox_message),
		with_call({"activity": "Get-Everything"}),
	]
	given := {r |
		some inp in inputs
		d := authz.decision with input as inp
		some r in d.reasons
	}

	# Every reason given is documented, and the inputs give every documented
	# reason but not_allowed (only an edit that breaks the policy gives it),
	# so that a reason missing from the set above can't go unnoticed. Each
	# input is evaluated once: the test shares opa test's 5 s deadline.
	given == documented - {"not_allowed"}
}

# tenant_approval_required: with the tenant's lockbox on, a grant that only
# the provider's manager approved (while it was off) is not honoured.

test_manager_only_grant_denied_when_lockbox_on if {
	authz.decision == denied(["tenant_approval_required"]) with input as with_grant({"tenant_approved": false})
}

test_grant_without_approval_flag_denied_when_lockbox_on if {
	authz.decision == denied(["tenant_approval_required"]) with input as json.remove(base, ["grant/tenant_approved"])
}

test_manager_only_grant_allowed_when_lockbox_off if {
	inp := object.union(with_grant({"tenant_approved": false}), {"tenant": {"lockbox_enabled": false}})
	authz.decision == allowed with input as inp
}
