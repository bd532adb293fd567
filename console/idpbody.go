package console

import (
	"fmt"
	"io"
	"net/http"
)

// maxIdPBody bounds every answer the console reads from an identity
// provider: its discovery document (or the refusal of one), its keys, its
// token endpoint's answers. A tenant runs its own identity provider, so
// what it answers is untrusted, and anyone can make the console fetch from
// it (start a sign-in at that tenant's, bring a code back). go-oidc reads
// the discovery document, a refusal's body and the keys whole into memory;
// a hostile or broken identity provider answering with gigabytes would
// exhaust the replica's. oauth2 stops at 1 MiB already; this is the same
// bound, for everything. Real documents are a few kilobytes, as the API's
// JWKS fetch assumes (jwksfetch.MaxDocumentSize).
const maxIdPBody = 1 << 20

// errIdPBodyTooLarge is the read error of an answer longer than maxIdPBody.
var errIdPBodyTooLarge = fmt.Errorf("the identity provider's answer is larger than %d bytes", maxIdPBody)

// bodyLimitTransport hands on its answers with bodies that fail to read
// past maxIdPBody (see limitedBody): a reader that stops short without an
// error would have the rest taken for the whole.
type bodyLimitTransport struct{ next http.RoundTripper }

func (t bodyLimitTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	next := t.next
	if next == nil {
		next = http.DefaultTransport
	}
	res, err := next.RoundTrip(r)
	if err != nil {
		return nil, err
	}
	res.Body = &limitedBody{ReadCloser: res.Body, left: maxIdPBody}
	return res, nil
}

// limitedBody reads at most left bytes of its ReadCloser, then fails with
// errIdPBodyTooLarge if there is more. Closing it early closes the
// connection, which stops the identity provider sending.
type limitedBody struct {
	io.ReadCloser
	left int64
}

func (b *limitedBody) Read(p []byte) (int, error) {
	if int64(len(p)) > b.left+1 {
		p = p[:b.left+1]
	}
	n, err := b.ReadCloser.Read(p)
	if int64(n) > b.left {
		n, b.left = int(b.left), 0
		return n, errIdPBodyTooLarge
	}
	b.left -= int64(n)
	return n, err
}
