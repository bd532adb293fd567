package server_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/pem"
	"os"
	"testing"

	"github.com/lockbox-oss/lockbox/audit"
	"github.com/lockbox-oss/lockbox/audit/record"
	"github.com/lockbox-oss/lockbox/grantsig"
	"github.com/lockbox-oss/lockbox/identity"
	"github.com/lockbox-oss/lockbox/internal/keys"
)

var auditReader = identity.Principal{Subject: "sue", Roles: []identity.Role{identity.RoleAuditReader}}

func appendRecord(t *testing.T, lb *lockbox) {
	t.Helper()
	if _, err := lb.srv.Audit.Append(context.Background(), record.Record{Operation: "Get-Mailbox", LockboxTenant: "contoso", Workload: "exchange",
		RecordType: record.RecordTypeDataCenterSecurityCmdlet, UserId: record.OperatorUserID}); err != nil {
		t.Fatal(err)
	}
}

func verifyContoso(t *testing.T, lb *lockbox) audit.Verification {
	t.Helper()
	v, err := lb.srv.Audit.Verify(context.Background(), auditReader, "contoso")
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// TestSealsFollowTheSigningKey: the proxy seals the chains with its
// signing key, checked against the keys it publishes; after a reload
// (SIGHUP) replaced the key, with the new one.
func TestSealsFollowTheSigningKey(t *testing.T) {
	ctx := context.Background()
	lb := start(t, map[string]string{"LOCKBOX_UPSTREAMS": "exchange=http://127.0.0.1:1"})
	if n, sealing, err := lb.srv.SealAll(ctx); err != nil || !sealing || n != 1 {
		t.Fatalf("sealed %d (sealing %t), %v; want contoso's chain sealed", n, sealing, err)
	}
	first, err := grantsig.LoadPrivateKey(lb.cfg.ProxySigningKeyFile)
	if err != nil {
		t.Fatal(err)
	}
	kid, _ := grantsig.KeyID(first.Public())
	if v := verifyContoso(t, lb); !v.OK || v.Seal != audit.SealVerified || v.SealKeyID != kid || v.UnsealedRecords != 0 {
		t.Fatalf("%+v, want sealed by %s", v, kid)
	}

	_, next, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(next)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(lb.cfg.ProxySigningKeyFile, pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: der}), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := lb.srv.Reload(); err != nil {
		t.Fatalf("Reload: %v\n%s", err, lb.logs)
	}
	appendRecord(t, lb)
	if n, _, err := lb.srv.SealAll(ctx); err != nil || n != 1 {
		t.Fatalf("sealed %d, %v after the reload", n, err)
	}
	kid, _ = grantsig.KeyID(next.Public())
	if v := verifyContoso(t, lb); !v.OK || v.Seal != audit.SealVerified || v.SealKeyID != kid {
		t.Fatalf("%+v, want sealed by the reloaded key %s", v, kid)
	}
}

// TestSealingOff: LOCKBOX_AUDIT_SEAL_INTERVAL=0 writes no seal, and
// verification says the chain has none.
func TestSealingOff(t *testing.T) {
	lb := start(t, map[string]string{"LOCKBOX_UPSTREAMS": "exchange=http://127.0.0.1:1", "LOCKBOX_AUDIT_SEAL_INTERVAL": "0"})
	appendRecord(t, lb)
	if _, sealing, _ := lb.srv.SealAll(context.Background()); sealing {
		t.Fatal("the server seals with sealing off")
	}
	if n := lb.srv.Redis.Exists(context.Background(), keys.AuditSeal("contoso")).Val(); n != 0 {
		t.Fatal("a seal was written with sealing off")
	}
	if v := verifyContoso(t, lb); !v.OK || v.Seal != audit.SealNone || v.UnsealedRecords != v.Records || v.Records != 2 {
		t.Fatalf("%+v, want an intact chain, none of it sealed", v)
	}
}
