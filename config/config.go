// Package config loads Lockbox's configuration from LOCKBOX_-prefixed
// environment variables and checks it before anything is built, so that bad
// configuration stops start-up with a message naming the variable.
//
// Load parses and runs the checks that hold in every mode; Validate adds what
// one subcommand needs (a Redis and a JWT key for "lockbox serve") and looks
// at the files the configuration names. Every error names the variable with
// its full name, e.g. `LOCKBOX_REDIS_URL: required by "lockbox serve"`.
//
// The package owns no behaviour beyond that: it imports no other Lockbox
// package, and cmd/ hands the values to the components it builds.
package config

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/url"
	"os"
	"reflect"
	"strconv"
	"strings"
	"time"

	"github.com/caarlos0/env/v11"
	"github.com/redis/go-redis/v9"
)

// Prefix starts the name of every variable this package reads.
const Prefix = "LOCKBOX_"

// MaxJWTLeeway bounds LOCKBOX_JWT_LEEWAY: the leeway is how long after "exp"
// a token is still accepted, so a large one quietly extends every session.
const MaxJWTLeeway = 5 * time.Minute

// Config is Lockbox's configuration. The comment on each field is the
// variable's documentation (README copies it); the desc tag carries the same
// text for Vars.
type Config struct {
	// APIAddr is the host:port of the control-plane HTTP API (/v1) and the
	// console.
	APIAddr string `env:"API_ADDR" envDefault:"127.0.0.1:8080" desc:"host:port of the control-plane HTTP API (/v1) and the console"`
	// ProxyAddr is the host:port of the enforcement proxy that support
	// engineers call.
	ProxyAddr string `env:"PROXY_ADDR" envDefault:"127.0.0.1:8081" desc:"host:port of the enforcement proxy that support engineers call"`
	// MetricsAddr is the host:port serving /metrics, /livez and /readyz;
	// never the proxy's.
	MetricsAddr string `env:"METRICS_ADDR" envDefault:"127.0.0.1:8082" desc:"host:port serving /metrics, /livez and /readyz; never the proxy's"`

	// RedisURL is the Redis holding requests, grants and audit records
	// (redis://, rediss:// or unix://). Required by "lockbox serve"; when
	// empty, "lockbox dev" runs an embedded store.
	RedisURL string `env:"REDIS_URL" desc:"Redis holding requests, grants and audit records (redis://, rediss:// or unix://); required by \"lockbox serve\", embedded store in \"lockbox dev\" when empty"`
	// RedisTimeout is the deadline of each control-plane Redis call.
	RedisTimeout time.Duration `env:"REDIS_TIMEOUT" envDefault:"2s" desc:"deadline of each control-plane Redis call"`

	// PolicyDir is the directory of Rego policies and their data; empty means
	// the policies built into the binary.
	PolicyDir string `env:"POLICY_DIR" desc:"directory of Rego policies and their data; empty means the policies built into the binary"`

	// JWTIssuer is the required "iss" of every token.
	JWTIssuer string `env:"JWT_ISSUER" envDefault:"lockbox" desc:"required \"iss\" of every token"`
	// JWTAudience is the required "aud" of every token.
	JWTAudience string `env:"JWT_AUDIENCE" envDefault:"lockbox" desc:"required \"aud\" of every token"`
	// JWKSFile is a JWKS file of public keys that verify tokens. "lockbox
	// serve" needs exactly one of it and JWTHMACSecretFile.
	JWKSFile string `env:"JWT_JWKS_FILE" desc:"JWKS file of public keys that verify tokens; \"lockbox serve\" needs exactly one of this and LOCKBOX_JWT_HMAC_SECRET_FILE"`
	// JWTHMACSecretFile is a file holding the HMAC secret that verifies
	// tokens. "lockbox serve" needs exactly one of it and JWKSFile.
	JWTHMACSecretFile string `env:"JWT_HMAC_SECRET_FILE" desc:"file holding the HMAC secret that verifies tokens; \"lockbox serve\" needs exactly one of this and LOCKBOX_JWT_JWKS_FILE"`
	// JWTLeeway is the clock skew allowed when checking "exp" and "nbf"
	// (at most 5m).
	JWTLeeway time.Duration `env:"JWT_LEEWAY" envDefault:"30s" desc:"clock skew allowed when checking \"exp\" and \"nbf\" (at most 5m)"`

	// DevDir is where "lockbox dev" keeps its signing keys and tokens.
	DevDir string `env:"DEV_DIR" envDefault:".lockbox-dev" desc:"where \"lockbox dev\" keeps its signing keys and tokens"`

	// LogLevel is the least severe level logged: debug, info, warn or error.
	LogLevel string `env:"LOG_LEVEL" envDefault:"info" desc:"least severe level logged: debug, info, warn or error"`
	// LogFormat is the log format: text or json.
	LogFormat string `env:"LOG_FORMAT" envDefault:"text" desc:"log format: text or json"`

	// SweepInterval is how often expired requests and ended grants are
	// settled. Access ends at a grant's expiry regardless; the sweep records
	// the state change.
	SweepInterval time.Duration `env:"SWEEP_INTERVAL" envDefault:"5s" desc:"how often expired requests and ended grants are settled (access ends at a grant's expiry regardless)"`

	// ShutdownTimeout is how long in-flight calls may run after a stop
	// signal.
	ShutdownTimeout time.Duration `env:"SHUTDOWN_TIMEOUT" envDefault:"10s" desc:"how long in-flight calls may run after a stop signal"`
}

