package client_test

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"

	"github.com/lockbox-oss/lockbox/api/client"
)

func ExampleClient_ListRequests() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.WriteString(w, `{"requests":[{"id":"r1","tenant":"contoso","service":"exchange","state":"pending_customer","duration":"2h"}]}`)
	}))
	defer srv.Close()

	c, err := client.New(srv.URL, "operator-token")
	if err != nil {
		fmt.Println(err)
		return
	}
	reqs, err := c.ListRequests(context.Background(), client.ListOptions{Tenant: "contoso", State: "pending_customer"})
	if err != nil {
		fmt.Println(err)
		return
	}
	for _, r := range reqs {
		fmt.Println(r.ID, r.Tenant, r.Service, r.State, r.Duration)
	}
	// Output: r1 contoso exchange pending_customer 2h
}

func ExampleClient_ListRequestsPage() {
	// A server with two pages: the first names the second.
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("cursor") == "" {
			_, _ = io.WriteString(w, `{"requests":[{"id":"r2","state":"approved"}],"next_cursor":"bmV4dA"}`)
			return
		}
		_, _ = io.WriteString(w, `{"requests":[{"id":"r1","state":"denied"}]}`)
	}))
	defer srv.Close()

	c, err := client.New(srv.URL, "manager-token")
	if err != nil {
		fmt.Println(err)
		return
	}
	opts := client.ListOptions{Tenant: "contoso", Limit: 1}
	for {
		page, err := c.ListRequestsPage(context.Background(), opts)
		if err != nil {
			fmt.Println(err)
			return
		}
		for _, r := range page.Requests {
			fmt.Println(r.ID, r.State)
		}
		if page.NextCursor == "" {
			break
		}
		opts.Cursor = page.NextCursor // same filters, next page
	}
	// Output:
	// r2 approved
	// r1 denied
}

func ExampleAPIError() {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusForbidden)
		_, _ = io.WriteString(w, `{"error":{"code":"self_approval","message":"the requester can't approve their own request"}}`)
	}))
	defer srv.Close()

	c, _ := client.New(srv.URL, "manager-token")
	_, err := c.Approve(context.Background(), "r1", "ok")
	var apiErr *client.APIError
	if errors.As(err, &apiErr) {
		fmt.Println(apiErr.Status, apiErr.Code)
		fmt.Println(err)
	}
	// Output:
	// 403 self_approval
	// the requester can't approve their own request (self_approval)
}
