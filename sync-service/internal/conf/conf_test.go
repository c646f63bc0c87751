package conf

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/lurus-switch/lurus-switch/lurus-common/config"
)

func TestShippedConfigLoads(t *testing.T) {
	t.Setenv("LURUS_SYNC_ALLOWED_ORIGINS", "")
	var c Config
	if err := config.Load(filepath.Join("..", "..", "configs", "config.yaml"), &c); err != nil {
		t.Fatal(err)
	}
	if c.Server.Addr != "127.0.0.1:18104" || c.WS.PingInterval != 30*time.Second || c.Auth.TicketTTL != time.Minute {
		t.Fatalf("unexpected values: %+v", c)
	}
	want := []string{"https://ai.lurus.cn", "http://localhost:5173", "http://127.0.0.1:5173"}
	if strings.Join(c.Auth.AllowedOrigins, " ") != strings.Join(want, " ") {
		t.Fatalf("origins = %q", c.Auth.AllowedOrigins)
	}
}

func TestEnvOverrides(t *testing.T) {
	t.Setenv("LURUS_SYNC_ADDR", "127.0.0.1:0")
	t.Setenv("LURUS_NATS_NAMESPACE", "t1234")
	t.Setenv("LURUS_SYNC_REDIS_PREFIX", "t:x:")
	t.Setenv("LURUS_SYNC_ALLOWED_ORIGINS", "https://a.example, https://*.b.example:8443")
	raw, err := os.ReadFile(filepath.Join("..", "..", "configs", "config.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	var c Config
	if err := config.Decode(raw, &c); err != nil {
		t.Fatal(err)
	}
	if c.Server.Addr != "127.0.0.1:0" || c.NATS.Namespace != "t1234" || c.Redis.Prefix != "t:x:" || len(c.Auth.AllowedOrigins) != 2 {
		t.Fatalf("overrides not applied: %+v", c)
	}
}

func TestValidate(t *testing.T) {
	tests := []struct {
		name    string
		mutate  func(*Config)
		wantErr string
	}{
		{"defaults", func(*Config) {}, ""},
		{"bad addr", func(c *Config) { c.Server.Addr = "18104" }, "server.addr"},
		{"cache ttl over 60s", func(c *Config) { c.Auth.KeyCacheTTL = 61 * time.Second }, "key_cache_ttl"},
		{"negative ttl over 5s", func(c *Config) { c.Auth.NegativeCacheTTL = 6 * time.Second }, "negative_cache_ttl"},
		{"origin with path", func(c *Config) { c.Auth.AllowedOrigins = []string{"https://a.example/app"} }, "allowed_origins"},
		{"origin inner wildcard", func(c *Config) { c.Auth.AllowedOrigins = []string{"https://a.*.example"} }, "allowed_origins"},
		{"namespace with dot", func(c *Config) { c.NATS.Namespace = "a.b" }, "nats.namespace"},
		{"zero send queue", func(c *Config) { c.WS.SendQueue = 0 }, "send_queue"},
		{"tiny read limit", func(c *Config) { c.WS.ReadLimitBytes = 10 }, "read_limit_bytes"},
		{"bad proxy cidr", func(c *Config) { c.Server.TrustedProxies = []string{"10.0.0.0/33"} }, "trusted_proxies"},
		{"billing url", func(c *Config) { c.Billing.URL = "127.0.0.1:18103" }, "billing.url"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c Config
			c.SetDefaults()
			tt.mutate(&c)
			err := c.Validate()
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error = %v, want it to mention %q", err, tt.wantErr)
			}
		})
	}
}
