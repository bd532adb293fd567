package grants

import (
	"encoding/json"
	"testing"
	"time"
)

func TestDurationString(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{5 * time.Hour, "5h"},
		{90 * time.Minute, "1h30m"},
		{45 * time.Minute, "45m"},
		{time.Hour + 30*time.Second, "1h0m30s"},
		{90 * time.Second, "1m30s"},
		{30 * time.Second, "30s"},
		{1500 * time.Millisecond, "1.5s"},
		// ASCII, unlike time.Duration's "1µs": an error message echoes it.
		{time.Microsecond, "1us"},
		{1500 * time.Nanosecond, "1.5us"},
		{-time.Microsecond, "-1us"},
		{time.Nanosecond, "1ns"},
		{0, "0s"},
		{-2 * time.Hour, "-2h"},
	}
	for _, tt := range tests {
		d := Duration(tt.d)
		if got := d.String(); got != tt.want {
			t.Errorf("Duration(%v).String() = %q, want %q", tt.d, got, tt.want)
		}
		// The short form is still a Go duration: JSON round-trips.
		b, err := json.Marshal(d)
		if err != nil || string(b) != `"`+tt.want+`"` {
			t.Errorf("json.Marshal(%v) = %s, %v", tt.d, b, err)
		}
		var back Duration
		if err := json.Unmarshal(b, &back); err != nil || back != d {
			t.Errorf("json.Unmarshal(%s) = %v, %v; want %v", b, back, err, tt.d)
		}
	}
}
