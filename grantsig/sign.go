package grantsig

import (
	"crypto"
	"crypto/ecdsa"
	stded25519 "crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/oasisprotocol/curve25519-voi/primitives/ed25519"
	"golang.org/x/crypto/cryptobyte"
	"golang.org/x/crypto/cryptobyte/asn1"
)

// Signer signs assertions with one private key: Ed25519 (EdDSA) or ECDSA
// P-256 (ES256). It is safe for concurrent use.
//
// Ed25519 signatures are made by curve25519-voi rather than crypto/ed25519:
// the proxy signs one per forwarded call, and voi's base-point
// multiplication is faster (13 µs against 17.5–35 µs on our machines,
// docs/performance.md). An
// Ed25519 signature is deterministic (RFC 8032), so both make the same bytes
// from the same key and input, which TestEd25519SameAsStandardLibrary
// checks; keys are still parsed, and assertions verified, by the standard
// library.
type Signer struct {
	alg, kid string
	ed       ed25519.PrivateKey
	ec       *ecdsa.PrivateKey
	macs     *sync.Pool // of keyed HMAC-SHA256 states, for HS256
	pub      crypto.PublicKey
	// header is the encoded JOSE header and the "." after it: the first
	// bytes of every assertion this key signs.
	header []byte
}

// NewSigner returns a Signer for key, an ed25519.PrivateKey or an
// *ecdsa.PrivateKey on P-256.
func NewSigner(key crypto.Signer) (*Signer, error) {
	s := &Signer{}
	switch k := key.(type) {
	case stded25519.PrivateKey:
		if len(k) != stded25519.PrivateKeySize {
			return nil, errors.New("grantsig: malformed Ed25519 private key")
		}
		// The same 64 bytes (seed, then public key) in both packages.
		s.alg, s.ed, s.pub = AlgEdDSA, ed25519.PrivateKey(k), k.Public()
	case *ecdsa.PrivateKey:
		if k.Curve != elliptic.P256() {
			return nil, errors.New("grantsig: an ECDSA key must be on P-256 (ES256)")
		}
		s.alg, s.ec, s.pub = AlgES256, k, &k.PublicKey
	default:
		return nil, fmt.Errorf("grantsig: a %T can't sign assertions; use an Ed25519 or a P-256 key", key)
	}
	kid, err := KeyID(s.pub)
	if err != nil {
		return nil, err
	}
	s.kid = kid
	h, err := json.Marshal(joseHeader{Algorithm: s.alg, KeyID: kid, Type: Type})
	if err != nil {
		return nil, err
	}
	s.header = append(b64.AppendEncode(nil, h), '.')
	return s, nil
}

// Algorithm returns the JWS "alg" of the signer's assertions.
func (s *Signer) Algorithm() string { return s.alg }

// KeyID returns the "kid" of the signer's assertions: the RFC 7638
// thumbprint of its public key.
func (s *Signer) KeyID() string { return s.kid }

// Public returns the signer's public key.
func (s *Signer) Public() crypto.PublicKey { return s.pub }

// GrantClaims are the claims of every assertion made under one grant.
type GrantClaims struct {
	Issuer, Subject, Audience, Tenant, Service, RequestID string
	// NotAfter is the end of the grant: no assertion made under it expires
	// later.
	NotAfter time.Time
}

// CallClaims are the claims that differ from one call to the next.
type CallClaims struct {
	AuditID, Activity, Method, Path string
	// IssuedAt is when the call was judged. ExpiresAt is when the
	// assertion ends: Append moves it back to the grant's end, and refuses
	// one more than MaxTTL after IssuedAt.
	IssuedAt, ExpiresAt time.Time
}

// Template makes the assertions of one grant. Everything they share (the
// JOSE header and the grant's claims) is encoded once, when the template is
// made; Append then encodes only what is the call's own, and signs.
type Template struct {
	s *Signer
	// prefix is the header, ".", and the base64url of the grant's claims:
	// the opening of the claims object, padded with spaces to a multiple
	// of 3 bytes so that its encoding ends on a whole quantum and the
	// call's claims can be encoded after it separately.
	prefix   []byte
	notAfter int64
}

// Template returns the template of the assertions made under g.
func (s *Signer) Template(g GrantClaims) (*Template, error) {
	var head struct {
		Issuer    string `json:"iss"`
		Subject   string `json:"sub"`
		Audience  string `json:"aud"`
		Tenant    string `json:"tenant"`
		Service   string `json:"service"`
		RequestID string `json:"request_id"`
	}
	head.Issuer, head.Subject, head.Audience = g.Issuer, g.Subject, g.Audience
	head.Tenant, head.Service, head.RequestID = g.Tenant, g.Service, g.RequestID
	js, err := json.Marshal(head)
	if err != nil {
		return nil, err
	}
	js = js[:len(js)-1] // the call's claims close the object
	for len(js)%3 != 0 {
		js = append(js, ' ')
	}
	prefix := make([]byte, 0, len(s.header)+b64.EncodedLen(len(js)))
	prefix = append(prefix, s.header...)
	return &Template{s: s, prefix: b64.AppendEncode(prefix, js), notAfter: g.NotAfter.Unix()}, nil
}

