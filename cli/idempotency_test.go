package cli

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
)

var createArgs = []string{"create", "request", "--tenant", "contoso", "--service", "exchange",
	"--service-request", "SR-1", "--reason", "r", "--duration", "1h", "-o", "id"}

// lossyAPI answers POST /v1/requests: the first lost calls are cut off
// (the connection closed once the call was read) or answered by a gateway
// (lostStatus, without the API's error document); the others get the
// sample request. It records each call's Idempotency-Key.
type lossyAPI struct {
	lost       int
	lostStatus int
	mu         sync.Mutex
	keys       []string
}

func (a *lossyAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	_, _ = io.Copy(io.Discard, r.Body)
	a.mu.Lock()
	a.keys = append(a.keys, r.Header.Get("Idempotency-Key"))
	n := len(a.keys)
	a.mu.Unlock()
	switch {
	case n <= a.lost && a.lostStatus != 0:
		http.Error(w, "upstream connect error", a.lostStatus)
	case n <= a.lost:
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			_ = conn.Close()
		}
	default:
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusCreated)
		_, _ = w.Write([]byte(mustJSON(sampleRequest())))
	}
}

func (a *lossyAPI) run(t *testing.T, args ...string) (code int, stdout, stderr string, keys []string) {
	t.Helper()
	srv := httptest.NewServer(a)
	defer srv.Close()
	env := map[string]string{EnvAddr: srv.URL, EnvToken: envToken, EnvConfigDir: t.TempDir()}
	var out, errOut bytes.Buffer
	code = runWith(context.Background(), append(append([]string(nil), createArgs...), args...), func(k string) string { return env[k] }, &out, &errOut, sessionDeps{})
	a.mu.Lock()
	defer a.mu.Unlock()
	return code, out.String(), errOut.String(), a.keys
}

// TestCreateRequestRetriesALostAnswerWithItsKey: a filing whose answer
// was lost (the connection closed after the call went out, a gateway's
// 502) is sent once more with the same Idempotency-Key, which the API
// answers with the request the first call filed, if it did: the command
// succeeds, and nothing is filed twice. Each run has a key of its own.
func TestCreateRequestRetriesALostAnswerWithItsKey(t *testing.T) {
	var first string
	for _, api := range []*lossyAPI{{lost: 1}, {lost: 1, lostStatus: http.StatusBadGateway}} {
		code, stdout, stderr, keys := api.run(t)
		if code != exitOK || stdout != reqID+"\n" {
			t.Fatalf("exit %d, stdout %q, stderr %q: want the request filed", code, stdout, stderr)
		}
		if len(keys) != 2 || keys[0] != keys[1] || len(keys[0]) < 20 || !strings.HasPrefix(keys[0], `"`) || !strings.HasSuffix(keys[0], `"`) {
			t.Fatalf("Idempotency-Key of the calls = %q: want one quoted random key, twice", keys)
		}
		if keys[0] == first {
			t.Errorf("two runs sent the same key %s", first)
		}
		first = keys[0]
	}
}

// TestCreateRequestLostTwiceNamesItsKey: when the retry's answer is lost
// too, the command fails saying how to learn whether it was filed without
// filing it again: the key, for --idempotency-key, which a run then sends.
func TestCreateRequestLostTwiceNamesItsKey(t *testing.T) {
	api := &lossyAPI{lost: 2}
	code, _, stderr, keys := api.run(t)
	if code != exitError || len(keys) != 2 {
		t.Fatalf("exit %d after %d calls, stderr %q: want exit 1 after 2", code, len(keys), stderr)
	}
	key := strings.Trim(keys[0], `"`)
	want := "lockboxctl: the request may have been filed: run the same command with --idempotency-key " + key + " to get it without filing it twice\n"
	if !strings.HasSuffix(stderr, want) {
		t.Fatalf("stderr %q: want it to end with %q", stderr, want)
	}
	again := &lossyAPI{}
	if code, _, stderr, keys := again.run(t, "--idempotency-key", key); code != exitOK || len(keys) != 1 || keys[0] != `"`+key+`"` {
		t.Fatalf("run with --idempotency-key: exit %d, keys %q, stderr %q", code, keys, stderr)
	}
}

// TestCreateRequestRefusalIsNotRetried: the API's refusal is an answer:
// the call is sent once, and no word of a key. A malformed
// --idempotency-key is refused before any call.
func TestCreateRequestRefusalIsNotRetried(t *testing.T) {
	r := run(t, createArgs, nil, map[string]reply{
		"POST /v1/requests": {409, `{"error":{"code":"open_request_exists","message":"you already have request x"}}`},
	})
	if r.code != exitRefused || len(r.calls) != 1 || strings.Contains(r.stderr, "idempotency") {
		t.Fatalf("exit %d after %d calls, stderr %q", r.code, len(r.calls), r.stderr)
	}
	for _, key := range []string{"two words", `a"b`, strings.Repeat("k", 256)} {
		r := run(t, append(createArgs, "--idempotency-key", key), nil, nil)
		if r.code != exitUsage || len(r.calls) != 0 || !strings.Contains(r.stderr, "--idempotency-key") {
			t.Errorf("--idempotency-key %q: exit %d, %d calls, stderr %q", key, r.code, len(r.calls), r.stderr)
		}
	}
}