// Mode is the subcommand a configuration is validated for.
type Mode int

const (
	// ModeServe is "lockbox serve": production, everything explicit.
	ModeServe Mode = iota
	// ModeDev is "lockbox dev": an embedded store and dev keys fill the gaps.
	ModeDev
)

func (m Mode) String() string {
	switch m {
	case ModeServe:
		return "serve"
	case ModeDev:
		return "dev"
	}
	return "Mode(" + strconv.Itoa(int(m)) + ")"
}

// VarError is a problem with one variable.
type VarError struct {
	Var string // full name, e.g. LOCKBOX_REDIS_URL
	Err error
}

func (e *VarError) Error() string { return e.Var + ": " + e.Err.Error() }
func (e *VarError) Unwrap() error { return e.Err }

// Load reads the configuration from environ (variable name → value; nil is
// an empty environment, never the process's) and runs the checks that hold
// in every mode. Callers then call Validate for their mode.
func Load(environ map[string]string) (Config, error) {
	if environ == nil {
		// env.Options treats a nil Environment as "use os.Environ()".
		environ = map[string]string{}
	}
	var c Config
	if err := env.ParseWithOptions(&c, env.Options{Prefix: Prefix, Environment: environ}); err != nil {
		return Config{}, nameParseErrors(err)
	}
	if err := c.check(); err != nil {
		return Config{}, err
	}
	return c, nil
}

// FromOS is Load over the process environment.
func FromOS() (Config, error) {
	return Load(env.ToMap(os.Environ()))
}

// nameParseErrors rewrites caarlos0/env's parse errors, which name the Go
// field ("RedisTimeout"), to name the variable the user set.
func nameParseErrors(err error) error {
	var agg env.AggregateError
	if !errors.As(err, &agg) {
		return err
	}
	errs := make([]error, 0, len(agg.Errors))
	for _, e := range agg.Errors {
		var pe env.ParseError
		if errors.As(e, &pe) {
			if name, ok := fieldVar[pe.Name]; ok {
				e = &VarError{Var: name, Err: pe.Err}
			}
		}
		errs = append(errs, e)
	}
	return errors.Join(errs...)
}

