// Package conf is provider-service's configuration: one plain struct loaded
// from configs/config.yaml (addresses from the environment with dev
// defaults), and the secrets, which come only from the environment.
package conf

import (
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/lurus-switch/lurus-switch/lurus-common/config"
	"github.com/lurus-switch/lurus-switch/lurus-common/postgres"
	"github.com/lurus-switch/lurus-switch/lurus-common/redisx"
)

// Config is the whole service configuration.
type Config struct {
	HTTP     HTTP            `yaml:"http"`
	Database postgres.Config `yaml:"database"`
	Redis    redisx.Config   `yaml:"redis"`
	NATS     NATS            `yaml:"nats"`
	Snapshot Snapshot        `yaml:"snapshot"`
	Probe    Probe           `yaml:"probe"`
	Log      Log             `yaml:"log"`
}

// HTTP configures the listener.
type HTTP struct {
	// Addr is the listen address (":18101" by default).
	Addr string `yaml:"addr"`
	// Timeout bounds each request's handling (it must exceed Probe.Timeout,
	// since a test request probes every key of a provider).
	Timeout time.Duration `yaml:"timeout"`
	// MaxBodyBytes caps request bodies; larger ones get 413.
	MaxBodyBytes int64 `yaml:"max_body_bytes"`
	// ShutdownTimeout bounds the drain of in-flight requests on SIGTERM.
	ShutdownTimeout time.Duration `yaml:"shutdown_timeout"`
}

// NATS configures the connection used for provider.changed.
type NATS struct {
	URL string `yaml:"url"`
	// Namespace prefixes subjects and streams ("" in production; tests and
	// E2E runs use a random one).
	Namespace string `yaml:"namespace"`
}

// Snapshot configures the gateway snapshot cache in Redis.
type Snapshot struct {
	// CacheTTL is how long an encoded snapshot stays in Redis without a
	// change (a change replaces it at once).
	CacheTTL time.Duration `yaml:"cache_ttl"`
}

// Probe configures POST /api/v1/providers/{id}/test.
type Probe struct {
	// Timeout bounds one probe request to an upstream.
	Timeout time.Duration `yaml:"timeout"`
	// Concurrency bounds how many keys of one provider are probed at once.
	Concurrency int `yaml:"concurrency"`
	// HealthTTL is how long the last probe result is kept for
	// GET /api/v1/providers/{id}/health.
	HealthTTL time.Duration `yaml:"health_ttl"`
}

// Log configures the logger.
type Log struct {
	Level string `yaml:"level"`
}

// SetDefaults fills unset fields; values in the file override them.
func (c *Config) SetDefaults() {
	if c.HTTP.Addr == "" {
		c.HTTP.Addr = ":18101"
	}
	if c.HTTP.Timeout == 0 {
		c.HTTP.Timeout = 30 * time.Second
	}
	if c.HTTP.MaxBodyBytes == 0 {
		c.HTTP.MaxBodyBytes = 1 << 20
	}
	if c.HTTP.ShutdownTimeout == 0 {
		c.HTTP.ShutdownTimeout = 15 * time.Second
	}
	c.Database.SetDefaults()
	c.Redis.SetDefaults()
	if c.Redis.Prefix == "" {
		c.Redis.Prefix = "lurus:provider:"
	}
	if c.NATS.URL == "" {
		c.NATS.URL = "nats://127.0.0.1:4222"
	}
	if c.Snapshot.CacheTTL == 0 {
		c.Snapshot.CacheTTL = time.Hour
	}
	if c.Probe.Timeout == 0 {
		c.Probe.Timeout = 5 * time.Second
	}
	if c.Probe.Concurrency == 0 {
		c.Probe.Concurrency = 4
	}
	if c.Probe.HealthTTL == 0 {
		c.Probe.HealthTTL = 24 * time.Hour
	}
	if c.Log.Level == "" {
		c.Log.Level = "info"
	}
}

