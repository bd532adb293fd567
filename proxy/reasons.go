package proxy

import (
	"errors"
	"net/http"
)

// Reason says why the proxy did not forward a call, or why forwarding
// failed. The set is closed: the same value is the JSON error "code" the
// client reads, the "reason" label of lockbox_proxy_denials_total and the
// "reason" attribute of the log line, so dashboards, alerts, logs and
// clients all speak of one thing with one word. A bounded set is also what
// keeps the metric label bounded.
type Reason string

// The reasons, in the order the checks run; ReasonClientCanceled, which
// may end any of them, comes last.
const (
	// ReasonBadRequest (400): the request is not one the proxy judges at
	// all. A target not already canonical (dot segments, encoded "/" or
	// "\", "//", ";", absolute- or authority-form), a method override
	// header or parameter (in the query, a form body or a POSTed JSON
	// object), a form or POSTed JSON body that can't be parsed or is
	// encoded, CONNECT, a protocol upgrade (Upgrade, h2c), or a body over
	// the size limit (then 413). Also, once a call is forwarded, a
	// streamed body that could not be read from the client (its chunked
	// framing broken midway): then the call is not a denial.
	ReasonBadRequest Reason = "bad_request"
	// ReasonUnauthenticated (401): no single, verifiable bearer token. A
	// verified identity that is not one of the provider's operators (a
	// tenant user, or staff without the operator role) also gets this
	// reason, with 403: the token is fine, the caller is not allowed here.
	ReasonUnauthenticated Reason = "unauthenticated"
	// ReasonUnknownService (404): the first path segment names no
	// configured service, or nothing follows it.
	ReasonUnknownService Reason = "unknown_service"
	// ReasonUnknownActivity (403): the method and path are no activity of
	// the service's catalog. Routes are an allow-list.
	ReasonUnknownActivity Reason = "unknown_activity"
	// ReasonOverloaded (503, with Retry-After): the call's body is one the
	// proxy reads whole to check it for method overrides (a form, or the
	// JSON body of a POST), and the bodies other calls hold for that check
	// leave too little of the proxy's budget for it (Config.BodyBufferBytes,
	// LOCKBOX_PROXY_BODY_BUFFER_BYTES), or the operator's own calls already
	// hold their share of it (a quarter). The call is refused at once, before
	// anything is audited, rather than made to wait. Nothing else is
	// refused for it: calls without a body and bodies that stream never take
	// from the budget.
	ReasonOverloaded Reason = "overloaded"
	// ReasonNoGrant (403): no grant for (tenant, operator, service).
	ReasonNoGrant Reason = "no_grant"
	// ReasonGrantExpired (403): the grant's absolute expiry has passed,
	// whatever the Redis TTL says.
	ReasonGrantExpired Reason = "grant_expired"
	// ReasonTenantMismatch (403): the grant found names another tenant,
	// service or operator than the call. The store's key layout makes this
	// impossible; the proxy checks anyway, so a store bug or a tampered
	// record can't widen access.
	ReasonTenantMismatch Reason = "tenant_mismatch"
	// ReasonPolicyDenied (403): the policy answered allow == false; the
	// message carries its reasons.
	ReasonPolicyDenied Reason = "policy_denied"
	// ReasonPolicyError (403): the policy could not decide (an evaluation
	// error, an undefined or malformed decision). Fail closed. 503 when the
	// evaluation ran out of its deadline.
	ReasonPolicyError Reason = "policy_error"
	// ReasonStoreUnavailable (503): the grant or tenant settings could not
	// be read within the deadline, or what was read is unusable.
	ReasonStoreUnavailable Reason = "store_unavailable"
	// ReasonAuditUnavailable (503): the audit record of a permitted call
	// could not be written durably, so the call was refused.
	ReasonAuditUnavailable Reason = "audit_unavailable"
	// ReasonUpstreamUnavailable (502): every check passed and the call was
	// audited, but forwarding it failed. This is not a denial: the
	// upstream may have received, even executed, the call (a response
	// header timeout after a DELETE), so it is counted as decision "error"
	// in lockbox_proxy_requests_total and never in
	// lockbox_proxy_denials_total.
	ReasonUpstreamUnavailable Reason = "upstream_unavailable"
	// ReasonInternalError (500): judging the call failed in a way no check
	// foresaw (a panic: a bug). Nothing was forwarded; the log line has
	// the panic and its stack. Counted as a denial, never as an allowed
	// call, which the call's metrics said until it was caught.
	ReasonInternalError Reason = "internal_error"
	// ReasonClientCanceled (499, nginx's "client closed request"): the
	// client went away (hung up, reset its HTTP/2 stream) while the call
	// was judged. Nothing was forwarded. The step that failed for it (a
	// Redis read, the policy's evaluation) is not counted as store or
	// policy trouble, and the call is not the client's bad request either:
	// a spike of it is clients giving up, or a rapid-reset flood.
	ReasonClientCanceled Reason = "client_canceled"
)