// Validate checks c for mode: everything Load checks, what the mode
// requires, and that the files and directories named exist and can be read.
// All problems are reported, joined, each naming its variable.
func (c Config) Validate(mode Mode) error {
	var errs []error
	if err := c.check(); err != nil {
		errs = append(errs, err)
	}
	switch mode {
	case ModeServe:
		if c.RedisURL == "" {
			errs = append(errs, varErr("RedisURL", "required by %q", "lockbox serve"))
		}
		if c.JWKSFile == "" && c.JWTHMACSecretFile == "" {
			errs = append(errs, fmt.Errorf("%s or %s: one is required by %q",
				varName("JWKSFile"), varName("JWTHMACSecretFile"), "lockbox serve"))
		}
	case ModeDev:
	default:
		return fmt.Errorf("config: unknown mode %v", mode)
	}
	if c.JWKSFile != "" && c.JWTHMACSecretFile != "" {
		errs = append(errs, fmt.Errorf("%s and %s: set only one",
			varName("JWKSFile"), varName("JWTHMACSecretFile")))
	}
	files := []struct{ field, path string }{
		{"JWKSFile", c.JWKSFile}, {"JWTHMACSecretFile", c.JWTHMACSecretFile},
	}
	for _, f := range files {
		if f.path == "" {
			continue
		}
		if err := readableFile(f.path); err != nil {
			errs = append(errs, &VarError{Var: varName(f.field), Err: err})
		}
	}
	if c.PolicyDir != "" {
		if fi, err := os.Stat(c.PolicyDir); err != nil {
			errs = append(errs, &VarError{Var: varName("PolicyDir"), Err: err})
		} else if !fi.IsDir() {
			errs = append(errs, varErr("PolicyDir", "%s is not a directory", c.PolicyDir))
		}
	}
	return errors.Join(errs...)
}

// check runs the checks that need neither a mode nor the file system.
func (c Config) check() error {
	var errs []error
	addrs := []struct{ field, addr string }{
		{"APIAddr", c.APIAddr}, {"ProxyAddr", c.ProxyAddr}, {"MetricsAddr", c.MetricsAddr},
	}
	for i, a := range addrs {
		if err := checkAddr(a.addr); err != nil {
			errs = append(errs, &VarError{Var: varName(a.field), Err: err})
			continue
		}
		// Two listeners on one address fail at start-up anyway, but this
		// names the variables; and health must never share the proxy's
		// port. Port 0 (pick a free one) may repeat.
		for _, b := range addrs[:i] {
			if a.addr == b.addr && !strings.HasSuffix(a.addr, ":0") {
				errs = append(errs, varErr(a.field, "same address as %s (%s)", varName(b.field), a.addr))
			}
		}
	}
	if c.RedisURL != "" {
		if _, err := redis.ParseURL(c.RedisURL); err != nil {
			// url.Error quotes the whole URL, password included; keep only
			// the reason.
			var ue *url.Error
			if errors.As(err, &ue) {
				err = ue.Err
			}
			errs = append(errs, varErr("RedisURL", "not a redis://, rediss:// or unix:// URL: %w", err))
		}
	}
	durations := []struct {
		field string
		d     time.Duration
	}{
		{"RedisTimeout", c.RedisTimeout}, {"JWTLeeway", c.JWTLeeway},
		{"SweepInterval", c.SweepInterval}, {"ShutdownTimeout", c.ShutdownTimeout},
	}
	for _, d := range durations {
		if d.d <= 0 {
			errs = append(errs, varErr(d.field, "must be a positive duration, got %s", d.d))
		}
	}
	if c.JWTLeeway > MaxJWTLeeway {
		errs = append(errs, varErr("JWTLeeway", "%s is more than the %s allowed", c.JWTLeeway, MaxJWTLeeway))
	}
	if c.JWTIssuer == "" {
		errs = append(errs, varErr("JWTIssuer", "must not be empty"))
	}
	if c.JWTAudience == "" {
		errs = append(errs, varErr("JWTAudience", "must not be empty"))
	}
	if c.DevDir == "" {
		errs = append(errs, varErr("DevDir", "must not be empty"))
	}
	if _, ok := logLevels[c.LogLevel]; !ok {
		errs = append(errs, varErr("LogLevel", "%q is not one of debug, info, warn, error", c.LogLevel))
	}
	if c.LogFormat != "text" && c.LogFormat != "json" {
		errs = append(errs, varErr("LogFormat", "%q is not one of text, json", c.LogFormat))
	}
	return errors.Join(errs...)
}

