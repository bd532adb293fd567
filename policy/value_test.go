package policy

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/open-policy-agent/opa/v1/ast"
	"github.com/open-policy-agent/opa/v1/util"
)

// inputValueJSON is the obvious way to build the input: through JSON. It is
// the reference inputValue must agree with, and what BenchmarkInputBuilder
// compares it to.
func inputValueJSON(in *Input) (ast.Value, error) {
	b, err := json.Marshal(in)
	if err != nil {
		return nil, err
	}
	var doc any
	if err := util.UnmarshalJSON(b, &doc); err != nil {
		return nil, err
	}
	return ast.InterfaceToValue(doc)
}

// Bits of FuzzInputBuilder's shape argument.
const (
	shapeNoGrant = 1 << iota
	shapeNilRoles
	shapeNilActivities
	shapeTwoRoles
	shapeTwoActivities
)

func fuzzInput(s []string, lockbox bool, shape uint8) Input {
	in := Input{
		Operator: Operator{ID: s[0]},
		Call: Call{
			Method: s[1], Path: s[2], Service: s[3], Activity: s[4],
			Access: s[5], Tenant: s[6], ClientIP: s[7],
		},
		Tenant: Tenant{ID: s[8], LockboxEnabled: lockbox},
		Now:    s[9],
	}
	switch {
	case shape&shapeNilRoles != 0:
	case shape&shapeTwoRoles != 0:
		in.Operator.Roles = []string{s[10], s[11]}
	default:
		in.Operator.Roles = []string{}
	}
	if shape&shapeNoGrant == 0 {
		g := &Grant{
			RequestID: s[12], Tenant: s[13], Operator: s[14], Service: s[15],
			Approver: s[16], ApprovedAt: s[17], ExpiresAt: s[18],
		}
		switch {
		case shape&shapeNilActivities != 0:
		case shape&shapeTwoActivities != 0:
			g.Activities = []string{s[10], s[19]}
		default:
			g.Activities = []string{}
		}
		in.Grant = g
	}
	return in
}

// FuzzInputBuilder holds inputValue to what the policy would see if the
// input went through JSON: the same AST value, and the same JSON back.
func FuzzInputBuilder(f *testing.F) {
	f.Add("op-1", "GET", "/tenants/contoso/mailboxes", "exchange", "Get-Mailbox", "read", "contoso",
		"192.0.2.10", "2026-03-01T11:00:00Z", "operator", "req-1", "Get-Mailbox", true, uint8(0))
	f.Add("", "", "", "", "", "", "", "", "", "", "", "", false, uint8(shapeNoGrant|shapeNilRoles))
	f.Add("op\xff", "G\xe2\x82", "/t/\u2028", "ex\x00", "<Get>&", "\"", "\\", "\U0001F600", "2026-03-01T11:00:00.5+02:00",
		"\xed\xa0\x80", "req", "Remove-\xc0\xafMessage", false, uint8(shapeTwoRoles|shapeTwoActivities))
	f.Add("a", "b", "c", "d", "e", "f", "g", "h", "i", "j", "k", "l", true, uint8(shapeNilActivities))
	f.Fuzz(func(t *testing.T, a, b, c, d, e, g, h, i, j, k, l, m string, lockbox bool, shape uint8) {
		// Twenty string fields from twelve arguments: reuse some, so the
		// corpus stays small but every field varies.
		s := []string{a, b, c, d, e, g, h, i, j, k, l, m, l + a, h, a, d, k + m, j, j + b, m}
		in := fuzzInput(s, lockbox, shape)

		got := inputValue(&in)
		want, err := inputValueJSON(&in)
		if err != nil {
			t.Fatal(err)
		}
		if got.Compare(want) != 0 {
			t.Fatalf("inputValue differs from the JSON round trip:\n got %v\nwant %v", got, want)
		}

		gotDoc, err := ast.JSON(got)
		if err != nil {
			t.Fatal(err)
		}
		gotJSON, err := json.Marshal(gotDoc)
		if err != nil {
			t.Fatal(err)
		}
		var doc any
		raw, err := json.Marshal(in)
		if err != nil {
			t.Fatal(err)
		}
		if err := util.UnmarshalJSON(raw, &doc); err != nil {
			t.Fatal(err)
		}
		wantJSON, err := json.Marshal(doc) // keys sorted, as for gotDoc
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(gotJSON, wantJSON) {
			t.Fatalf("JSON of inputValue differs from json.Marshal(in):\n got %s\nwant %s", gotJSON, wantJSON)
		}
	})
}
