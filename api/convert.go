package api

import (
	"github.com/lockbox-oss/lockbox/api/wire"
	"github.com/lockbox-oss/lockbox/audit"
	"github.com/lockbox-oss/lockbox/grants"
	"github.com/lockbox-oss/lockbox/internal/unreadable"
	"github.com/lockbox-oss/lockbox/tenants"
)

// The conversions between the API's bodies (package wire) and the domain's
// types. TestWireMatchesDomain holds each pair to the same JSON, so a field
// added on one side and not the other fails it.

func wireRequest(r grants.Request) wire.Request {
	out := wire.Request{
		ID: r.ID, Tenant: r.Tenant, Service: r.Service, ServiceRequest: r.ServiceRequest, Reason: r.Reason,
		Duration: wire.Duration(r.Duration), Activities: r.Activities, Requester: r.Requester, RequesterEmail: r.RequesterEmail,
		State: wire.State(r.State), CreatedAt: r.CreatedAt, DecideBy: r.DecideBy,
		ManagerApprover: r.ManagerApprover, Approver: r.Approver, ApprovedAt: r.ApprovedAt, ExpiresAt: r.ExpiresAt,
	}
	// The API's alone, derived from the history: the stored request does
	// not carry it, so it can't disagree with the event that ended it.
	if at, ok := grants.EndedAt(r); ok {
		out.EndedAt = &at
	}
	if r.History != nil {
		out.History = make([]wire.Event, len(r.History))
		for i, ev := range r.History {
			out.History[i] = wire.Event{
				Action: wire.Action(ev.Action), Actor: ev.Actor, ActorKind: wire.ActorKind(ev.ActorKind),
				From: wire.State(ev.From), To: wire.State(ev.To), ActorGlobalAdmin: ev.ActorGlobalAdmin,
				At: ev.At, ClientIP: ev.ClientIP, Comment: ev.Comment, Cause: string(ev.Cause), RecordedAt: ev.RecordedAt,
			}
		}
	}
	return out
}

func wireRequests(rs []grants.Request) []wire.Request {
	out := make([]wire.Request, len(rs))
	for i, r := range rs {
		out[i] = wireRequest(r)
	}
	return out
}

func createInput(in wire.CreateRequest) grants.CreateInput {
	return grants.CreateInput{
		Tenant: in.Tenant, Service: in.Service, ServiceRequest: in.ServiceRequest, Reason: in.Reason,
		Duration: grants.Duration(in.Duration), Activities: in.Activities,
	}
}

func wireTenant(t tenants.Tenant) wire.Tenant {
	out := wire.Tenant{
		ID: t.ID, OrganizationID: t.OrganizationID, DisplayName: t.DisplayName,
		Domains: t.Domains, GlobalAdmins: t.GlobalAdmins, OnboardedAt: t.OnboardedAt,
		State: wire.TenantActive,
	}
	if o := t.Offboarded; o != nil {
		out.State = wire.TenantOffboarded
		out.Offboarded = &wire.Offboarded{At: o.At, By: o.By, Reason: o.Reason}
	}
	return out
}

func wireSettings(s tenants.Settings) wire.Settings {
	return wire.Settings{LockboxEnabled: s.LockboxEnabled, NotificationAddresses: s.NotificationAddresses}
}

func onboarding(in wire.Onboarding) tenants.Onboarding {
	return tenants.Onboarding{
		ID: in.ID, OrganizationID: in.OrganizationID, DisplayName: in.DisplayName,
		Domains: in.Domains, GlobalAdmins: in.GlobalAdmins, LockboxEnabled: in.LockboxEnabled,
	}
}

func tenantUpdate(in wire.TenantUpdate) tenants.TenantUpdate {
	return tenants.TenantUpdate{DisplayName: in.DisplayName, Domains: in.Domains, GlobalAdmins: in.GlobalAdmins}
}

func wireVerification(v audit.Verification) wire.AuditVerification {
	return wire.AuditVerification{
		Tenant: v.Tenant, Records: v.Records, OK: v.OK, BrokenAt: v.BrokenAt, RecordId: v.RecordId, Problem: v.Problem,
		TrimmedThrough: v.TrimmedThrough, TrimmedUnbound: v.TrimmedUnbound,
		Seal: v.Seal, SealedThrough: v.SealedThrough, SealedAt: v.SealedAt, SealKeyID: v.SealKeyID,
		UnsealedRecords: v.UnsealedRecords, SealToken: v.SealToken,
		SinceSeal: v.SinceSeal, SinceSealedThrough: v.SinceSealedThrough, SinceSealedAt: v.SinceSealedAt,
	}
}

func wireUnreadable(us []grants.Unreadable) []wire.UnreadableRequest {
	if len(us) == 0 {
		return nil
	}
	out := make([]wire.UnreadableRequest, len(us))
	for i, u := range us {
		out[i] = wire.UnreadableRequest{ID: u.ID, Tenant: u.Tenant, Error: unreadable.Message}
	}
	return out
}
