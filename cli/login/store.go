package login

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"golang.org/x/oauth2"
)

// RefreshMargin: a token that expires within it is refreshed before use,
// so it doesn't expire on its way to the server.
const RefreshMargin = time.Minute

// Token is a signed-in user's token for one Lockbox server, as stored.
type Token struct {
	// Server is the Lockbox API the token is for (ServerKey's form); it
	// is sent nowhere else.
	Server       string    `json:"server"`
	Issuer       string    `json:"issuer"`
	ClientID     string    `json:"client_id"`
	TokenURL     string    `json:"token_endpoint"`
	AccessToken  string    `json:"access_token"`
	RefreshToken string    `json:"refresh_token,omitempty"`
	Expiry       time.Time `json:"expiry,omitzero"`
}

// NeedsRefresh reports whether t has expired at now or will within
// RefreshMargin. A token without an expiry never does.
func (t Token) NeedsRefresh(now time.Time) bool {
	return !t.Expiry.IsZero() && !now.Add(RefreshMargin).Before(t.Expiry)
}

// Expired reports whether t has expired at now.
func (t Token) Expired(now time.Time) bool {
	return !t.Expiry.IsZero() && !now.Before(t.Expiry)
}

// Refresh redeems t's refresh token at its issuer's token endpoint and
// returns the new token (with the old refresh token when the provider
// doesn't rotate it). now stamps the new expiry.
func Refresh(ctx context.Context, hc *http.Client, now time.Time, t Token) (Token, error) {
	if t.RefreshToken == "" {
		return Token{}, errors.New("the stored token has no refresh token")
	}
	conf := &oauth2.Config{ClientID: t.ClientID,
		Endpoint: oauth2.Endpoint{TokenURL: t.TokenURL, AuthStyle: oauth2.AuthStyleInParams}}
	// A token without an access token is never valid, so the source
	// always redeems the refresh token: when to refresh is our call.
	ctx = context.WithValue(ctx, oauth2.HTTPClient, client(hc))
	ot, err := conf.TokenSource(ctx, &oauth2.Token{RefreshToken: t.RefreshToken}).Token()
	if err != nil {
		return Token{}, fmt.Errorf("refreshing the token at %s: %w", t.Issuer, err)
	}
	fresh, err := fromOAuth2(ot, t.Issuer, t.ClientID, t.TokenURL, now)
	if err != nil {
		return Token{}, fmt.Errorf("refreshing the token at %s: %w", t.Issuer, err)
	}
	fresh.Server = t.Server
	return fresh, nil
}

// ErrNotSignedIn: no token is stored for the server.
var ErrNotSignedIn = errors.New("not signed in")

// InsecureFileError: a token file others could read or replace. Its
// message says how to fix it.
type InsecureFileError struct {
	Path string
	Mode fs.FileMode
}

func (e *InsecureFileError) Error() string {
	if !e.Mode.IsRegular() {
		return fmt.Sprintf("token file %s is not a regular file (%s): remove it and sign in again", e.Path, e.Mode.Type())
	}
	return fmt.Sprintf("token file %s may be read or changed by other users (mode %04o): run chmod 600 %s, "+
		"or remove it and sign in again (its token may have been seen)", e.Path, e.Mode.Perm(), e.Path)
}

// Store keeps tokens in Dir/tokens, one file per Lockbox server, each
// readable by the user alone: the directories 0700, the files 0600,
// written to a temporary file and renamed into place so a reader never
// sees half a token.
type Store struct {
	Dir string
}

// DefaultDir is lockboxctl's directory in the user's config directory:
// $XDG_CONFIG_HOME/lockbox (~/.config/lockbox) on Linux,
// ~/Library/Application Support/lockbox on macOS, %AppData%\lockbox on
// Windows.
func DefaultDir() (string, error) {
	d, err := os.UserConfigDir()
	if err != nil {
		return "", fmt.Errorf("finding the config directory: %w", err)
	}
	return filepath.Join(d, "lockbox"), nil
}

// ServerKey is the form of a Lockbox API URL tokens are stored under:
// scheme and host in lower case, without the port the scheme implies
// (https://host:443 is https://host, where the token is sent just the
// same), no trailing slash.
func ServerKey(api string) (string, error) {
	u, err := url.Parse(strings.TrimSpace(api))
	if err != nil || !u.IsAbs() || u.Host == "" {
		return "", fmt.Errorf("the Lockbox API address %q is not a URL", api)
	}
	scheme, host := strings.ToLower(u.Scheme), strings.ToLower(u.Host)
	if p := u.Port(); p == "" || p == defaultPorts[scheme] {
		host = strings.TrimSuffix(strings.TrimSuffix(host, p), ":")
	}
	return scheme + "://" + host + strings.TrimSuffix(u.EscapedPath(), "/"), nil
}

var defaultPorts = map[string]string{"http": "80", "https": "443"}

