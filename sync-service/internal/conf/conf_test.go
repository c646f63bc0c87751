package conf

import (
	"strings"
	"testing"
	"time"

	"github.com/lurus-switch/lurus-switch/lurus-common/config/configtest"
)

func TestShippedConfigLoads(t *testing.T) {
	c := configtest.LoadShipped(t, Load, map[string]string{"LURUS_SYNC_ALLOWED_ORIGINS": ""})
	if c.Server.Addr != "127.0.0.1:18104" || c.WS.PingInterval != 30*time.Second || c.Auth.TicketTTL != time.Minute {
		t.Fatalf("unexpected values: %+v", c)
	}
	want := []string{"https://ai.lurus.cn", "http://localhost:5173", "http://127.0.0.1:5173"}
	if strings.Join(c.Auth.AllowedOrigins, " ") != strings.Join(want, " ") {
		t.Fatalf("origins = %q", c.Auth.AllowedOrigins)
	}
}

func TestEnvOverrides(t *testing.T) {
	c := configtest.LoadShipped(t, Load, map[string]string{"LURUS_SYNC_ADDR": "127.0.0.1:0", "LURUS_NATS_NAMESPACE": "t1234",
		"LURUS_SYNC_REDIS_PREFIX": "t:x:", "LURUS_SYNC_ALLOWED_ORIGINS": "https://a.example, https://*.b.example:8443"})
	if c.Server.Addr != "127.0.0.1:0" || c.NATS.Namespace != "t1234" || c.Redis.Prefix != "t:x:" || len(c.Auth.AllowedOrigins) != 2 {
		t.Fatalf("overrides not applied: %+v", c)
	}
}

func TestValidate(t *testing.T) {
	configtest.Validate(t, configtest.Defaults[Config], []configtest.Case[Config]{
		{Name: "defaults", Mutate: func(*Config) {}, Want: ""},
		{Name: "bad addr", Mutate: func(c *Config) { c.Server.Addr = "18104" }, Want: "server.addr"},
		{Name: "cache ttl over 60s", Mutate: func(c *Config) { c.Auth.KeyCacheTTL = 61 * time.Second }, Want: "key_cache_ttl"},
		{Name: "negative ttl over 5s", Mutate: func(c *Config) { c.Auth.NegativeCacheTTL = 6 * time.Second }, Want: "negative_cache_ttl"},
		{Name: "origin with path", Mutate: func(c *Config) { c.Auth.AllowedOrigins = []string{"https://a.example/app"} }, Want: "allowed_origins"},
		{Name: "origin inner wildcard", Mutate: func(c *Config) { c.Auth.AllowedOrigins = []string{"https://a.*.example"} }, Want: "allowed_origins"},
		{Name: "namespace with dot", Mutate: func(c *Config) { c.NATS.Namespace = "a.b" }, Want: "nats.namespace"},
		{Name: "zero send queue", Mutate: func(c *Config) { c.WS.SendQueue = 0 }, Want: "send_queue"},
		{Name: "tiny read limit", Mutate: func(c *Config) { c.WS.ReadLimitBytes = 10 }, Want: "read_limit_bytes"},
		{Name: "bad proxy cidr", Mutate: func(c *Config) { c.Server.TrustedProxies = []string{"10.0.0.0/33"} }, Want: "trusted_proxies"},
		{Name: "billing url", Mutate: func(c *Config) { c.Billing.URL = "127.0.0.1:18103" }, Want: "billing.url"},
	})
}