// StatusClientClosedRequest is the status of ReasonClientCanceled's
// answer, which only a client that closed just its sending half still
// reads: nginx's 499, which no standard status says.
const StatusClientClosedRequest = 499

var allReasons = []Reason{
	ReasonBadRequest,
	ReasonUnauthenticated,
	ReasonUnknownService,
	ReasonUnknownActivity,
	ReasonOverloaded,
	ReasonNoGrant,
	ReasonGrantExpired,
	ReasonTenantMismatch,
	ReasonPolicyDenied,
	ReasonPolicyError,
	ReasonStoreUnavailable,
	ReasonAuditUnavailable,
	ReasonUpstreamUnavailable,
	ReasonInternalError,
	ReasonClientCanceled,
}

// AllReasons returns every reason, in the order the checks run. The slice
// is the caller's.
func AllReasons() []Reason {
	out := make([]Reason, len(allReasons))
	copy(out, allReasons)
	return out
}

// Status returns the HTTP status a call refused for r is answered with.
// Three answers differ from it: ReasonUnauthenticated is 403 for a verified
// identity that isn't a provider operator, ReasonBadRequest is 413 for a
// body over the limit, and ReasonPolicyError is 503 for an evaluation past
// its deadline. It returns 0 for a value outside the set.
// ReasonOverloaded's answer also carries Retry-After.
func (r Reason) Status() int {
	switch r {
	case ReasonBadRequest:
		return http.StatusBadRequest
	case ReasonUnauthenticated:
		return http.StatusUnauthorized
	case ReasonUnknownService:
		return http.StatusNotFound
	case ReasonUnknownActivity, ReasonNoGrant, ReasonGrantExpired, ReasonTenantMismatch,
		ReasonPolicyDenied, ReasonPolicyError:
		return http.StatusForbidden
	case ReasonOverloaded, ReasonStoreUnavailable, ReasonAuditUnavailable:
		return http.StatusServiceUnavailable
	case ReasonUpstreamUnavailable:
		return http.StatusBadGateway
	case ReasonInternalError:
		return http.StatusInternalServerError
	case ReasonClientCanceled:
		return StatusClientClosedRequest
	}
	return 0
}

// Denial reports whether r refuses a call before anything reaches the
// upstream. Every reason does except ReasonUpstreamUnavailable.
func (r Reason) Denial() bool { return r.Status() != 0 && r != ReasonUpstreamUnavailable }

// publicMessage is what the client reads for the reasons whose cause is
// ours, not the caller's: store, audit, policy and upstream internals (host
// names, keys, Rego errors) stay in the log. Other reasons show the cause,
// which describes the caller's own request.
var publicMessage = map[Reason]string{
	ReasonOverloaded:          "the proxy holds as many request bodies as it may right now, so the call is denied; retry later",
	ReasonPolicyError:         "the policy could not decide on this call, so it is denied",
	ReasonStoreUnavailable:    "grants can't be read right now, so the call is denied; retry later",
	ReasonAuditUnavailable:    "the call can't be audited right now, so it is denied; retry later",
	ReasonUpstreamUnavailable: "the service did not answer; the call was audited and may have reached it",
	ReasonInternalError:       "the proxy failed while judging this call, so it is denied",
}

// statusError gives a denial a status other than its reason's. It is the
// exception, kept for the three cases Reason.Status documents.
type statusError struct {
	status int
	err    error
}

func (e *statusError) Error() string { return e.err.Error() }
func (e *statusError) Unwrap() error { return e.err }

// withStatus makes err answer with status instead of its reason's.
func withStatus(status int, err error) error { return &statusError{status: status, err: err} }

// statusOf returns the status a denial for reason with cause err answers.
func statusOf(reason Reason, err error) int {
	if se, ok := errors.AsType[*statusError](err); ok {
		return se.status
	}
	return reason.Status()
}

// messageOf returns the client-safe message of a denial.
func messageOf(reason Reason, err error) string {
	if m, ok := publicMessage[reason]; ok {
		return m
	}
	if pe, ok := errors.AsType[publicError](err); ok {
		return pe.public()
	}
	if err == nil {
		return string(reason)
	}
	return err.Error()
}
