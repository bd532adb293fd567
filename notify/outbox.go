// Package notify tells people about lockbox requests: the tenant's approvers
// and notification addresses when a request awaits them, the requester of
// every decision, expiry, revocation and completion, and the other approvers
// when one of them already decided.
//
// Notifications go through a durable outbox: each transition queues its
// events in a per-tenant Redis stream inside the transaction that commits
// the transition (grants.Config.Outbox), and a Worker delivers them by
// e-mail (SMTP, or a DevSink that logs and writes files) and to webhooks,
// with retries, exponential backoff and a dead-letter stream. Several
// replicas share the work through a stream consumer group.
//
// E-mails carry no links at all: approvers sign in to Lockbox themselves.
//
// Global administrators of a tenant are not known to Lockbox (they come
// from the identity provider's tokens), so only assigned approvers and the
// tenant's notification addresses are mailed; a tenant that wants its
// global admins told lists them as notification addresses.
package notify

import (
	"context"
	"encoding/json"
	"fmt"

	"github.com/redis/go-redis/v9"

	"github.com/lockbox-oss/lockbox/grants"
)

// Kind is what an outbox event tells.
type Kind string

// The kinds of notification.
const (
	// KindPendingCustomer: a request awaits the tenant's approval; sent to
	// the tenant's approvers and notification addresses.
	KindPendingCustomer Kind = "pending_customer"
	// KindRequesterUpdate: a decision, expiry, revocation or completion;
	// sent to the requester.
	KindRequesterUpdate Kind = "requester_update"
	// KindAlreadyDecided: a tenant approver decided; sent to the tenant's
	// other approvers.
	KindAlreadyDecided Kind = "already_decided"
)

// Event is one outbox entry: what happened to which request.
type Event struct {
	Kind    Kind           `json:"kind"`
	Request grants.Request `json:"request"`
	// Event is the history event that caused the notification.
	Event grants.Event `json:"event"`
}

// Key layout: everything of a tenant's outbox shares the tenant's hash tag,
// so it is written in the same MULTI as the transition.
func tagged(tenant, rest string) string { return "lockbox:{" + tenant + "}:" + rest }

// OutboxKey is the tenant's outbox stream.
func OutboxKey(tenant string) string { return tagged(tenant, "outbox") }

// DeadKey is the tenant's dead-letter stream: events given up on after the
// maximum number of attempts, with the last error.
func DeadKey(tenant string) string { return tagged(tenant, "outbox:dead") }

// retryKey is a hash of entry id -> retry state (attempts, next attempt).
func retryKey(tenant string) string { return tagged(tenant, "outbox:retry") }

// sentKey marks one recipient of one entry as being sent or sent.
func sentKey(tenant, id, recipient string) string {
	return tagged(tenant, "outbox:sent:"+id+":"+recipient)
}

// Group is the consumer group every replica's worker joins.
const Group = "lockbox-notify"

// Outbox queues notifications; it implements grants.Outbox. Its zero value
// is ready to use.
type Outbox struct{}

// NewOutbox returns the outbox to set as grants.Config.Outbox.
func NewOutbox() *Outbox { return &Outbox{} }

// EnqueueTx adds to p one stream entry per notification the transition from
// prev to next causes. The stream lives in the tenant's hash slot; the
// worker finds tenants through the global tenant set that Create writes
// before a request is committed.
func (o *Outbox) EnqueueTx(ctx context.Context, p redis.Pipeliner, prev, next grants.Request) error {
	for _, ev := range EventsFor(prev, next) {
		b, err := json.Marshal(ev)
		if err != nil {
			return fmt.Errorf("notify: encode event: %w", err)
		}
		p.XAdd(ctx, &redis.XAddArgs{Stream: OutboxKey(next.Tenant), Values: []any{"event", b}})
	}
	return nil
}

// EventsFor lists the notifications of the transition from prev to next.
func EventsFor(prev, next grants.Request) []Event {
	if len(next.History) <= len(prev.History) {
		return nil
	}
	var out []Event
	for _, ev := range next.History[len(prev.History):] {
		if ev.To == grants.StatePendingCustomer {
			out = append(out, Event{Kind: KindPendingCustomer, Request: next, Event: ev})
		}
		switch ev.Action {
		case grants.ActionApprove, grants.ActionDeny, grants.ActionExpire, grants.ActionRevoke, grants.ActionComplete:
			out = append(out, Event{Kind: KindRequesterUpdate, Request: next, Event: ev})
		}
		if ev.ActorKind == grants.KindTenant && ev.From == grants.StatePendingCustomer &&
			(ev.Action == grants.ActionApprove || ev.Action == grants.ActionDeny) {
			out = append(out, Event{Kind: KindAlreadyDecided, Request: next, Event: ev})
		}
	}
	return out
}
