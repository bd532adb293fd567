package login

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"golang.org/x/oauth2"
)

// DefaultDeviceCodeLifetime is how long a device code is taken to be valid
// when the provider's answer doesn't say (RFC 8628's example's 30 minutes).
const DefaultDeviceCodeLifetime = 30 * time.Minute

// Device signs the user in through the device authorization flow (RFC
// 8628): it asks for a device code, tells the user where to enter the
// user code, and polls the token endpoint at the interval the provider
// set, 5 s less often after each slow_down, until the user approves,
// denies, or the code expires.
//
// The polling is ours, not oauth2's DeviceAccessToken: that one waits on
// a ticker of its own, and the expiry and the waits must follow Now and
// Sleep.
func (f *Flow) Device(ctx context.Context) (Token, error) {
	conf := f.config("")
	da, err := conf.DeviceAuth(f.httpContext(ctx))
	if err != nil {
		return Token{}, fmt.Errorf("device authorization at %s: %w", f.Issuer.URL, err)
	}
	if da.DeviceCode == "" || da.UserCode == "" || da.VerificationURI == "" {
		return Token{}, fmt.Errorf("device authorization at %s: the answer lacks a device code, user code or verification URI", f.Issuer.URL)
	}
	// The user signs in there, password and all: held to the rule of the
	// endpoints discovery names.
	for _, u := range []struct{ name, url string }{
		{"verification_uri", da.VerificationURI}, {"verification_uri_complete", da.VerificationURIComplete},
	} {
		if u.url == "" {
			continue
		}
		if err := checkEndpoint(u.name, u.url); err != nil {
			return Token{}, fmt.Errorf("device authorization at %s: %w", f.Issuer.URL, err)
		}
	}
	// oauth2 set Expiry from expires_in on the wall clock. Without
	// expires_in (RFC 8628 requires it) a provider that never answers
	// expired_token had the polling go on until lockboxctl was killed.
	deadline := f.now().Add(DefaultDeviceCodeLifetime)
	if !da.Expiry.IsZero() {
		deadline = f.now().Add(time.Until(da.Expiry))
	}
	if f.Tell != nil {
		f.Tell(Prompt{VerificationURI: da.VerificationURI, VerificationURIComplete: da.VerificationURIComplete, UserCode: da.UserCode})
	}
	// "If no value is provided, clients MUST use 5 as the default."
	interval := time.Duration(da.Interval) * time.Second
	if interval <= 0 {
		interval = 5 * time.Second
	}
	for {
		// A provider's interval may outlast its code (or a slow_down
		// stretch it past the code's end): the wait ends with the code,
		// and the user hears it expired then, not an interval later.
		wait := interval
		if left := deadline.Sub(f.now()); left < wait {
			wait = left
		}
		if wait > 0 {
			if err := f.sleep(ctx, wait); err != nil {
				return Token{}, err
			}
		}
		if !f.now().Before(deadline) {
			return Token{}, ErrExpired
		}
		tok, code, err := f.pollDevice(ctx, conf, da.DeviceCode)
		switch {
		case err != nil:
			return Token{}, err
		case code == "":
			return f.token(tok)
		case code == "authorization_pending":
		case code == "slow_down":
			// "the interval MUST be increased by 5 seconds for this
			// and all subsequent requests" (RFC 8628 section 3.5).
			interval += 5 * time.Second
		case code == "access_denied":
			return Token{}, ErrDenied
		case code == "expired_token":
			return Token{}, ErrExpired
		default:
			return Token{}, fmt.Errorf("device token request at %s: %s", f.Issuer.URL, code)
		}
	}
}

// pollDevice makes one device access token request. It returns the
// token, or the error code of a refusal (RFC 6749 section 5.2 and RFC
// 8628 section 3.5), or an error when the answer was neither.
func (f *Flow) pollDevice(ctx context.Context, conf *oauth2.Config, deviceCode string) (*oauth2.Token, string, error) {
	form := url.Values{"grant_type": {DeviceGrantType}, "device_code": {deviceCode}, "client_id": {conf.ClientID}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, conf.Endpoint.TokenURL, strings.NewReader(form.Encode()))
	if err != nil {
		return nil, "", fmt.Errorf("device token request: %w", err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Accept", "application/json")
	resp, err := client(f.HTTP).Do(req)
	if err != nil {
		return nil, "", fmt.Errorf("device token request at %s: %w", f.Issuer.URL, err)
	}
	defer resp.Body.Close()
	var body struct {
		AccessToken      string `json:"access_token"`
		TokenType        string `json:"token_type"`
		RefreshToken     string `json:"refresh_token"`
		ExpiresIn        int64  `json:"expires_in"`
		Error            string `json:"error"`
		ErrorDescription string `json:"error_description"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxBody)).Decode(&body); err != nil {
		return nil, "", fmt.Errorf("device token request at %s: HTTP %d: %w", f.Issuer.URL, resp.StatusCode, err)
	}
	if resp.StatusCode == http.StatusOK && body.Error == "" {
		return &oauth2.Token{AccessToken: body.AccessToken, TokenType: body.TokenType,
			RefreshToken: body.RefreshToken, ExpiresIn: body.ExpiresIn}, "", nil
	}
	if body.Error == "" {
		return nil, "", fmt.Errorf("device token request at %s: HTTP %d", f.Issuer.URL, resp.StatusCode)
	}
	return nil, body.Error, nil
}
