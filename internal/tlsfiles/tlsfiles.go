// Package tlsfiles turns certificate files into the TLS configurations of
// Lockbox's listeners and of the proxy's connections to upstreams, and keeps
// serving the newest usable certificate when its files change — cert-manager
// renewing a Secret that the kubelet swaps in place — without a restart.
//
// A KeyPair re-reads its two files during a handshake, at most once per
// check interval, so an idle process does no work and a busy one reads two
// small files a second. A new pair that can't be used (half written, a key
// that doesn't match, garbage) is refused with one error log line, and the
// last good pair keeps serving: a bad rotation must not take the listeners
// down. So is a new certificate that has already expired, which every
// client would refuse.
//
// CA files (client CAs of the API, roots that verify upstreams) are read
// once, at start-up: CAs are long-lived, and re-reading them would mean
// verifying peers by hand instead of by crypto/tls.
//
// The package knows nothing of HTTP or of Lockbox's configuration;
// internal/server hands it file names.
package tlsfiles

import (
	"bytes"
	"crypto/sha256"
	"crypto/tls"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultCheckInterval is how often, at most, a KeyPair looks at its files.
// cert-manager renews well before expiry, so a second's delay costs nothing.
const DefaultCheckInterval = time.Second

// maxFileSize bounds what is read from a certificate, key or CA file: a
// chain is a few KiB, and a wrong path must not make the process read a
// disk image.
const maxFileSize = 1 << 20

// MinVersion is the oldest TLS version Lockbox speaks, as server and as
// client.
const MinVersion = tls.VersionTLS12

// PairConfig names a certificate's files.
type PairConfig struct {
	// CertFile is the PEM certificate chain, leaf first; KeyFile its PEM
	// private key.
	CertFile, KeyFile string
	// Setting names where the files were configured (e.g.
	// LOCKBOX_TLS_CERT_FILE), in errors and log lines.
	Setting string
	// CheckInterval is how often, at most, the files are re-read;
	// DefaultCheckInterval when zero, every handshake when negative.
	CheckInterval time.Duration
	// Now is the clock of the check interval; time.Now when nil.
	Now func() time.Time
	// Logger receives a line per rotation and per refused pair; discards
	// when nil.
	Logger *slog.Logger
}

// KeyPair is a certificate and key read from files, re-read when they
// change. It is safe for concurrent use.
type KeyPair struct {
	cfg PairConfig
	cur atomic.Pointer[pair]
	// due is when the files may next be read, in Unix nanoseconds.
	due atomic.Int64
	// mu makes one handshake read the files while the others go on with
	// the current pair.
	mu sync.Mutex
	// refused is the fingerprint of the contents (or the read error) last
	// refused, so a broken pair is logged once, not every interval.
	refused string
}

// pair is one loaded certificate and the file contents it came from.
type pair struct {
	cert     *tls.Certificate
	contents [sha256.Size]byte
}

// LoadKeyPair reads the pair now; an unusable pair is an error naming
// cfg.Setting.
func LoadKeyPair(cfg PairConfig) (*KeyPair, error) {
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.New(slog.DiscardHandler)
	}
	if cfg.CheckInterval == 0 {
		cfg.CheckInterval = DefaultCheckInterval
	}
	p := &KeyPair{cfg: cfg}
	loaded, err := p.read()
	if err != nil {
		return nil, err
	}
	p.cur.Store(loaded)
	p.due.Store(cfg.Now().Add(cfg.CheckInterval).UnixNano())
	return p, nil
}

// GetCertificate serves the current certificate to a TLS client
// (tls.Config.GetCertificate).
func (p *KeyPair) GetCertificate(*tls.ClientHelloInfo) (*tls.Certificate, error) {
	return p.Certificate(), nil
}

// GetClientCertificate presents the current certificate to a TLS server
// that asks for one (tls.Config.GetClientCertificate).
func (p *KeyPair) GetClientCertificate(*tls.CertificateRequestInfo) (*tls.Certificate, error) {
	return p.Certificate(), nil
}

// Certificate returns the current certificate, after looking at the files
// if the check interval has passed.
func (p *KeyPair) Certificate() *tls.Certificate {
	if p.cfg.Now().UnixNano() >= p.due.Load() {
		p.check()
	}
	return p.cur.Load().cert
}

