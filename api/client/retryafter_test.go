package client

import (
	"context"
	"errors"
	"net/http"
	"testing"
	"time"
)

// TestAPIErrorRetryAfter: an answer's Retry-After in seconds is the
// APIError's RetryAfter; a date, a bad value or none leaves it zero.
func TestAPIErrorRetryAfter(t *testing.T) {
	for _, c := range []struct {
		header string
		want   time.Duration
	}{
		{"10", 10 * time.Second},
		{" 120 ", 2 * time.Minute},
		{"0", 0},
		{"-5", 0},
		{"Wed, 21 Oct 2037 07:28:00 GMT", 0},
		{"", 0},
	} {
		h := http.Header{}
		if c.header != "" {
			h.Set("Retry-After", c.header)
		}
		cl := newClient(t, &fake{status: http.StatusTooManyRequests, header: h,
			body: `{"error":{"code":"too_many_reads","message":"retry later"}}`})
		_, err := cl.GetRequest(context.Background(), "r1")
		var apiErr *APIError
		if !errors.As(err, &apiErr) {
			t.Fatalf("Retry-After %q: err = %v, want *APIError", c.header, err)
		}
		if apiErr.RetryAfter != c.want {
			t.Errorf("Retry-After %q: RetryAfter %v, want %v", c.header, apiErr.RetryAfter, c.want)
		}
	}
}
