package cli

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/lockbox-oss/lockbox/api/wire"
)

// The seal of a tenant's audit chain stored beside it is within reach of
// whoever can write to Redis: deleted after a rewrite, the next seal is
// made over the rewritten chain. "audit verify --seal-file F" keeps the
// seal of each good verification in F, outside Redis, and has the next
// verification check the chain against it.

// maxSealFile bounds what --seal-file reads: a seal is a few hundred
// bytes, and a file far larger is not one.
const maxSealFile = 16 << 10

// readSealFile returns the seal kept in path, trimmed; empty when the
// file does not exist yet or holds nothing (the first run of a job that
// keeps seals).
func readSealFile(path string) (string, error) {
	f, err := os.Open(path)
	if errors.Is(err, fs.ErrNotExist) {
		// A first run: the seal is to be kept there, so the directory
		// must be, before the chain is checked for nothing.
		dir := filepath.Dir(path)
		if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
			return "", fmt.Errorf("--seal-file %s: its directory %s does not exist: create it, so that the seal can be kept there", path, dir)
		}
		return "", nil
	}
	if err != nil {
		return "", sealFileError(path, err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxSealFile+1))
	if err != nil {
		return "", sealFileError(path, err)
	}
	if len(b) > maxSealFile {
		return "", fmt.Errorf("--seal-file %s: larger than %d bytes: not a seal this command wrote", path, maxSealFile)
	}
	return strings.TrimSpace(string(b)), nil
}

// writeSealFile replaces path with token: written beside it and renamed
// over it, so that a job cut off midway leaves the seal it had, never
// part of one. The file is the user's alone (0600), as the token file is.
func writeSealFile(path, token string) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.partial")
	if err != nil {
		return sealFileError(path, err)
	}
	defer os.Remove(f.Name())
	if _, err := f.WriteString(token + "\n"); err != nil {
		f.Close()
		return sealFileError(path, err)
	}
	if err := f.Sync(); err != nil {
		f.Close()
		return sealFileError(path, err)
	}
	if err := f.Close(); err != nil {
		return sealFileError(path, err)
	}
	if err := os.Rename(f.Name(), path); err != nil {
		return sealFileError(path, err)
	}
	return nil
}

// sealFileError is err of reading or writing --seal-file's file.
func sealFileError(path string, err error) error { return flagFileError("--seal-file", path, err) }

// sealToKeep is the seal of v to keep in the seal file in place of kept
// (the one sent; empty for none), or "" to leave the file as it is: only
// a chain found intact hands on its seal, and never one older than the
// seal kept (a stored seal set back to an earlier one, or lagging behind
// another replica's), nor one the server could not place when a
// checkable one is kept.
func sealToKeep(v wire.AuditVerification, kept string) string {
	switch {
	case !v.OK || v.SealToken == "" || v.SealToken == kept:
		return ""
	case kept == "":
		return v.SealToken
	case v.SealedThrough == "" || v.SinceSealedThrough == "":
		return ""
	case streamIDLess(v.SealedThrough, v.SinceSealedThrough):
		return ""
	}
	return v.SealToken
}

// streamIDLess reports whether stream id a ("ms-seq") comes before b; ids
// that do not parse compare as strings.
func streamIDLess(a, b string) bool {
	am, as, aok := parseStreamID(a)
	bm, bs, bok := parseStreamID(b)
	if !aok || !bok {
		return a < b
	}
	return am < bm || (am == bm && as < bs)
}

func parseStreamID(id string) (ms, seq uint64, ok bool) {
	m, s, found := strings.Cut(id, "-")
	ms, err1 := strconv.ParseUint(m, 10, 64)
	seq, err2 := strconv.ParseUint(s, 10, 64)
	return ms, seq, found && err1 == nil && err2 == nil
}

// keptLine words how the chain compared with the seal kept in path.
func keptLine(v wire.AuditVerification, path string) string {
	seal := fmt.Sprintf("the seal kept in %s (made at %s, through entry %s)", clean(path), clean(v.SinceSealedAt), clean(v.SinceSealedThrough))
	switch v.SinceSeal {
	case "verified":
		return "verified: the chain still holds what Lockbox sealed in " + seal
	case "trimmed":
		return "not checked: retention removed the records sealed in " + seal
	case "broken":
		return "BROKEN: the log no longer holds what Lockbox sealed in " + seal
	case "unchecked":
		return "not reached: the chain breaks before the record sealed in " + seal
	}
	return clean(v.SinceSeal)
}
