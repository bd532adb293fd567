package config

import (
	"path/filepath"
	"strings"
	"testing"
)

func TestTLSSettings(t *testing.T) {
	cert, key, ca := writeFile(t, "tls.crt", "cert"), writeFile(t, "tls.key", "key"), writeFile(t, "ca.crt", "ca")
	missing := filepath.Join(t.TempDir(), "missing")
	tests := []struct {
		name string
		env  map[string]string
		want []string // substrings of the error; none means valid
		// tls lists the listeners that serve TLS when the settings are valid.
		tls []Listener
	}{
		{name: "plain HTTP", env: map[string]string{}},
		{name: "every listener", env: map[string]string{"LOCKBOX_TLS_CERT_FILE": cert, "LOCKBOX_TLS_KEY_FILE": key},
			tls: []Listener{ListenerProxy, ListenerAPI, ListenerMetrics}},
		{name: "metrics left plain", env: map[string]string{"LOCKBOX_TLS_CERT_FILE": cert, "LOCKBOX_TLS_KEY_FILE": key, "LOCKBOX_TLS_LISTENERS": "proxy, api"},
			tls: []Listener{ListenerProxy, ListenerAPI}},
		{name: "client CA", env: map[string]string{"LOCKBOX_TLS_CERT_FILE": cert, "LOCKBOX_TLS_KEY_FILE": key, "LOCKBOX_TLS_CLIENT_CA_FILE": ca},
			tls: []Listener{ListenerProxy, ListenerAPI, ListenerMetrics}},
		{name: "cert without key", env: map[string]string{"LOCKBOX_TLS_CERT_FILE": cert},
			want: []string{"LOCKBOX_TLS_KEY_FILE: required with LOCKBOX_TLS_CERT_FILE"}},
		{name: "key without cert", env: map[string]string{"LOCKBOX_TLS_KEY_FILE": key},
			want: []string{"LOCKBOX_TLS_CERT_FILE: required with LOCKBOX_TLS_KEY_FILE"}},
		{name: "unknown listener", env: map[string]string{"LOCKBOX_TLS_CERT_FILE": cert, "LOCKBOX_TLS_KEY_FILE": key, "LOCKBOX_TLS_LISTENERS": "proxy,console"},
			want: []string{`LOCKBOX_TLS_LISTENERS: "console" is not one of proxy, api, metrics`}},
		// Set without a certificate it would change nothing: every
		// listener would speak plain HTTP while the operator believes
		// those it names serve TLS.
		{name: "listeners without a certificate", env: map[string]string{"LOCKBOX_TLS_LISTENERS": "proxy,api"},
			want: []string{"LOCKBOX_TLS_LISTENERS: set, but LOCKBOX_TLS_CERT_FILE is not"}},
		{name: "no listener", env: map[string]string{"LOCKBOX_TLS_LISTENERS": ","},
			want: []string{"LOCKBOX_TLS_LISTENERS: names no listener"}},
		{name: "client CA without TLS", env: map[string]string{"LOCKBOX_TLS_CLIENT_CA_FILE": ca},
			want: []string{"LOCKBOX_TLS_CLIENT_CA_FILE: needs LOCKBOX_TLS_CERT_FILE"}},
		{name: "client CA with the API on plain HTTP", env: map[string]string{"LOCKBOX_TLS_CERT_FILE": cert, "LOCKBOX_TLS_KEY_FILE": key,
			"LOCKBOX_TLS_LISTENERS": "proxy", "LOCKBOX_TLS_CLIENT_CA_FILE": ca},
			want: []string{"LOCKBOX_TLS_CLIENT_CA_FILE: needs api in LOCKBOX_TLS_LISTENERS"}},
		{name: "missing files", env: map[string]string{"LOCKBOX_TLS_CERT_FILE": missing, "LOCKBOX_TLS_KEY_FILE": missing, "LOCKBOX_UPSTREAM_CA_FILE": missing,
			"LOCKBOX_UPSTREAMS": "exchange=https://exchange.internal"},
			want: []string{"LOCKBOX_TLS_CERT_FILE: ", "LOCKBOX_TLS_KEY_FILE: ", "LOCKBOX_UPSTREAM_CA_FILE: ", "no such file"}},
		{name: "upstream CA", env: map[string]string{"LOCKBOX_UPSTREAM_CA_FILE": ca, "LOCKBOX_UPSTREAMS": "exchange=https://exchange.internal"}},
		{name: "upstream mTLS", env: map[string]string{"LOCKBOX_UPSTREAM_CLIENT_CERT_FILE": cert, "LOCKBOX_UPSTREAM_CLIENT_KEY_FILE": key,
			"LOCKBOX_UPSTREAMS": "exchange=http://127.0.0.1:9001,sharepoint=https://sp.internal"}},
		{name: "upstream client cert without key", env: map[string]string{"LOCKBOX_UPSTREAM_CLIENT_CERT_FILE": cert, "LOCKBOX_UPSTREAMS": "exchange=https://exchange.internal"},
			want: []string{"LOCKBOX_UPSTREAM_CLIENT_KEY_FILE: required with LOCKBOX_UPSTREAM_CLIENT_CERT_FILE"}},
		{name: "upstream CA without an https upstream", env: map[string]string{"LOCKBOX_UPSTREAM_CA_FILE": ca, "LOCKBOX_UPSTREAMS": "exchange=http://127.0.0.1:9001"},
			want: []string{"LOCKBOX_UPSTREAM_CA_FILE: no upstream in LOCKBOX_UPSTREAMS is https"}},
		{name: "upstream client cert without an https upstream", env: map[string]string{"LOCKBOX_UPSTREAM_CLIENT_CERT_FILE": cert,
			"LOCKBOX_UPSTREAM_CLIENT_KEY_FILE": key, "LOCKBOX_UPSTREAMS": "exchange=http://127.0.0.1:9001"},
			want: []string{"LOCKBOX_UPSTREAM_CLIENT_CERT_FILE: no upstream in LOCKBOX_UPSTREAMS is https"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := LoadFor(tt.env, ModeDev)
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatal(err)
				}
				for _, l := range []Listener{ListenerProxy, ListenerAPI, ListenerMetrics} {
					want := false
					for _, w := range tt.tls {
						want = want || w == l
					}
					if c.ServesTLS(l) != want {
						t.Errorf("ServesTLS(%s) = %v, want %v", l, !want, want)
					}
				}
				return
			}
			if err == nil {
				t.Fatalf("no error, want %q", tt.want)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q does not contain %q", err, w)
				}
			}
		})
	}
}
