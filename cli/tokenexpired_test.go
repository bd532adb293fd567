package cli

import (
	"bytes"
	"context"
	"encoding/base64"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// jwtExpiring is a token shaped like a JWT whose exp claim is exp (the
// fake API does not verify it; lockboxctl only reads the claim).
func jwtExpiring(exp time.Time) string {
	enc := base64.RawURLEncoding.EncodeToString
	return enc([]byte(`{"alg":"EdDSA","typ":"JWT"}`)) + "." +
		enc([]byte(`{"sub":"alice@provider.example","exp":`+strconv.FormatInt(exp.Unix(), 10)+`}`)) + ".c2ln"
}

// A shell that sourced lockbox dev's env file keeps its tokens after dev
// wrote new ones, and twelve hours on the API refuses them: lockboxctl
// printed "token expired" and where the token came from, and nothing of
// how to get another, though it knew the token had expired and when. It
// now says when, and where a current one is; a token that has not expired
// (refused for another reason) gets no such line, nor does the one
// lockboxctl login stored, whose line already says to sign in again.
func TestExpiredTokenSaysHowToGetANewOne(t *testing.T) {
	refused := map[string]reply{"GET /v1/requests": {401, `{"error":{"code":"unauthenticated","message":"unauthenticated: token expired"}}`}}
	exp := time.Date(2026, 12, 6, 20, 33, 28, 0, time.UTC)
	const expiredLine = "lockboxctl: it expired at 2026-12-06 20:33:28Z: use a current one (with lockbox dev, which renews its tokens: source .lockbox-dev/env again, or pass --token-file .lockbox-dev/operator.jwt or your role's file)\n"
	for _, tc := range []struct {
		name     string
		now      time.Time
		fromFile bool
		want     string // the third line of stderr, "" for none
	}{
		{"LOCKBOX_TOKEN expired", exp.Add(time.Minute), false, expiredLine},
		{"--token-file expired", exp.Add(13 * time.Hour), true, expiredLine},
		{"expiring this second", exp, false, expiredLine},
		{"not yet expired", exp.Add(-time.Minute), false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := &fakeAPI{replies: refused}
			srv := httptest.NewServer(f)
			defer srv.Close()
			tok := jwtExpiring(exp)
			vars := map[string]string{EnvAddr: srv.URL, EnvToken: tok, EnvConfigDir: t.TempDir()}
			args := []string{"get", "requests"}
			if tc.fromFile {
				file := filepath.Join(t.TempDir(), "operator.jwt")
				if err := os.WriteFile(file, []byte(tok+"\n"), 0o600); err != nil {
					t.Fatal(err)
				}
				vars[EnvToken] = "other"
				args = append(args, "--token-file", file)
			}
			var stdout, stderr bytes.Buffer
			now := tc.now
			code := runWith(context.Background(), args, func(k string) string { return vars[k] }, &stdout, &stderr, sessionDeps{now: func() time.Time { return now }})
			lines := strings.SplitAfter(stderr.String(), "\n")
			if code != exitRefused || lines[0] != "lockboxctl: token expired (unauthenticated, HTTP 401)\n" {
				t.Fatalf("exit %d, stderr:\n%s\nwant exit 3 and the API's refusal", code, stderr.String())
			}
			// Where the token came from, when it shadowed another (the
			// file shadows $LOCKBOX_TOKEN).
			rest := lines[1:]
			if fromLine := len(rest) > 0 && strings.Contains(rest[0], "the token sent came from "); fromLine != tc.fromFile {
				t.Fatalf("stderr:\n%s\nsays where the token came from: %v, want %v", stderr.String(), fromLine, tc.fromFile)
			} else if fromLine {
				rest = rest[1:]
			}
			got := strings.Join(rest, "")
			if got != tc.want {
				t.Errorf("after the token's source, stderr has\n%q\nwant\n%q", got, tc.want)
			}
		})
	}
}