func checkAddr(addr string) error {
	_, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q is not host:port: %w", addr, err)
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return fmt.Errorf("%q is not host:port: port %q is not a number from 0 to 65535", addr, port)
	}
	return nil
}

// readableFile checks that path is a regular file this process can read
// and that it isn't empty. Its contents never appear in an error.
func readableFile(path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if !fi.Mode().IsRegular() {
		return fmt.Errorf("%s is not a regular file", path)
	}
	if _, err := f.Read(make([]byte, 1)); err == io.EOF {
		return fmt.Errorf("%s is empty", path)
	} else if err != nil {
		return err
	}
	return nil
}

var logLevels = map[string]slog.Level{
	"debug": slog.LevelDebug,
	"info":  slog.LevelInfo,
	"warn":  slog.LevelWarn,
	"error": slog.LevelError,
}

// Logger returns a logger writing to w in c's format at c's level. Values
// Validate would refuse fall back to text at info.
func (c Config) Logger(w io.Writer) *slog.Logger {
	level, ok := logLevels[c.LogLevel]
	if !ok {
		level = slog.LevelInfo
	}
	opts := &slog.HandlerOptions{Level: level}
	if c.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// LogValue lets c be logged at start-up: every variable by its full name,
// with the password in LOCKBOX_REDIS_URL redacted.
func (c Config) LogValue() slog.Value {
	v := reflect.ValueOf(c)
	t := v.Type()
	attrs := make([]slog.Attr, 0, t.NumField())
	for i := range t.NumField() {
		name := fieldVar[t.Field(i).Name]
		val := fmt.Sprint(v.Field(i).Interface())
		if t.Field(i).Name == "RedisURL" {
			val = redactURL(val)
		}
		attrs = append(attrs, slog.String(name, val))
	}
	return slog.GroupValue(attrs...)
}

func redactURL(s string) string {
	if s == "" {
		return ""
	}
	u, err := url.Parse(s)
	if err != nil {
		return "(unparseable)"
	}
	return u.Redacted()
}

// VarDoc documents one variable.
type VarDoc struct {
	Name        string // full name, e.g. LOCKBOX_REDIS_URL
	Default     string // "" when the variable has no default
	Description string
}

// Vars documents every variable Config reads, in field order. It is derived
// from the struct tags, so README's table can't drift from the code.
func Vars() []VarDoc {
	t := reflect.TypeFor[Config]()
	docs := make([]VarDoc, 0, t.NumField())
	for i := range t.NumField() {
		f := t.Field(i)
		docs = append(docs, VarDoc{
			Name:        fieldVar[f.Name],
			Default:     f.Tag.Get("envDefault"),
			Description: f.Tag.Get("desc"),
		})
	}
	return docs
}

// fieldVar maps each Config field name to its variable's full name.
var fieldVar = func() map[string]string {
	t := reflect.TypeFor[Config]()
	m := make(map[string]string, t.NumField())
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("env"), ",")
		m[f.Name] = Prefix + name
	}
	return m
}()

// varName is the full variable name of Config field field.
func varName(field string) string {
	name, ok := fieldVar[field]
	if !ok {
		panic("config: no field " + field)
	}
	return name
}

// varErr builds a *VarError for the variable of Config field field.
func varErr(field, format string, args ...any) error {
	return &VarError{Var: varName(field), Err: fmt.Errorf(format, args...)}
}
