package conf

import (
	"strings"
	"testing"
	"time"

	"github.com/lurus-switch/lurus-switch/lurus-common/config"
	"github.com/lurus-switch/lurus-switch/lurus-common/config/configtest"
)

// TestShippedConfigLoads loads configs/config.yaml as serve does, with the
// environment overrides E2E runs use.
func TestShippedConfigLoads(t *testing.T) {
	c := configtest.LoadShipped(t, Load, map[string]string{"LURUS_PROVIDER_ADDR": "127.0.0.1:0",
		"LURUS_NATS_NAMESPACE": "e2e-1", "LURUS_PROVIDER_REDIS_PREFIX": "e2e:1:", "LURUS_PROVIDER_DB_URL": ""})
	if c.Server.Addr != "127.0.0.1:0" || c.NATS.Namespace != "e2e-1" || c.Redis.Prefix != "e2e:1:" {
		t.Fatalf("env overrides not applied: %+v", c)
	}
	var d Config
	if d.SetDefaults(); d.Server.Addr != "127.0.0.1:18101" {
		t.Fatalf("the default listen address is loopback, like every service's: %q", d.Server.Addr)
	}
	if err := config.Decode([]byte("http: {addr: x}\n"), &d); err == nil || !strings.Contains(err.Error(), "key http.addr is now server.addr") {
		t.Fatalf("old key: %v", err)
	}
	if !strings.Contains(c.Database.URL, "lurus_provider") || c.Probe.Timeout != 5*time.Second || c.Server.MaxBodyBytes != 1<<20 {
		t.Fatalf("defaults: %+v", c)
	}
}

func TestValidate(t *testing.T) {
	configtest.Validate(t, func() *Config {
		var c Config
		c.SetDefaults()
		c.Database.URL = "postgres://x/y"
		c.Redis.Addr = "127.0.0.1:6379"
		return &c
	}, []configtest.Case[Config]{
		{Name: "ok", Mutate: func(*Config) {}, Want: ""},
		{Name: "no db", Mutate: func(c *Config) { c.Database.URL = "" }, Want: "database url"},
		{Name: "tiny body cap", Mutate: func(c *Config) { c.Server.MaxBodyBytes = 10 }, Want: "max_body_bytes"},
		{Name: "probe longer than request", Mutate: func(c *Config) { c.Probe.Timeout = c.Server.Timeout }, Want: "must exceed probe.timeout"},
		{Name: "no concurrency", Mutate: func(c *Config) { c.Probe.Concurrency = -1 }, Want: "concurrency"},
	})
}

func TestSecrets(t *testing.T) {
	t.Setenv("LURUS_ENV", "")
	t.Setenv(EnvAdminToken, "admin-abc")
	t.Setenv(EnvInternalToken, "admin-abc")
	t.Setenv(EnvSecretKey, "k1:AAAA")
	t.Setenv(EnvPreviousSecretKeys, "")
	if _, err := LoadSecrets(); err == nil || !strings.Contains(err.Error(), "must differ") {
		t.Fatalf("equal tokens: %v", err)
	}
	t.Setenv(EnvInternalToken, "internal-abc")
	t.Setenv(EnvPreviousSecretKeys, "dev-only:AAAA")
	if _, err := LoadSecrets(); err == nil || !strings.Contains(err.Error(), "development-only") {
		t.Fatalf("dev previous key outside dev: %v", err)
	}
	t.Setenv(EnvPreviousSecretKeys, "k0:BBBB")
	s, err := LoadSecrets()
	if err != nil || s.SecretKey != "k1:AAAA" || s.PreviousSecretKeys != "k0:BBBB" {
		t.Fatalf("%+v %v", s, err)
	}
}