// check re-reads the files and swaps in a changed pair if it is usable.
func (p *KeyPair) check() {
	if !p.mu.TryLock() {
		return // another handshake is reading them
	}
	defer p.mu.Unlock()
	now := p.cfg.Now()
	if now.UnixNano() < p.due.Load() {
		return
	}
	changed, key, err := p.reread(now, false)
	switch {
	case err != nil:
		p.refuse(key, err)
	case changed:
		leaf := p.cur.Load().cert.Leaf
		p.cfg.Logger.Info("TLS certificate reloaded", "setting", p.cfg.Setting, "cert_file", p.cfg.CertFile,
			"subject", leaf.Subject.String(), "serial", leaf.SerialNumber.Text(16), "not_after", leaf.NotAfter.UTC())
	}
}

// Reload re-reads the files now, whatever the check interval says (an
// operator's SIGHUP), and swaps in a changed pair if it is usable. It
// reports whether the pair changed, and why a pair that can't be used was
// refused: the last good pair keeps serving. It logs nothing; the caller
// says what was asked for.
func (p *KeyPair) Reload() (changed bool, err error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	changed, key, err := p.reread(p.cfg.Now(), true)
	if err != nil {
		// Reported here: the handshakes need not log it again.
		p.refused = key
		return false, fmt.Errorf("%s: %w", p.cfg.Setting, err)
	}
	return changed, nil
}

// Config is the configuration the pair was loaded with, defaults filled
// in.
func (p *KeyPair) Config() PairConfig { return p.cfg }

// Leaf is the certificate serving now.
func (p *KeyPair) Leaf() *x509.Certificate { return p.cur.Load().cert.Leaf }

// reread reads the files and, if their contents changed and make a usable
// pair, swaps it in. A pair that can't be used is err, with the key that
// tells it from other failures (refuse). Contents refused before are
// passed over quietly unless again is set: an operator who asked for a
// reload is told why it did not happen, every time. The caller holds mu.
func (p *KeyPair) reread(now time.Time, again bool) (changed bool, key string, err error) {
	p.due.Store(now.Add(p.cfg.CheckInterval).UnixNano())
	certPEM, keyPEM, err := p.readFiles()
	if err != nil {
		return false, "read:" + err.Error(), err
	}
	sum := fingerprint(certPEM, keyPEM)
	old := p.cur.Load()
	if sum == old.contents {
		p.refused = ""
		return false, "", nil
	}
	if string(sum[:]) == p.refused && !again {
		return false, "", nil
	}
	next, err := p.parse(certPEM, keyPEM, sum)
	if err == nil && !now.Before(next.cert.Leaf.NotAfter) {
		// Every client would refuse it (an old backup or snapshot copied
		// over the renewed files): keep the pair that works. It can't
		// become valid later, so refusing it once for good is right. At
		// start-up one is still loaded: there is no other to serve.
		err = fmt.Errorf("%s: the certificate expired at %s", p.cfg.CertFile, next.cert.Leaf.NotAfter.UTC().Format(time.RFC3339))
	}
	if err != nil {
		return false, string(sum[:]), err
	}
	p.refused = ""
	p.cur.Store(next)
	return true, "", nil
}

// refuse logs a pair that can't be used, once per distinct failure.
func (p *KeyPair) refuse(key string, err error) {
	if key == p.refused {
		return
	}
	p.refused = key
	leaf := p.cur.Load().cert.Leaf
	p.cfg.Logger.Error("TLS certificate files changed but can't be used; still serving the previous certificate",
		"setting", p.cfg.Setting, "cert_file", p.cfg.CertFile, "key_file", p.cfg.KeyFile,
		"serving_serial", leaf.SerialNumber.Text(16), "serving_not_after", leaf.NotAfter.UTC(), "error", err)
}

// read loads the pair for LoadKeyPair.
func (p *KeyPair) read() (*pair, error) {
	certPEM, keyPEM, err := p.readFiles()
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p.cfg.Setting, err)
	}
	loaded, err := p.parse(certPEM, keyPEM, fingerprint(certPEM, keyPEM))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", p.cfg.Setting, err)
	}
	return loaded, nil
}

func (p *KeyPair) readFiles() (certPEM, keyPEM []byte, err error) {
	if certPEM, err = readFile(p.cfg.CertFile); err != nil {
		return nil, nil, err
	}
	if keyPEM, err = readFile(p.cfg.KeyFile); err != nil {
		return nil, nil, err
	}
	return certPEM, keyPEM, nil
}

