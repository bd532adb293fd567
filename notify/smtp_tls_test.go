package notify_test

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"log/slog"
	"math/big"
	"net"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/lockbox-oss/lockbox/notify"
)

// selfSigned returns a TLS configuration whose certificate, for
// 127.0.0.1, no system trusts.
func selfSigned(t *testing.T) *tls.Config {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "relay"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, KeyUsage: x509.KeyUsageDigitalSignature,
		ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	return &tls.Config{Certificates: []tls.Certificate{{Certificate: [][]byte{der}, PrivateKey: key}}, MinVersion: tls.VersionTLS12}
}

// TestSMTPUntrustedCertificateShowsAtOnce: a mail server whose STARTTLS
// certificate Lockbox does not trust (a private CA not installed, a
// certificate for another name, or someone in between) fails every
// message until the operator acts, as a server refusing Lockbox for good
// does. It is retried like an outage, since a fixed certificate then
// delivers everything, but the first attempt already says so at error
// level and counts it as refused, rather than as an ordinary error for
// the two hours of the retries.
func TestSMTPUntrustedCertificateShowsAtOnce(t *testing.T) {
	for _, policy := range []notify.StartTLSPolicy{notify.StartTLSOpportunistic, notify.StartTLSMandatory} {
		t.Run(string(policy), func(t *testing.T) {
			e := newEnv(t)
			e.create(t, operator(0)) // request.created: one e-mail to the manager
			srv := startSMTP(t)
			srv.stop()
			srv.tls = selfSigned(t)
			srv.start()
			var logs logBuffer
			reg := prometheus.NewRegistry()
			w := newWorker(t, notify.Config{Redis: e.rdb, Now: e.clock.Now, Consumer: "a", MaxAttempts: 16,
				Registerer: reg, Logger: slog.New(slog.NewJSONHandler(&logs, nil)),
				ManagerAddresses: []string{"mary@provider.example"},
				SMTP:             &notify.SMTPConfig{Addr: srv.addr, From: "lockbox@provider.example", StartTLS: policy, Timeout: 10 * time.Second}})
			ctx := context.Background()
			if _, err := w.Tick(ctx); err != nil {
				t.Fatal(err)
			}
			if n := len(srv.messages()); n != 0 {
				t.Fatalf("%d messages sent over a connection whose certificate is not trusted", n)
			}
			wantKeptForRetry(t, e, w, "message")
			levels := logLevels(t, &logs, "smtp")
			if len(levels) != 1 || levels[0] != "ERROR" {
				t.Errorf("SMTP failure logged at %v, want once at ERROR", levels)
			}
			wantCountedAs(t, reg, "smtp", "refused", "error")
		})
	}
}
