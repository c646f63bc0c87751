package conf

import (
	"testing"
	"time"

	"github.com/lurus-switch/lurus-switch/lurus-common/config/configtest"
)

// TestShippedConfigLoads loads configs/config.yaml with the environment
// overrides E2E runs use.
func TestShippedConfigLoads(t *testing.T) {
	c := configtest.LoadShipped(t, Load, map[string]string{
		"LURUS_REDIS_PREFIX": "t123:", "LURUS_NATS_NAMESPACE": "t123", "LURUS_BILLING_ADDR": "127.0.0.1:0"})
	if c.Redis.Prefix != "t123:" || c.NATS.Namespace != "t123" || c.Server.Addr != "127.0.0.1:0" {
		t.Fatalf("env overrides not applied: %+v %+v %+v", c.Redis, c.NATS, c.Server)
	}
	if len(c.Server.TrustedProxies) != 0 {
		t.Fatalf("no proxy is trusted unless LURUS_TRUSTED_PROXIES says so: %v", c.Server.TrustedProxies)
	}
	c = configtest.LoadShipped(t, Load, map[string]string{"LURUS_TRUSTED_PROXIES": "10.42.0.0/16, 172.29.0.0/16"})
	if len(c.Server.TrustedProxies) != 2 {
		t.Fatalf("LURUS_TRUSTED_PROXIES: %v", c.Server.TrustedProxies)
	}
	if c.SSE.KeepAlive != 20*time.Second || c.Billing.DefaultPrice != nil || c.Consumer.BatchSize != 500 {
		t.Fatalf("defaults: %+v %+v", c.SSE, c.Billing)
	}
	if g := c.Limits.Rules().Groups; len(g) != 1 || g["default"].Any() {
		t.Fatalf("shipped group limits: %+v", g)
	}
	if r := c.Rules(); r.MaxTokensPerRequest != 10_000_000 || r.MaxCostMicrosPerRequest != 10_000_000_000 {
		t.Fatalf("settle ceilings: %+v", r)
	}
}

func TestValidate(t *testing.T) {
	configtest.Decode[Config](t, []configtest.YAML{
		{Name: "minimal", YAML: "database: {url: postgres://x}\nredis: {addr: x:1}\n", Want: ""},
		{Name: "unknown key", YAML: "database: {url: postgres://x}\nredis: {addr: x:1}\nbogus: 1\n", Want: "bogus"},
		{Name: "no database", YAML: "redis: {addr: x:1}\n", Want: "database url"},
		{Name: "bad batch", YAML: "database: {url: postgres://x}\nredis: {addr: x:1}\nconsumer: {batch_size: 0}\n", Want: "batch_size"},
		{Name: "bad percent", YAML: "database: {url: postgres://x}\nredis: {addr: x:1}\nbilling: {quota_low_percent: 101}\n", Want: "quota_low_percent"},
		{Name: "bad trusted proxy", YAML: "database: {url: postgres://x}\nredis: {addr: x:1}\nserver: {trusted_proxies: [nope]}\n", Want: "trusted_proxies"},
		{Name: "negative default price", YAML: "database: {url: postgres://x}\nredis: {addr: x:1}\nbilling: {default_price: {input_micros_per_mtok: -1}}\n", Want: "default_price"},
		{Name: "default price over 10^13", YAML: "database: {url: postgres://x}\nredis: {addr: x:1}\nbilling: {default_price: {output_micros_per_mtok: 10000000000001}}\n", Want: "output_micros_per_mtok must be <="},
		{Name: "token ceiling 0", YAML: "database: {url: postgres://x}\nredis: {addr: x:1}\nsettle: {max_tokens_per_request: 0}\n", Want: "settle.max_tokens_per_request"},
		{Name: "cost ceiling over 10^13", YAML: "database: {url: postgres://x}\nredis: {addr: x:1}\nsettle: {max_cost_micros_per_request: 10000000000001}\n", Want: "settle.max_cost_micros_per_request"},
		{Name: "negative group limit", YAML: "database: {url: postgres://x}\nredis: {addr: x:1}\nlimits: {groups: {free: {rpm_limit: -1}}}\n", Want: "limits.groups.free.rpm_limit"},
		{Name: "absurd group limit", YAML: "database: {url: postgres://x}\nredis: {addr: x:1}\nlimits: {groups: {free: {tpm_limit: 1000000001}}}\n", Want: "limits.groups.free.tpm_limit"},
		{Name: "bad group name", YAML: "database: {url: postgres://x}\nredis: {addr: x:1}\nlimits: {groups: {\"a b\": {}}}\n", Want: "not a group name"},
		{Name: "unknown group limit key", YAML: "database: {url: postgres://x}\nredis: {addr: x:1}\nlimits: {groups: {free: {rpm: 1}}}\n", Want: "rpm"},
		{Name: "old listener key", YAML: "database: {url: postgres://x}\nredis: {addr: x:1}\nhttp: {listen: x}\n", Want: "key http.listen is now server.addr"},
		{Name: "ceilings set", YAML: "database: {url: postgres://x}\nredis: {addr: x:1}\nsettle: {max_tokens_per_request: 500, max_cost_micros_per_request: 7}\n", Want: ""},
	})
}
