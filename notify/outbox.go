// Package notify tells people about lockbox requests:
//
//   - the support managers (addresses by configuration) when a new request
//     awaits them;
//   - the tenant's global administrators (the contacts in its registry
//     entry), its assigned approvers and its notification addresses when a
//     request awaits the tenant, as Microsoft 365 notifies "the Global
//     Administrators and the Customer Lockbox access approver roles";
//   - the requester (the support engineer) of every decision, revocation,
//     expiry and completion, and shortly before the access window ends;
//   - the tenant's other approvers, global administrators and notification
//     addresses when one of its approvers already decided;
//   - the tenant's people asked to decide a request when it no longer
//     awaits them (the engineer canceled it, or it expired), and when the
//     provider or another of its approvers revoked access they approved;
//   - webhooks of everything that happens to a request.
//
// Notifications go through a durable outbox: each transition queues one
// entry per history event in a per-tenant Redis stream inside the
// transaction that commits the transition (grants.Config.Outbox), and a
// Worker delivers each entry to all its recipients by e-mail (SMTP, or a
// DevSink that logs and writes files) and to webhooks, with retries,
// exponential backoff and a dead-letter stream, whose letters operators
// list and put back once the cause is fixed (DeadLetters). Several replicas
// share the work through a stream consumer group.
//
// E-mails carry no links at all: approvers sign in to Lockbox themselves.
// What a tenant's recipients see (e-mails, and webhooks, which usually feed
// chat channels tenants read) never names the provider's staff: the
// engineer is "Microsoft Operator", every other provider identity
// "Microsoft Support".
package notify

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/redis/go-redis/v9"

	"github.com/lockbox-oss/lockbox/grants"
	"github.com/lockbox-oss/lockbox/internal/keys"
)

// Kind names what happened: it is the "event" of webhook deliveries and
// decides who is e-mailed. Each is "request." plus the state the request
// moved to, except request.created (a new request, pending_manager) and
// request.expiring (the warning before an access window ends).
type Kind string

// The events.
const (
	// KindCreated: a new request awaits a support manager. E-mailed to the
	// configured manager addresses.
	KindCreated Kind = "request.created"
	// KindPendingCustomer: the manager approved and the request awaits the
	// tenant. E-mailed to the tenant's global administrators, assigned
	// approvers and notification addresses (only while, at delivery, the
	// request still awaits the tenant), and to the requester.
	KindPendingCustomer Kind = "request.pending_customer"
	// KindApproved: the final approval (the tenant's, or the manager's
	// while the tenant's lockbox is off); the grant starts. E-mailed to the
	// requester and, for a tenant decision, the tenant's other recipients
	// of KindPendingCustomer.
	KindApproved Kind = "request.approved"
	// KindDenied: the manager or the tenant denied. E-mailed like
	// KindApproved.
	KindDenied Kind = "request.denied"
	// KindCanceled: the requester withdrew the request, or offboarding
	// its tenant ended it (grants.CauseTenantOffboarded). E-mailed, when
	// it awaited the tenant, to the people asked to decide it (as
	// KindPendingCustomer).
	KindCanceled Kind = "request.canceled"
	// KindRevoked: the tenant or a manager ended the grant early, or the
	// tenant turned Customer Lockbox on. E-mailed to the requester and,
	// when the grant was the tenant's approval, to the people asked to
	// decide it, except the approver who revoked it.
	KindRevoked Kind = "request.revoked"
	// KindExpired: a pending stage ended without a decision. E-mailed to
	// the requester and, when it awaited the tenant, to the people asked
	// to decide it.
	KindExpired Kind = "request.expired"
	// KindCompleted: the access window ended. E-mailed to the requester.
	KindCompleted Kind = "request.completed"
	// KindExpiring: the access window ends soon (Config.ExpiryWarning).
	// E-mailed to the requester, only while, at delivery, the grant still
	// runs to that end.
	KindExpiring Kind = "request.expiring"
)

// Kinds lists every event, in lifecycle order.
var Kinds = []Kind{KindCreated, KindPendingCustomer, KindApproved, KindDenied, KindCanceled,
	KindRevoked, KindExpired, KindCompleted, KindExpiring}

// Kinds of entries queued before entries named events: one entry per
// audience rather than per event. Entries still in an outbox at an upgrade
// are delivered as they were meant to be (see Worker.targets).
const (
	legacyPendingCustomer Kind = "pending_customer"
	legacyRequesterUpdate Kind = "requester_update"
	legacyAlreadyDecided  Kind = "already_decided"
)

// Event is one outbox entry: what happened to which request.
type Event struct {
	Kind    Kind           `json:"kind"`
	Request grants.Request `json:"request"`
	// Event is the history event that caused the notification. For
	// KindExpiring, which is no history event, it is a system event whose
	// At is when the warning was queued.
	Event grants.Event `json:"event"`
	// Redrive is set, and Kind is "redrive", on an entry put back from
	// the dead-letter stream (DeadLetters.Redrive).
	Redrive *Redrive `json:"redrive,omitempty"`
}

// KindOf names the history event ev, and reports false for one that
// notifies nobody.
func KindOf(ev grants.Event) (Kind, bool) {
	switch ev.To {
	case grants.StatePendingManager:
		if ev.Action == grants.ActionCreate {
			return KindCreated, true
		}
	case grants.StatePendingCustomer:
		return KindPendingCustomer, true
	case grants.StateApproved:
		return KindApproved, true
	case grants.StateDenied:
		return KindDenied, true
	case grants.StateCanceled:
		return KindCanceled, true
	case grants.StateRevoked:
		return KindRevoked, true
	case grants.StateExpired:
		return KindExpired, true
	case grants.StateCompleted:
		return KindCompleted, true
	}
	return "", false
}