// oldKey is the key ServerKey gave server (its form) before it left out
// the default port: scheme://host:port, where a token stored then is
// still found; "" when the scheme has no default port.
func oldKey(server string) string {
	scheme, rest, _ := strings.Cut(server, "://")
	p := defaultPorts[scheme]
	if p == "" {
		return ""
	}
	host, path := rest, ""
	if i := strings.IndexByte(rest, '/'); i >= 0 {
		host, path = rest[:i], rest[i:]
	}
	return scheme + "://" + host + ":" + p + path
}

// Path is where the token for server (ServerKey's form) is kept.
func (s Store) Path(server string) string {
	name := strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '.' || r == '-' {
			return r
		}
		return '_'
	}, server)
	return filepath.Join(s.Dir, "tokens", name+".json")
}

// Load reads the token for server, or the one stored for it under its
// old key (oldKey), then given server's key. It refuses a file other
// users could read or write, or one that isn't a regular file.
func (s Store) Load(server string) (Token, error) {
	t, err := s.load(server)
	if old := oldKey(server); errors.Is(err, ErrNotSignedIn) && old != "" {
		if t, err = s.load(old); err == nil {
			// Refreshed, it is saved under the key of today.
			t.Server = server
		}
	}
	return t, err
}

func (s Store) load(server string) (Token, error) {
	path := s.Path(server)
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return Token{}, ErrNotSignedIn
	}
	if err != nil {
		return Token{}, fmt.Errorf("reading the stored token: %w", err)
	}
	if err := checkMode(path, fi); err != nil {
		return Token{}, err
	}
	f, err := os.Open(path)
	if err != nil {
		return Token{}, fmt.Errorf("reading the stored token: %w", err)
	}
	defer f.Close()
	// Checked again on what was opened, in case the file was swapped.
	if fi, err = f.Stat(); err != nil {
		return Token{}, fmt.Errorf("reading the stored token: %w", err)
	}
	if err := checkMode(path, fi); err != nil {
		return Token{}, err
	}
	var t Token
	if err := json.NewDecoder(io.LimitReader(f, maxBody)).Decode(&t); err != nil {
		return Token{}, fmt.Errorf("reading the stored token %s: %w", path, err)
	}
	// Two servers whose names map to one file: the file is the other's.
	if t.Server != server {
		return Token{}, ErrNotSignedIn
	}
	if t.AccessToken == "" {
		return Token{}, fmt.Errorf("the stored token %s holds no access token", path)
	}
	return t, nil
}

func checkMode(path string, fi fs.FileInfo) error {
	if !fi.Mode().IsRegular() {
		return &InsecureFileError{Path: path, Mode: fi.Mode()}
	}
	// Windows has no such bits: the profile's ACL protects the file.
	if runtime.GOOS != "windows" && fi.Mode().Perm()&0o077 != 0 {
		return &InsecureFileError{Path: path, Mode: fi.Mode()}
	}
	return nil
}

// Save writes t for t.Server, replacing any token stored for it.
func (s Store) Save(t Token) error {
	path := s.Path(t.Server)
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("storing the token: %w", err)
	}
	b, err := json.MarshalIndent(t, "", "  ")
	if err != nil {
		return fmt.Errorf("storing the token: %w", err)
	}
	// CreateTemp makes the file 0600, before anything is written to it.
	f, err := os.CreateTemp(dir, ".token-*")
	if err != nil {
		return fmt.Errorf("storing the token: %w", err)
	}
	tmp := f.Name()
	defer os.Remove(tmp) // after a successful rename there is nothing left to remove
	if err := f.Chmod(0o600); err != nil && runtime.GOOS != "windows" {
		f.Close()
		return fmt.Errorf("storing the token: %w", err)
	}
	if _, err := f.Write(append(b, '\n')); err != nil {
		f.Close()
		return fmt.Errorf("storing the token: %w", err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return fmt.Errorf("storing the token: %w", err)
	}
	if err := f.Close(); err != nil {
		return fmt.Errorf("storing the token: %w", err)
	}
	if err := os.Rename(tmp, path); err != nil {
		return fmt.Errorf("storing the token: %w", err)
	}
	return nil
}

// Remove deletes the token stored for server, under its key and its old
// one (oldKey); it reports whether there was one.
func (s Store) Remove(server string) (bool, error) {
	keys := []string{server}
	// The old key's file only when it is this server's: another's name
	// may map to it (https://x_443 to https://x:443's).
	if old := oldKey(server); old != "" {
		if _, err := s.load(old); !errors.Is(err, ErrNotSignedIn) {
			keys = append(keys, old)
		}
	}
	removed := false
	for _, k := range keys {
		err := os.Remove(s.Path(k))
		switch {
		case errors.Is(err, fs.ErrNotExist):
		case err != nil:
			return removed, fmt.Errorf("removing the stored token: %w", err)
		default:
			removed = true
		}
	}
	return removed, nil
}
