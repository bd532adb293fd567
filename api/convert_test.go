package api

import (
	"encoding/json"
	"reflect"
	"testing"
	"time"

	"github.com/lockbox-oss/lockbox/api/wire"
	"github.com/lockbox-oss/lockbox/audit"
	"github.com/lockbox-oss/lockbox/grants"
	"github.com/lockbox-oss/lockbox/tenants"
)

// fill sets every field of *p to a value that is not zero, recursively, so
// that a field a conversion forgets shows in the JSON.
func fill(t *testing.T, v reflect.Value, seed string) {
	t.Helper()
	switch {
	case v.Type() == reflect.TypeFor[time.Time]():
		v.Set(reflect.ValueOf(time.Date(2026, 3, 1, 9, 30, 0, 0, time.UTC)))
		return
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString("v-" + seed)
	case reflect.Bool:
		v.SetBool(true)
	case reflect.Int, reflect.Int64:
		v.SetInt(int64(90 * time.Minute))
	case reflect.Pointer:
		v.Set(reflect.New(v.Type().Elem()))
		fill(t, v.Elem(), seed)
	case reflect.Slice:
		v.Set(reflect.MakeSlice(v.Type(), 1, 1))
		fill(t, v.Index(0), seed)
	case reflect.Struct:
		for i := range v.NumField() {
			if f := v.Type().Field(i); f.IsExported() {
				fill(t, v.Field(i), f.Name)
			}
		}
	default:
		t.Fatalf("fill: no value for %s", v.Type())
	}
}

func filled[T any](t *testing.T) T {
	var v T
	fill(t, reflect.ValueOf(&v).Elem(), "x")
	return v
}

func sameJSON(t *testing.T, name string, domain, api any) {
	t.Helper()
	d, err := json.Marshal(domain)
	if err != nil {
		t.Fatal(err)
	}
	a, err := json.Marshal(api)
	if err != nil {
		t.Fatal(err)
	}
	if string(d) != string(a) {
		t.Errorf("%s: the API's JSON differs from the domain's:\ndomain %s\napi    %s", name, d, a)
	}
}

// jsonObject is v as a JSON object, to compare without the fields' order.
func jsonObject(t *testing.T, v any) map[string]any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestWireMatchesDomain: each conversion between the API's bodies and the
// domain's types carries every field, so what the API reads and writes is
// what the domain has. A field added to one side only fails it.
func TestWireMatchesDomain(t *testing.T) {
	r := filled[grants.Request](t)
	sameJSON(t, "Request", r, wireRequest(r))
	sameJSON(t, "RequestList", map[string]any{"requests": []grants.Request{r}}, wire.RequestList{Requests: wireRequests([]grants.Request{r})})
	// EndedAt is the API's alone, derived from the history (grants.EndedAt)
	// for a request that ended: the stored request does not carry it.
	r.State, r.History[0].To = grants.StateRevoked, grants.StateRevoked
	r.History[0].At = r.CreatedAt.Add(time.Hour)
	domain, api := jsonObject(t, r), jsonObject(t, wireRequest(r))
	domain["ended_at"] = r.History[0].At.Format(time.RFC3339)
	if !reflect.DeepEqual(domain, api) {
		t.Errorf("ended request: the API's JSON differs from the domain's with ended_at:\ndomain %v\napi    %v", domain, api)
	}
	in := filled[wire.CreateRequest](t)
	sameJSON(t, "CreateRequest", createInput(in), in)
	tn := filled[tenants.Tenant](t)
	// State is the API's alone, derived from Offboarded: the stored entry
	// does not carry it, so entries an earlier replica reads hold no field
	// it does not know.
	sameJSON(t, "Tenant", struct {
		tenants.Tenant
		State string `json:"state"`
	}{tn, wire.TenantOffboarded}, wireTenant(tn))
	tn.Offboarded = nil
	sameJSON(t, "Tenant", struct {
		tenants.Tenant
		State string `json:"state"`
	}{tn, wire.TenantActive}, wireTenant(tn))
	st := filled[tenants.Settings](t)
	sameJSON(t, "Settings", st, wireSettings(st))
	on := filled[wire.Onboarding](t)
	sameJSON(t, "Onboarding", onboarding(on), on)
	u := filled[wire.TenantUpdate](t)
	sameJSON(t, "TenantUpdate", tenantUpdate(u), u)
	v := filled[audit.Verification](t)
	sameJSON(t, "AuditVerification", v, wireVerification(v))
}

// An empty list is [] on the wire, never null.
func TestWireEmptyLists(t *testing.T) {
	b, _ := json.Marshal(wire.RequestList{Requests: wireRequests(nil)})
	if string(b) != `{"requests":[]}` {
		t.Errorf("no requests = %s", b)
	}
}