func (p *KeyPair) parse(certPEM, keyPEM []byte, sum [sha256.Size]byte) (*pair, error) {
	// tls.X509KeyPair stops at the first PEM block it can't decode and
	// ignores the rest: a chain file read half written, its leaf whole
	// and the next certificate cut off, would be served without the rest
	// of its chain, to clients that need it. Text after the last whole
	// block is refused, as in a CA file; the next check reads the file
	// again.
	for _, f := range []struct {
		name string
		b    []byte
	}{{p.cfg.CertFile, certPEM}, {p.cfg.KeyFile, keyPEM}} {
		if trailingText(f.b) {
			return nil, fmt.Errorf("%s: holds text that is not a whole PEM block (a file still being written?)", f.name)
		}
	}
	cert, err := tls.X509KeyPair(certPEM, keyPEM)
	if err != nil {
		// crypto/tls's messages never quote the key.
		return nil, fmt.Errorf("%s and %s are not a certificate and its key: %w", p.cfg.CertFile, p.cfg.KeyFile, err)
	}
	if cert.Leaf == nil {
		if cert.Leaf, err = x509.ParseCertificate(cert.Certificate[0]); err != nil {
			return nil, fmt.Errorf("%s: %w", p.cfg.CertFile, err)
		}
	}
	return &pair{cert: &cert, contents: sum}, nil
}

// fingerprint identifies a pair's contents. The key's bytes are hashed,
// never kept or logged.
func fingerprint(certPEM, keyPEM []byte) [sha256.Size]byte {
	h := sha256.New()
	h.Write(certPEM)
	h.Write([]byte{0})
	h.Write(keyPEM)
	var sum [sha256.Size]byte
	h.Sum(sum[:0])
	return sum
}

// trailingText reports whether b has text after its last whole PEM block
// (a block cut off by a write in progress, as well as garbage).
func trailingText(b []byte) bool {
	rest := b
	for {
		var block *pem.Block
		if block, rest = pem.Decode(rest); block == nil {
			return len(bytes.TrimSpace(rest)) > 0
		}
	}
}

// LoadCertPool reads a PEM file of CA certificates. Anything in it that is
// not a certificate is an error (a key file named by mistake), and so is a
// file without any.
func LoadCertPool(file string) (*x509.CertPool, error) {
	b, err := readFile(file)
	if err != nil {
		return nil, err
	}
	pool := x509.NewCertPool()
	n := 0
	for rest := b; ; {
		var block *pem.Block
		block, rest = pem.Decode(rest)
		if block == nil {
			if trailingText(rest) {
				return nil, fmt.Errorf("%s: text after the last PEM block is not PEM", file)
			}
			break
		}
		if block.Type != "CERTIFICATE" {
			return nil, fmt.Errorf("%s: holds a %q PEM block; a CA file holds certificates only", file, block.Type)
		}
		cert, err := x509.ParseCertificate(block.Bytes)
		if err != nil {
			return nil, fmt.Errorf("%s: certificate %d: %w", file, n+1, err)
		}
		pool.AddCert(cert)
		n++
	}
	if n == 0 {
		return nil, fmt.Errorf("%s: no PEM certificate in it", file)
	}
	return pool, nil
}

// ServerConfig is the TLS configuration of a listener serving p's
// certificate: TLS 1.2 or later, and, with clientCAs, a client certificate
// issued by one of them required and verified in the handshake. HTTP's
// ServeTLS adds the ALPN protocols the server speaks.
func ServerConfig(p *KeyPair, clientCAs *x509.CertPool) *tls.Config {
	c := &tls.Config{MinVersion: MinVersion, GetCertificate: p.GetCertificate}
	if clientCAs != nil {
		c.ClientAuth = tls.RequireAndVerifyClientCert
		c.ClientCAs = clientCAs
	}
	return c
}

// ClientConfig is the TLS configuration of connections to upstreams: TLS 1.2
// or later, servers verified against roots (the system's when nil), and p's
// certificate presented to a server that asks for one (none when p is nil).
func ClientConfig(roots *x509.CertPool, p *KeyPair) *tls.Config {
	c := &tls.Config{MinVersion: MinVersion, RootCAs: roots}
	if p != nil {
		c.GetClientCertificate = p.GetClientCertificate
	}
	return c
}

// readFile reads at most maxFileSize bytes of a regular file.
func readFile(name string) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxFileSize+1))
	switch {
	case err != nil:
		return nil, err
	case len(b) > maxFileSize:
		return nil, fmt.Errorf("%s is larger than %d bytes: not a certificate file", name, maxFileSize)
	case len(b) == 0:
		return nil, errors.New(name + " is empty")
	}
	return b, nil
}
