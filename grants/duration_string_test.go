package grants_test

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/lockbox-oss/lockbox/grants"
)

// TestDurationStringIsShort: people read "5h", not time.Duration's
// "5h0m0s", in e-mails, tables and JSON alike (time.ParseDuration reads it).
func TestDurationStringIsShort(t *testing.T) {
	for d, want := range map[time.Duration]string{
		5 * time.Hour: "5h", 90 * time.Minute: "1h30m", 45 * time.Minute: "45m", 4 * time.Hour: "4h",
		70 * time.Minute: "1h10m", 10 * time.Minute: "10m", 90 * time.Second: "1m30s", 30 * time.Second: "30s", 0: "0s",
	} {
		if got := grants.Duration(d).String(); got != want {
			t.Errorf("Duration(%v).String() = %q, want %q", d, got, want)
		}
	}
	if b, _ := json.Marshal(grants.Duration(5 * time.Hour)); string(b) != `"5h"` {
		t.Errorf("JSON = %s", b)
	}
}