// Validate checks the loaded configuration.
func (c *Config) Validate() error {
	var errs []error
	if c.HTTP.Addr == "" {
		errs = append(errs, errors.New("http.addr is required"))
	}
	if c.HTTP.MaxBodyBytes < 1024 {
		errs = append(errs, fmt.Errorf("http.max_body_bytes %d is below 1024", c.HTTP.MaxBodyBytes))
	}
	if c.HTTP.ShutdownTimeout <= 0 {
		errs = append(errs, errors.New("http.shutdown_timeout must be positive"))
	}
	if err := c.Database.Validate(); err != nil {
		errs = append(errs, err)
	}
	if err := c.Redis.Validate(); err != nil {
		errs = append(errs, err)
	}
	if c.NATS.URL == "" {
		errs = append(errs, errors.New("nats.url is required"))
	}
	if c.Snapshot.CacheTTL < time.Second {
		errs = append(errs, errors.New("snapshot.cache_ttl must be at least 1s"))
	}
	if c.Probe.Timeout <= 0 || c.Probe.Timeout > time.Minute {
		errs = append(errs, fmt.Errorf("probe.timeout %s must be in (0, 1m]", c.Probe.Timeout))
	}
	if c.Probe.Concurrency < 1 {
		errs = append(errs, errors.New("probe.concurrency must be at least 1"))
	}
	if c.Probe.HealthTTL < time.Second {
		errs = append(errs, errors.New("probe.health_ttl must be at least 1s"))
	}
	if c.HTTP.Timeout <= c.Probe.Timeout {
		errs = append(errs, fmt.Errorf("http.timeout %s must exceed probe.timeout %s", c.HTTP.Timeout, c.Probe.Timeout))
	}
	return errors.Join(errs...)
}

// Load reads and validates the file at path.
func Load(path string) (Config, error) {
	var c Config
	if err := config.Load(path, &c); err != nil {
		return Config{}, err
	}
	return c, nil
}

// Secrets are the values provider-service reads from the environment only.
type Secrets struct {
	AdminToken    string // LURUS_ADMIN_TOKEN: admin routes
	InternalToken string // LURUS_INTERNAL_TOKEN: /internal routes
	// SecretKey is "<key id>:<base64 of 32 bytes>" (LURUS_SECRET_KEY), the
	// key upstream API keys are encrypted under.
	SecretKey string
	// PreviousSecretKeys is a comma-separated list in the same form
	// (LURUS_SECRET_KEYS_PREVIOUS, optional): rows encrypted under them
	// still decrypt until rotate-keys re-encrypts them.
	PreviousSecretKeys string
}

// Environment variable names of the secrets.
const (
	EnvAdminToken         = "LURUS_ADMIN_TOKEN"
	EnvInternalToken      = "LURUS_INTERNAL_TOKEN"
	EnvSecretKey          = "LURUS_SECRET_KEY"
	EnvPreviousSecretKeys = "LURUS_SECRET_KEYS_PREVIOUS"
)

// LoadSecrets reads every secret serve needs. Development values are
// refused unless LURUS_ENV=dev (config.Secret).
func LoadSecrets() (Secrets, error) {
	m, err := config.Secrets(EnvAdminToken, EnvInternalToken)
	if err != nil {
		return Secrets{}, err
	}
	s := Secrets{AdminToken: m[EnvAdminToken], InternalToken: m[EnvInternalToken]}
	if s.AdminToken == s.InternalToken {
		return Secrets{}, fmt.Errorf("config: %s and %s must differ", EnvAdminToken, EnvInternalToken)
	}
	if s.SecretKey, s.PreviousSecretKeys, err = LoadEncryptionSecrets(); err != nil {
		return Secrets{}, err
	}
	return s, nil
}

// LoadEncryptionSecrets reads LURUS_SECRET_KEY and, if set,
// LURUS_SECRET_KEYS_PREVIOUS (what rotate-keys needs).
func LoadEncryptionSecrets() (current, previous string, err error) {
	if current, err = config.Secret(EnvSecretKey); err != nil {
		return "", "", err
	}
	if os.Getenv(EnvPreviousSecretKeys) != "" {
		if previous, err = config.Secret(EnvPreviousSecretKeys); err != nil {
			return "", "", err
		}
	}
	return current, previous, nil
}
