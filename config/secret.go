package config

import (
	"fmt"
	"io"
	"log/slog"
	"os"
	"strings"
)

// Secret is a secret read once, at start-up, from the file its variable
// names (the "file" option of its env tag; parse reads it, bounded): a
// password or a shared key. A
// trailing line ending is not part of it, and Load refuses a file that is
// empty, holds only white space or is larger than maxSecretFile. It prints as "[redacted]", so
// logging a Config (LogValue) or formatting one in an error never shows it.
//
// Files Lockbox watches and reads again (TLS certificates and keys, JWKS
// files, the HMAC token key) stay paths: their variables name a file, not
// a value.
type Secret string

// maxSecretFile bounds a secret file: a password or a key is a few hundred
// bytes, and a wrong path (a log, a disk image) must not be read whole into
// memory.
const maxSecretFile = 64 << 10

// UnmarshalText takes the file's contents, as env hands them over.
func (s *Secret) UnmarshalText(b []byte) error {
	*s = Secret(strings.TrimRight(string(b), "\r\n"))
	return nil
}

// Value returns the secret itself, for the component that uses it.
func (s Secret) Value() string { return string(s) }

// String hides the secret, leaving only whether there is one.
func (s Secret) String() string {
	if s == "" {
		return ""
	}
	return "[redacted]"
}

// GoString hides the secret from %#v too.
func (s Secret) GoString() string { return `config.Secret("` + s.String() + `")` }

// LogValue hides the secret from slog.
func (s Secret) LogValue() slog.Value { return slog.StringValue(s.String()) }

// ReadClientSecret reads the client secret of an issuer's console section
// (client_secret_file in LOCKBOX_ISSUERS_FILE): the file's contents
// without the white space around them. A file with nothing else, such as
// one written with "echo > file", is refused as empty, as the variables'
// secret files are: the admin center would otherwise start with no secret
// and fail every sign-in. Config.Validate and the admin center's wiring
// both read it here, so the check is of the value that is used.
func ReadClientSecret(path string) (string, error) {
	if err := readableFile(path); err != nil {
		return "", err
	}
	b, err := readSecretFile(path)
	if err != nil {
		return "", err
	}
	secret := strings.TrimSpace(string(b))
	if secret == "" {
		return "", fmt.Errorf("%s is empty", path)
	}
	return secret, nil
}

// readSecretFile reads a secret file, refusing one of more than
// maxSecretFile bytes before reading past the bound, whatever it is: a
// regular file, a pipe (bash's <(...)) or a device.
func readSecretFile(path string) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxSecretFile+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxSecretFile {
		return nil, fmt.Errorf("%s is larger than %d bytes: not a secret file", path, maxSecretFile)
	}
	return b, nil
}
