package client

import (
	"context"
	"strings"
	"testing"

	"github.com/lockbox-oss/lockbox/api/wire"
)

// TestBodyStringsMustBeUTF8: json.Marshal turns each byte that is not
// UTF-8 into U+FFFD without a word, so a reason or a comment given in
// Latin-1 was filed as other text than the caller's, the API none the
// wiser. The client refuses such a body before anything is sent, naming
// the field; UTF-8 text is sent as it is.
func TestBodyStringsMustBeUTF8(t *testing.T) {
	ctx := context.Background()
	for _, c := range []struct {
		name  string
		call  func(*Client) error
		field string
	}{
		{"reason", func(c *Client) error {
			_, err := c.CreateRequest(ctx, wire.CreateRequest{Tenant: "contoso", Service: "exchange", ServiceRequest: "SR-1", Reason: "r\xe9paration"})
			return err
		}, "reason"},
		{"activity", func(c *Client) error {
			_, err := c.CreateRequest(ctx, wire.CreateRequest{Tenant: "contoso", Reason: "r", Activities: []string{"Get-Mailbox", "Get-\xff"}})
			return err
		}, "activities[1]"},
		{"comment", func(c *Client) error {
			_, err := c.Approve(ctx, "0190a1b2-0000-7000-8000-000000000001", "d\xe9j\xe0 vu")
			return err
		}, "comment"},
		{"notification address", func(c *Client) error {
			_, err := c.PutSettings(ctx, "contoso", wire.Settings{NotificationAddresses: []string{"ops\xe9@contoso.example"}})
			return err
		}, "notification_addresses[0]"},
	} {
		t.Run(c.name, func(t *testing.T) {
			f := &fake{body: requestJSON}
			err := c.call(newClient(t, f))
			if err == nil || !strings.Contains(err.Error(), c.field+" is not UTF-8 text") {
				t.Errorf("error %v, want one naming %s", err, c.field)
			}
			f.mu.Lock()
			defer f.mu.Unlock()
			if len(f.calls) != 0 {
				t.Errorf("sent %+v", f.calls)
			}
		})
	}
	f := &fake{body: requestJSON}
	if _, err := newClient(t, f).Approve(ctx, "0190a1b2-0000-7000-8000-000000000001", "déjà vu"); err != nil {
		t.Fatal(err)
	}
	if got := f.last(t).Body; got != `{"comment":"déjà vu"}` {
		t.Errorf("sent %s", got)
	}
}
