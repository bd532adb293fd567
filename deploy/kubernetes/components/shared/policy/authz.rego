# METADATA
# title: Lockbox default authorization policy
# description: |
#   Decides whether one operator call through the Lockbox proxy may reach
#   tenant data. The proxy asks for data.lockbox.authz.decision and forwards
#   the call only when it is an object whose allow is true; anything else,
#   an error included, denies. rego/README.md documents the input and the
#   reasons.
package lockbox.authz

# decision is always an object {"allow": bool, "reasons": [string]}.
#
# An allowed call has no reasons. A denied call has at least one reason, each
# from the closed set in rego/README.md, sorted, so that the same call gets
# the same answer. The default catches a policy gap: no denial matched, yet
# the allow rule did not hold either. It still denies.
default decision := {"allow": false, "reasons": ["not_allowed"]}

decision := {"allow": true, "reasons": []} if {
	allow
	count(denials) == 0
}

decision := {"allow": false, "reasons": sort(denials)} if count(denials) > 0

# allow states every condition positively. The denials below are its exact
# complements, so a call is either allowed or denied with a reason; the
# default above only fires if an edit breaks that symmetry.
allow if {
	has_grant
	tenant_matches
	service_matches
	operator_matches
	grant_unexpired
	grant_window_bounded
	approval_sufficient
	activity_known
	activity_permitted
}

# Each check is written as "deny unless the positive fact holds", so an
# unexpected input shape (a missing field, an unparsable time) makes the fact
# undefined and the call denied. The server also makes builtin errors fatal:
# there an unparsable time is an evaluation error, which denies the call too.

denials contains "no_grant" if not has_grant

denials contains "tenant_mismatch" if {
	has_grant
	not tenant_matches
}

denials contains "service_mismatch" if {
	has_grant
	not service_matches
}

denials contains "operator_mismatch" if {
	has_grant
	not operator_matches
}

denials contains "grant_expired" if {
	has_grant
	not grant_unexpired
}

# The lifecycle grants at most 4 hours; the policy holds every grant to that
# itself, so a grant that got a longer window anyhow (a bug, an edited record)
# is not honoured past what a request may ask for.
denials contains "grant_window_too_long" if {
	has_grant
	not grant_window_bounded
}

# With the tenant's Customer Lockbox on, only an approval by the tenant's own
# approvers counts. Turning the switch on revokes every grant a manager alone
# approved; this denial keeps such a grant from being honoured should one
# survive (or be read from a cache) anyway.
denials contains "tenant_approval_required" if {
	has_grant
	not approval_sufficient
}

denials contains "unknown_activity" if not activity_known

denials contains "activity_not_requested" if {
	has_grant
	count(requested) > 0
	not input.call.activity in requested
}

# Only a known activity can be a write; an unknown one is unknown_activity.
denials contains "write_not_requested" if {
	has_grant
	count(requested) == 0
	activity_known
	not call_reads
}

has_grant if is_object(input.grant)

approval_sufficient if input.grant.tenant_approved == true

approval_sufficient if input.tenant.lockbox_enabled == false

tenant_matches if {
	input.call.tenant != ""
	input.grant.tenant == input.call.tenant
}

service_matches if {
	input.call.service != ""
	input.grant.service == input.call.service
}

operator_matches if {
	input.operator.id != ""
	input.grant.operator == input.operator.id
}

# The grant is valid while now < expires_at: the absolute expiry, not the
# store's TTL, decides.
grant_unexpired if now_ns < time.parse_rfc3339_ns(input.grant.expires_at)

# The grant's window, from its approval to its absolute expiry, is at most
# max_window_ns (Customer Lockbox's 4 hours), and it has begun: without that,
# an approved_at moved forward (an edited record) would keep the window at 4
# hours on paper while the grant is honoured from now until an expiry however
# far off. An approval up to max_clock_skew_ns after now still counts as
# begun: now is truncated to the second, and the clock of the replica that
# approved may run a little ahead of the proxy's. A window that ends at or
# before its approval is none: with that tolerance it would otherwise be
# honoured until its expiry.
grant_window_bounded if {
	approved := time.parse_rfc3339_ns(input.grant.approved_at)
	window := time.parse_rfc3339_ns(input.grant.expires_at) - approved
	window > 0
	window <= max_window_ns
	approved <= now_ns + max_clock_skew_ns
}

max_window_ns := time.parse_duration_ns("4h")

max_clock_skew_ns := time.parse_duration_ns("1m")

# now_ns is input.now, which the server always sets and passes as the
# evaluation time too. Only when input.now is absent or empty (e.g. a hand
# written input for opa eval) does the clock decide. A malformed input.now
# leaves now_ns undefined (an error in the server), which denies.
now_ns := time.parse_rfc3339_ns(input.now) if has_now

now_ns := time.now_ns() if not has_now

has_now if input.now != ""

# The call's activity must be in the catalog (data.activities, from
# activities/data.json) for its service, with the same method and access.
# The proxy classified the call with this very catalog; checking again here
# keeps a mislabelled input from passing as a read.
catalog_entry := entry if {
	some entry in data.activities[input.call.service]
	entry.activity == input.call.activity
}

activity_known if {
	catalog_entry.method == input.call.method
	catalog_entry.access == input.call.access
}

call_reads if {
	activity_known
	catalog_entry.access == "read"
}

# The activities the request named. None (an empty list, null or no field)
# means the catalog's read activities only.
requested := input.grant.activities if is_array(input.grant.activities)

else := []

# A request that names activities permits exactly those; one that names none
# permits every read activity of its service and no write.
activity_permitted if {
	count(requested) > 0
	input.call.activity in requested
}

activity_permitted if {
	count(requested) == 0
	call_reads
}