// ErrLifetime is returned by Append for an assertion that would expire
// before it is issued or live longer than MaxTTL.
var ErrLifetime = errors.New("grantsig: an assertion must expire after it is issued and within MaxTTL")

// Append appends the assertion of one call to dst and returns the extended
// buffer. Its "exp" is c.ExpiresAt, or the grant's end if that is sooner.
// Appending into a reused buffer, one call costs the encoding of the call's
// claims and one signature.
func (t *Template) Append(dst []byte, c CallClaims) ([]byte, error) {
	iat, exp := c.IssuedAt.Unix(), min(c.ExpiresAt.Unix(), t.notAfter)
	if exp <= iat || exp-iat > int64(MaxTTL/time.Second) {
		return dst, ErrLifetime
	}
	start := len(dst)
	dst = append(dst, t.prefix...)
	// The call's claims, on the stack unless a path is very long.
	var scratch [512]byte
	js := append(scratch[:0], `,"jti":`...)
	js = appendString(js, c.AuditID)
	js = append(js, `,"activity":`...)
	js = appendString(js, c.Activity)
	js = append(js, `,"method":`...)
	js = appendString(js, c.Method)
	js = append(js, `,"path":`...)
	js = appendString(js, c.Path)
	js = append(js, `,"iat":`...)
	js = strconv.AppendInt(js, iat, 10)
	js = append(js, `,"exp":`...)
	js = strconv.AppendInt(js, exp, 10)
	js = append(js, '}')
	dst = b64.AppendEncode(dst, js)
	out, err := t.s.appendSignature(dst, dst[start:])
	if err != nil {
		return dst[:start], err
	}
	return out, nil
}

// appendSignature appends "." and the base64url signature of input (the
// encoded header, ".", and the encoded claims, at the end of dst) to dst.
func (s *Signer) appendSignature(dst, input []byte) ([]byte, error) {
	switch s.alg {
	case AlgEdDSA:
		sig := ed25519.Sign(s.ed, input)
		return b64.AppendEncode(append(dst, '.'), sig), nil
	case AlgHS256:
		return s.appendMAC(dst, input), nil
	case AlgES256:
		d := sha256.Sum256(input)
		der, err := ecdsa.SignASN1(rand.Reader, s.ec, d[:])
		if err != nil {
			return dst, fmt.Errorf("grantsig: sign: %w", err)
		}
		var raw [64]byte
		if !asn1ToRaw(der, &raw) {
			return dst, errors.New("grantsig: sign: malformed ECDSA signature")
		}
		return b64.AppendEncode(append(dst, '.'), raw[:]), nil
	}
	return dst, fmt.Errorf("grantsig: sign: algorithm %q", s.alg)
}

// Sign returns the assertion with claims c, for tests and tools; the proxy
// uses a Template per grant.
func (s *Signer) Sign(c Claims) (string, error) {
	t, err := s.Template(GrantClaims{
		Issuer: c.Issuer, Subject: c.Subject, Audience: c.Audience,
		Tenant: c.Tenant, Service: c.Service, RequestID: c.RequestID,
		NotAfter: time.Unix(c.ExpiresAt, 0),
	})
	if err != nil {
		return "", err
	}
	b, err := t.Append(nil, CallClaims{
		AuditID: c.AuditID, Activity: c.Activity, Method: c.Method, Path: c.Path,
		IssuedAt: time.Unix(c.IssuedAt, 0), ExpiresAt: time.Unix(c.ExpiresAt, 0),
	})
	return string(b), err
}

// appendString appends s as a JSON string, escaped as encoding/json
// escapes it (without its HTML escapes, which JSON does not need). The
// call's values (an id, a catalog activity, a method, a canonical path) are
// printable ASCII without '"' or '\\' and are copied as they are.
func appendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c >= 0x20 && c < utf8.RuneSelf && c != '"' && c != '\\' {
			i++
			continue
		}
		dst = append(dst, s[start:i]...)
		switch {
		case c == '"' || c == '\\':
			dst = append(dst, '\\', c)
			i++
		case c < 0x20:
			dst = append(dst, '\\', 'u', '0', '0', hex[c>>4], hex[c&0xf])
			i++
		default:
			r, size := utf8.DecodeRuneInString(s[i:])
			if r == utf8.RuneError && size == 1 {
				dst = append(dst, `\ufffd`...)
			} else {
				dst = append(dst, s[i:i+size]...)
			}
			i += size
		}
		start = i
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

const hex = "0123456789abcdef"

// asn1ToRaw converts an ECDSA signature from ASN.1 DER, as crypto/ecdsa
// makes it, to the fixed r||s form of JWS (RFC 7518 §3.4).
func asn1ToRaw(der []byte, out *[64]byte) bool {
	var seq cryptobyte.String
	var r, s []byte
	in := cryptobyte.String(der)
	if !in.ReadASN1(&seq, asn1.SEQUENCE) || !in.Empty() ||
		!seq.ReadASN1Integer(&r) || !seq.ReadASN1Integer(&s) || !seq.Empty() ||
		len(r) > 32 || len(s) > 32 {
		return false
	}
	copy(out[32-len(r):32], r)
	copy(out[64-len(s):], s)
	return true
}
