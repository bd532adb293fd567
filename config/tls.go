package config

import (
	"errors"
	"fmt"
	"strings"
)

// Listener is one of the addresses Lockbox listens on, as
// LOCKBOX_TLS_LISTENERS names it.
type Listener string

// The listeners.
const (
	ListenerProxy   Listener = "proxy"
	ListenerAPI     Listener = "api"
	ListenerMetrics Listener = "metrics"
)

// parseListeners reads a LOCKBOX_TLS_LISTENERS list.
func parseListeners(list string) (map[Listener]bool, error) {
	out := map[Listener]bool{}
	for name := range strings.SplitSeq(list, ",") {
		switch l := Listener(strings.TrimSpace(name)); l {
		case ListenerProxy, ListenerAPI, ListenerMetrics:
			out[l] = true
		case "":
		default:
			return nil, fmt.Errorf("%q is not one of proxy, api, metrics", name)
		}
	}
	if len(out) == 0 {
		return nil, errors.New("names no listener; use some of proxy, api, metrics")
	}
	return out, nil
}

// ServesTLS reports whether listener l serves TLS: a certificate is
// configured and LOCKBOX_TLS_LISTENERS names l.
func (c Config) ServesTLS(l Listener) bool {
	if c.TLSCertFile == "" {
		return false
	}
	m, err := parseListeners(c.TLSListeners)
	return err == nil && m[l]
}

// tlsErrors checks the TLS settings together.
func (c Config) tlsErrors() []error {
	var errs []error
	if (c.TLSCertFile == "") != (c.TLSKeyFile == "") {
		errs = append(errs, pairErr("TLSCertFile", "TLSKeyFile", c.TLSCertFile == ""))
	}
	if _, err := parseListeners(c.TLSListeners); err != nil {
		errs = append(errs, &VarError{Var: varName("TLSListeners"), Err: err})
	}
	if c.TLSClientCAFile != "" && c.TLSCertFile != "" && !c.ServesTLS(ListenerAPI) {
		// Client certificates only exist in a TLS handshake.
		errs = append(errs, varErr("TLSClientCAFile", "needs api in LOCKBOX_TLS_LISTENERS (%q)", c.TLSListeners))
	}
	if c.TLSClientCAFile != "" && c.TLSCertFile == "" {
		errs = append(errs, varErr("TLSClientCAFile", "needs LOCKBOX_TLS_CERT_FILE and LOCKBOX_TLS_KEY_FILE: client certificates need TLS on the API"))
	}
	if (c.UpstreamClientCertFile == "") != (c.UpstreamClientKeyFile == "") {
		errs = append(errs, pairErr("UpstreamClientCertFile", "UpstreamClientKeyFile", c.UpstreamClientCertFile == ""))
	}
	if c.UpstreamCAFile != "" || c.UpstreamClientCertFile != "" {
		// A setting that could do nothing is a mistake to point out, not
		// to ignore: the operator believes upstream traffic is verified.
		ups, err := c.UpstreamURLs()
		https := false
		for _, u := range ups {
			https = https || u.Scheme == "https"
		}
		if err == nil && len(ups) > 0 && !https {
			field := "UpstreamCAFile"
			if c.UpstreamCAFile == "" {
				field = "UpstreamClientCertFile"
			}
			errs = append(errs, varErr(field, "no upstream in LOCKBOX_UPSTREAMS is https, so it would never be used"))
		}
	}
	return errs
}

// tlsListenersErrors refuses LOCKBOX_TLS_LISTENERS set without
// LOCKBOX_TLS_CERT_FILE: it would change nothing, every listener speaking
// plain HTTP while the operator believes those it names serve TLS. It
// looks at environ, as shorthandErrors does: the variable has a default,
// so only the environment tells whether someone set it.
func tlsListenersErrors(environ map[string]string) []error {
	if environ[varName("TLSListeners")] != "" && environ[varName("TLSCertFile")] == "" {
		return []error{varErr("TLSListeners", "set, but LOCKBOX_TLS_CERT_FILE is not: without a certificate every listener speaks plain HTTP")}
	}
	return nil
}

// pairErr reports one file of a certificate and key pair set without the
// other.
func pairErr(certField, keyField string, certMissing bool) error {
	if certMissing {
		return varErr(certField, "required with %s", varName(keyField))
	}
	return varErr(keyField, "required with %s", varName(certField))
}

// tlsFileErrors checks that the TLS files named can be read. Whether they
// hold a usable certificate is found out when they are loaded, with a
// message naming the variable.
func (c Config) tlsFileErrors() []error {
	var errs []error
	for _, f := range []struct{ field, path string }{
		{"TLSCertFile", c.TLSCertFile}, {"TLSKeyFile", c.TLSKeyFile}, {"TLSClientCAFile", c.TLSClientCAFile},
		{"UpstreamCAFile", c.UpstreamCAFile}, {"UpstreamClientCertFile", c.UpstreamClientCertFile},
		{"UpstreamClientKeyFile", c.UpstreamClientKeyFile},
	} {
		if f.path == "" {
			continue
		}
		if err := readableFile(f.path); err != nil {
			errs = append(errs, &VarError{Var: varName(f.field), Err: err})
		}
	}
	return errs
}
