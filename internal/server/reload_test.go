package server_test

import (
	"regexp"
	"strings"
	"testing"

	"github.com/lockbox-oss/lockbox/internal/tlstest"
)

// TestReloadReadsCertificatesAtOnce: Reload (what "lockbox serve" does on
// SIGHUP) serves a renewed listener certificate to the next connection at
// once, with the check interval not yet passed, and logs a line for each
// certificate it read. A broken pair is refused with an error line naming
// its file, and the last good certificate keeps serving.
func TestReloadReadsCertificatesAtOnce(t *testing.T) {
	serving := tlstest.NewCA(t, "lockbox serving CA")
	proxyClients := tlstest.NewCA(t, "proxy clients CA")
	first := serving.Server(t, "lockbox")
	listenerFiles := serving.WriteFiles(t, first)
	proxyFiles := proxyClients.WriteFiles(t, proxyClients.Client(t, "lockbox-proxy"))
	lb := start(t, map[string]string{
		"LOCKBOX_TLS_CERT_FILE":             listenerFiles.CertFile,
		"LOCKBOX_TLS_KEY_FILE":              listenerFiles.KeyFile,
		"LOCKBOX_UPSTREAMS":                 "exchange=https://127.0.0.1:1",
		"LOCKBOX_UPSTREAM_CLIENT_CERT_FILE": proxyFiles.CertFile,
		"LOCKBOX_UPSTREAM_CLIENT_KEY_FILE":  proxyFiles.KeyFile,
	})
	client := proxyClients.Client(t, "probe").TLS

	second := serving.Server(t, "lockbox")
	listenerFiles.Update(t, second.CertPEM, second.KeyPEM, serving.PEM)
	if err := lb.srv.Reload(); err != nil {
		t.Fatalf("Reload: %v\n%s", err, lb.logs)
	}
	if got := servedSerial(t, lb.srv.ProxyAddr(), serving.Pool(), client); got != second.Cert.SerialNumber.String() {
		t.Errorf("after Reload the proxy serves serial %s, want the renewed %s", got, second.Cert.SerialNumber)
	}
	logs := lb.logs.String()
	for _, want := range []string{
		`level=INFO msg="TLS certificate reloaded" component=tls setting="LOCKBOX_TLS_CERT_FILE, LOCKBOX_TLS_KEY_FILE" cert_file=` + listenerFiles.CertFile + ` changed=true`,
		`level=INFO msg="TLS certificate reloaded" component=tls setting="LOCKBOX_UPSTREAM_CLIENT_CERT_FILE, LOCKBOX_UPSTREAM_CLIENT_KEY_FILE" cert_file=` + proxyFiles.CertFile + ` changed=false`,
		`level=WARN msg="SIGHUP re-reads only`,
	} {
		if !strings.Contains(logs, want) {
			t.Errorf("the logs lack %s:\n%s", want, logs)
		}
	}

	listenerFiles.Update(t, first.CertPEM, second.KeyPEM, serving.PEM)
	err := lb.srv.Reload()
	if err == nil || !strings.Contains(err.Error(), listenerFiles.CertFile) {
		t.Errorf("Reload of a broken pair: %v, want an error naming %s", err, listenerFiles.CertFile)
	}
	if got := servedSerial(t, lb.srv.ProxyAddr(), serving.Pool(), client); got != second.Cert.SerialNumber.String() {
		t.Errorf("after Reload of a broken pair the proxy serves serial %s, want still %s", got, second.Cert.SerialNumber)
	}
	refused := regexp.MustCompile(`level=ERROR msg="TLS certificate reload failed; still serving the previous certificate" .*cert_file=` + regexp.QuoteMeta(listenerFiles.CertFile))
	if !refused.MatchString(lb.logs.String()) {
		t.Errorf("no error line naming the broken file:\n%s", lb.logs)
	}
}
