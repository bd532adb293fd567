package grantsig_test

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"testing"
	"time"

	"github.com/lockbox-oss/lockbox/grantsig"
	voi "github.com/oasisprotocol/curve25519-voi/primitives/ed25519"
)

// BenchmarkAssertion measures what the proxy pays per call: appending one
// call's assertion to a grant's template, into a reused buffer. The
// difference between the algorithms is almost all the signature (or, for
// HS256, the MAC).
func BenchmarkAssertion(b *testing.B) {
	c := callClaims()
	for _, alg := range []string{grantsig.AlgEdDSA, grantsig.AlgES256, grantsig.AlgHS256} {
		b.Run(alg, func(b *testing.B) {
			var signer *grantsig.Signer
			if alg == grantsig.AlgHS256 {
				signer = secretSigner(b, newSecret(b))
			} else {
				signer = newSigner(b, keys(b)[alg])
			}
			tpl, err := signer.Template(grantsig.GrantClaims{
				Issuer: c.Issuer, Subject: c.Subject, Audience: c.Audience,
				Tenant: c.Tenant, Service: c.Service, RequestID: c.RequestID, NotAfter: now.Add(time.Hour),
			})
			if err != nil {
				b.Fatal(err)
			}
			call := grantsig.CallClaims{
				AuditID: c.AuditID, Activity: c.Activity, Method: c.Method, Path: "/tenants/contoso/mailboxes/alice/messages",
				IssuedAt: now, ExpiresAt: now.Add(30 * time.Second),
			}
			buf := make([]byte, 0, 1024)
			b.ReportAllocs()
			for b.Loop() {
				if buf, err = tpl.Append(buf[:0], call); err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(len(buf)), "bytes/assertion")
		})
	}
}

// BenchmarkSignature compares the signatures alone over an input the size
// of an assertion's: Ed25519 by curve25519-voi (what the Signer uses) and by
// crypto/ed25519, and ECDSA P-256 as JWS needs it (SHA-256, SignASN1, then
// r||s).
func BenchmarkSignature(b *testing.B) {
	input := make([]byte, 560)
	_, k, _ := ed25519.GenerateKey(rand.Reader)
	b.Run(grantsig.AlgEdDSA+"/voi", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = voi.Sign(voi.PrivateKey(k), input)
		}
	})
	b.Run(grantsig.AlgEdDSA+"/crypto-ed25519", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_ = ed25519.Sign(k, input)
		}
	})
	b.Run(grantsig.AlgES256, func(b *testing.B) {
		k := keys(b)[grantsig.AlgES256].(*ecdsa.PrivateKey)
		b.ReportAllocs()
		for b.Loop() {
			d := sha256.Sum256(input)
			if _, err := ecdsa.SignASN1(rand.Reader, k, d[:]); err != nil {
				b.Fatal(err)
			}
		}
	})
}
