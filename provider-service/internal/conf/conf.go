// Package conf is provider-service's configuration: one plain struct loaded
// from configs/config.yaml (addresses from the environment with dev
// defaults), and the secrets, which come only from the environment.
package conf

import (
	"fmt"
	"os"
	"time"

	"github.com/lurus-switch/lurus-switch/lurus-common/config"
	"github.com/lurus-switch/lurus-switch/lurus-common/postgres"
	"github.com/lurus-switch/lurus-switch/lurus-common/redisx"
)

// Config is the whole service configuration.
type Config struct {
	Server   Server          `yaml:"server"`
	Database postgres.Config `yaml:"database"`
	Redis    redisx.Config   `yaml:"redis"`
	NATS     config.NATS     `yaml:"nats"`
	Snapshot Snapshot        `yaml:"snapshot"`
	Probe    Probe           `yaml:"probe"`
	Log      config.Log      `yaml:"log"`
}

// Server configures the listener (127.0.0.1:18101 by default).
type Server struct {
	config.Server `yaml:",inline"`
	// Timeout bounds each request's handling (it must exceed Probe.Timeout,
	// since a test request probes every key of a provider).
	Timeout time.Duration `yaml:"timeout"`
}

// Renamed lists the keys that were renamed when every service's listener
// moved under server.addr.
func (*Config) Renamed() map[string]string {
	return map[string]string{"http": "server", "http.addr": "server.addr"}
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

// SetDefaults fills the defaults; values in the file override them.
func (c *Config) SetDefaults() {
	c.Server = Server{Server: config.Server{Addr: "127.0.0.1:18101", MaxBodyBytes: 1 << 20, ShutdownTimeout: 15 * time.Second},
		Timeout: 30 * time.Second}
	c.Database.SetDefaults()
	c.Redis.SetDefaults()
	c.Redis.Prefix = "lurus:provider:"
	c.NATS.SetDefaults()
	c.Snapshot = Snapshot{CacheTTL: time.Hour}
	c.Probe = Probe{Timeout: 5 * time.Second, Concurrency: 4, HealthTTL: 24 * time.Hour}
	c.Log.SetDefaults()
}

// Validate checks the loaded configuration.
func (c *Config) Validate() error {
	var p config.Problems
	c.Server.Check(&p, 1024)
	p.Add(c.Database.Validate())
	p.Add(c.Redis.Validate())
	c.NATS.Check(&p)
	p.Check(c.Snapshot.CacheTTL >= time.Second, "snapshot.cache_ttl must be at least 1s")
	p.Check(c.Probe.Timeout > 0 && c.Probe.Timeout <= time.Minute, "probe.timeout %s must be in (0, 1m]", c.Probe.Timeout)
	p.Check(c.Probe.Concurrency >= 1, "probe.concurrency must be at least 1")
	p.Check(c.Probe.HealthTTL >= time.Second, "probe.health_ttl must be at least 1s")
	p.Check(c.Server.Timeout > c.Probe.Timeout, "server.timeout %s must exceed probe.timeout %s", c.Server.Timeout, c.Probe.Timeout)
	return p.Err()
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