// Key layout (internal/keys): everything of a tenant's outbox shares the
// tenant's hash tag, so it is written in the same MULTI as the transition.

// OutboxKey is the tenant's outbox stream.
func OutboxKey(tenant string) string { return keys.Outbox(tenant) }

// DeadKey is the tenant's dead-letter stream: events given up on, for the
// recipients listed, after the maximum number of attempts or a permanent
// failure, with the last error.
func DeadKey(tenant string) string { return keys.OutboxDead(tenant) }

// retryKey is a hash of entry id -> retry state (attempts, next attempt).
func retryKey(tenant string) string { return keys.OutboxRetry(tenant) }

// sentKey marks one recipient of one entry as being sent, sent, dead
// (dead-lettered while the entry's other recipients are retried), or
// skipped (news following an ask that never reached them).
func sentKey(tenant, id, recipient string) string { return keys.OutboxSent(tenant, id, recipient) }

// triesKey counts one recipient's failed attempts at one entry. An entry's
// attempts are not all its recipients': one another replica was sending
// to, or whose ask was being sent, sat some out, and it is the recipient's
// own count that uses up its attempts.
func triesKey(tenant, id, recipient string) string {
	return keys.OutboxSent(tenant, id, recipient+":tries")
}

// droppedKey marks the entry whose recipients without an e-mail address
// were logged and counted, so that each is told of once per entry.
func droppedKey(tenant, id string) string { return keys.OutboxSent(tenant, id, "dropped") }

// goneKey marks the re-driven entry whose recipients it no longer has
// were logged, so that each is told of once per entry.
func goneKey(tenant, id string) string { return keys.OutboxSent(tenant, id, "gone") }

// notBeforeKey holds when one recipient of one entry may be tried again
// (Unix milliseconds), as its receiver asked (Retry-After).
func notBeforeKey(tenant, id, recipient string) string {
	return keys.OutboxSent(tenant, id, recipient+":notbefore")
}

// holdKey holds when the receiver via (a target's via: "webhook:<URL>",
// or the mailer's name for the mail server) may be called again (Unix
// milliseconds), as it asked (Retry-After), for every message of every
// tenant: the wait is the receiver's, not that of the message that heard
// it. Like the tenant set it is provider-wide, with no hash tag, so never
// part of a tenant's transaction or script: each replica reads it just
// before its lease on a recipient and hands it to the lease's script
// (Worker.lease). The via is hashed, as a webhook's URL may hold its
// credential.
func holdKey(via string) string { return keys.NotifyHold(hashKey(via)) }

// askedKey is the hash recording whom the request's "awaits your decision"
// reached: its field "recorded" says the asks of the request are recorded
// at all (the entry that carries them was queued by this version), and a
// field per recipient (the hash of its target key) holds "sending:" and
// when its lease ends, "sent", or "withdrawn" (Worker.askGate).
func askedKey(tenant, id string) string { return keys.OutboxAsked(tenant, id) }

// WarnedKey marks the request whose expiry warning was queued, so that it
// is queued once however many replicas look for due warnings.
func WarnedKey(tenant, id string) string { return keys.OutboxWarned(tenant, id) }

// Group is the consumer group every replica's worker joins.
const Group = "lockbox-notify"

// Outbox queues notifications; it implements grants.Outbox. Its zero value
// is ready to use.
type Outbox struct{}

// NewOutbox returns the outbox to set as grants.Config.Outbox.
func NewOutbox() *Outbox { return &Outbox{} }

// EnqueueTx adds to p one stream entry per history event of the transition
// from prev to next. The stream lives in the tenant's hash slot; the worker
// finds tenants through the global tenant set that Create writes before a
// request is committed.
func (o *Outbox) EnqueueTx(ctx context.Context, p redis.Pipeliner, prev, next grants.Request) error {
	for _, ev := range EventsFor(prev, next) {
		if err := enqueue(ctx, p, ev); err != nil {
			return err
		}
	}
	return nil
}

func enqueue(ctx context.Context, p redis.Pipeliner, ev Event) error {
	b, err := json.Marshal(ev)
	if err != nil {
		return fmt.Errorf("notify: encode event: %w", err)
	}
	p.XAdd(ctx, &redis.XAddArgs{Stream: OutboxKey(ev.Request.Tenant), Values: []any{"event", b}})
	if ev.Kind == KindPendingCustomer {
		// Whom the ask reaches is recorded from now on, for "no longer
		// needs your decision" (Worker.askGate). A request asked about
		// before this version has no record, and its withdrawal goes to
		// all its recipients, as it did.
		k := askedKey(ev.Request.Tenant, ev.Request.ID)
		p.HSet(ctx, k, "recorded", "1")
		p.PExpire(ctx, k, sentTTL)
	}
	return nil
}

// EventsFor lists the notifications of the transition from prev to next:
// one per new history event. Who is told is decided at delivery, from the
// event's Kind.
func EventsFor(prev, next grants.Request) []Event {
	if len(next.History) <= len(prev.History) {
		return nil
	}
	var out []Event
	for _, ev := range next.History[len(prev.History):] {
		if k, ok := KindOf(ev); ok {
			out = append(out, Event{Kind: k, Request: next, Event: ev})
		}
	}
	return out
}
