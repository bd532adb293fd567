//go:build unix

package identity

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	jose "github.com/go-jose/go-jose/v4"

	"github.com/lockbox-oss/lockbox/internal/clock"
)

// TestJWKSFileOlderReadPublishesNothing: a reload that read the key file
// before it was rotated must not publish what it read after a load that
// read the rotated file (the first token of the new key) published the new
// keys: the retired key would work again, and the new one not, until the
// next reload. The file is a FIFO while the reload reads it, so the test
// decides when that read ends.
func TestJWKSFileOlderReadPublishesNothing(t *testing.T) {
	oldKeys, newKeys := newTestKeys(t), newTestKeys(t)
	oldJWK := jose.JSONWebKey{Key: oldKeys.ed.Public(), KeyID: "old"}
	newJWK := jose.JSONWebKey{Key: newKeys.ed.Public(), KeyID: "new"}
	dir := t.TempDir()
	path := writeJWKS(t, filepath.Join(dir, "jwks.json"), oldJWK)
	clk := clock.NewFake(testNow)
	v, err := NewVerifier(Config{Issuer: testIssuer, Audience: testAudience, JWKSFile: path, Now: clk.Now, CacheSize: -1})
	must0(t, err)
	oldTok := tok{alg: jose.EdDSA, key: oldKeys.ed, kid: "old"}.sign(t)
	newTok := tok{alg: jose.EdDSA, key: newKeys.ed, kid: "new"}.sign(t)
	operator := Principal{Subject: "alice@example.test", Roles: []Role{RoleOperator}}

	fifo := filepath.Join(dir, "fifo")
	must0(t, syscall.Mkfifo(fifo, 0o644))
	must0(t, os.Rename(fifo, path))
	reloaded := make(chan error, 1)
	go func() { reloaded <- v.Reload() }()
	// Opening the FIFO for writing returns once the reload opened it.
	opened := make(chan *os.File, 1)
	go func() {
		w, err := os.OpenFile(path, os.O_WRONLY, 0)
		if err != nil {
			t.Error(err)
		}
		opened <- w
	}()
	var w *os.File
	select {
	case w = <-opened:
	case <-time.After(10 * time.Second):
		t.Fatal("the reload never opened the key file")
	}
	if w == nil {
		t.FailNow()
	}
	defer w.Close()
	// The reload is reading the old keys when the file is rotated.
	must0(t, json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{oldJWK}}))
	must0(t, os.Rename(writeJWKS(t, filepath.Join(dir, "rotated.json"), newJWK), path))
	p, err := v.Verify(context.Background(), newTok)
	checkResult(t, p, err, operator, "")

	must0(t, w.Close())
	select {
	case err := <-reloaded:
		must0(t, err)
	case <-time.After(10 * time.Second):
		t.Fatal("the reload never finished")
	}
	p, err = v.Verify(context.Background(), newTok)
	checkResult(t, p, err, operator, "")
	p, err = v.Verify(context.Background(), oldTok)
	checkResult(t, p, err, operator, "unknown signing key")
}
