package readlimit_test

import (
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/lockbox-oss/lockbox/config"
	"github.com/lockbox-oss/lockbox/identity"
	"github.com/lockbox-oss/lockbox/internal/readlimit"
)

var (
	admin       = identity.Principal{Subject: "admin@contoso.example", TenantID: "contoso"}
	other       = identity.Principal{Subject: "admin@fabrikam.example", TenantID: "fabrikam"}
	auditor     = identity.Principal{Subject: "audrey"}
	sameSubject = identity.Principal{Subject: "admin@contoso.example", TenantID: "fabrikam"}
)

func ExampleLimiter_Acquire() {
	l, _ := readlimit.New(1, 16)
	release, err := l.Acquire(admin)
	fmt.Println(err)
	_, err = l.Acquire(admin)
	fmt.Println(err)
	release()
	release() // a second call gives back nothing more
	_, err = l.Acquire(admin)
	fmt.Println(err)
	// Output:
	// <nil>
	// readlimit: the caller runs as many long reads as it may
	// <nil>
}

// TestLimiterBounds: each caller (tenant and subject) has its own bound,
// all callers together one more; a released slot is free again, once.
func TestLimiterBounds(t *testing.T) {
	l, err := readlimit.New(2, 5)
	if err != nil {
		t.Fatal(err)
	}
	take := func(p identity.Principal, want error) func() {
		t.Helper()
		release, err := l.Acquire(p)
		if !errors.Is(err, want) || (err == nil) != (release != nil) {
			t.Fatalf("Acquire(%v) = %v, want %v", p, err, want)
		}
		return release
	}
	a1 := take(admin, nil)
	take(admin, nil)
	take(admin, readlimit.ErrCallerBusy)
	// The same subject in another tenant is another caller.
	take(sameSubject, nil)
	take(other, nil)
	take(auditor, nil)
	take(auditor, readlimit.ErrReplicaBusy)
	// At both bounds, the caller's own is named.
	take(admin, readlimit.ErrCallerBusy)
	a1()
	a1()
	take(other, nil)
	take(admin, readlimit.ErrReplicaBusy)
}

// TestLimiterConcurrent: concurrent takers never hold more than the bounds.
func TestLimiterConcurrent(t *testing.T) {
	l, err := readlimit.New(3, 4)
	if err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	held, most := 0, 0
	var wg sync.WaitGroup
	for i := range 8 {
		p := []identity.Principal{admin, other}[i%2]
		wg.Go(func() {
			for range 200 {
				release, err := l.Acquire(p)
				if err != nil {
					continue
				}
				mu.Lock()
				held++
				most = max(most, held)
				mu.Unlock()
				mu.Lock()
				held--
				mu.Unlock()
				release()
			}
		})
	}
	wg.Wait()
	if most > 4 {
		t.Errorf("%d reads held at once, bound 4", most)
	}
	for range 3 {
		if _, err := l.Acquire(admin); err != nil {
			t.Fatalf("after every release: %v", err)
		}
	}
}

func TestNewRefusesNoRoom(t *testing.T) {
	for _, b := range [][2]int{{0, 1}, {1, 0}, {-1, 5}} {
		if _, err := readlimit.New(b[0], b[1]); err == nil {
			t.Errorf("New(%d, %d) accepted", b[0], b[1])
		}
	}
}

// TestDefaultsAreConfigs: lockbox serve takes its bounds from
// LOCKBOX_AUDIT_READS_PER_CALLER and LOCKBOX_AUDIT_READS, whose defaults
// must be the ones the API and the admin center fall back to, and that
// README and openapi.yaml state.
func TestDefaultsAreConfigs(t *testing.T) {
	c, err := config.Load(nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.AuditReadsPerCaller != readlimit.DefaultPerCaller || c.AuditReads != readlimit.DefaultTotal {
		t.Errorf("config's defaults are %d per caller and %d in all; readlimit's %d and %d",
			c.AuditReadsPerCaller, c.AuditReads, readlimit.DefaultPerCaller, readlimit.DefaultTotal)
	}
}
