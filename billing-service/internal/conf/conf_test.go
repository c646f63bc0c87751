package conf

import (
	"strings"
	"testing"
	"time"

	"github.com/lurus-switch/lurus-switch/lurus-common/config"
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
	for _, tc := range []struct {
		name string
		yaml string
		err  string
	}{
		{"minimal", "database: {url: postgres://x}\nredis: {addr: x:1}\n", ""},
		{"unknown key", "database: {url: postgres://x}\nredis: {addr: x:1}\nbogus: 1\n", "bogus"},
		{"no database", "redis: {addr: x:1}\n", "database url"},
		{"bad batch", "database: {url: postgres://x}\nredis: {addr: x:1}\nconsumer: {batch_size: 0}\n", "batch_size"},
		{"bad percent", "database: {url: postgres://x}\nredis: {addr: x:1}\nbilling: {quota_low_percent: 101}\n", "quota_low_percent"},
		{"bad trusted proxy", "database: {url: postgres://x}\nredis: {addr: x:1}\nserver: {trusted_proxies: [nope]}\n", "trusted_proxies"},
		{"negative default price", "database: {url: postgres://x}\nredis: {addr: x:1}\nbilling: {default_price: {input_micros_per_mtok: -1}}\n", "default_price"},
		{"default price over 10^13", "database: {url: postgres://x}\nredis: {addr: x:1}\nbilling: {default_price: {output_micros_per_mtok: 10000000000001}}\n", "output_micros_per_mtok must be <="},
		{"token ceiling 0", "database: {url: postgres://x}\nredis: {addr: x:1}\nsettle: {max_tokens_per_request: 0}\n", "settle.max_tokens_per_request"},
		{"cost ceiling over 10^13", "database: {url: postgres://x}\nredis: {addr: x:1}\nsettle: {max_cost_micros_per_request: 10000000000001}\n", "settle.max_cost_micros_per_request"},
		{"negative group limit", "database: {url: postgres://x}\nredis: {addr: x:1}\nlimits: {groups: {free: {rpm_limit: -1}}}\n", "limits.groups.free.rpm_limit"},
		{"absurd group limit", "database: {url: postgres://x}\nredis: {addr: x:1}\nlimits: {groups: {free: {tpm_limit: 1000000001}}}\n", "limits.groups.free.tpm_limit"},
		{"bad group name", "database: {url: postgres://x}\nredis: {addr: x:1}\nlimits: {groups: {\"a b\": {}}}\n", "not a group name"},
		{"unknown group limit key", "database: {url: postgres://x}\nredis: {addr: x:1}\nlimits: {groups: {free: {rpm: 1}}}\n", "rpm"},
		{"old listener key", "database: {url: postgres://x}\nredis: {addr: x:1}\nhttp: {listen: x}\n", "key http.listen is now server.addr"},
		{"ceilings set", "database: {url: postgres://x}\nredis: {addr: x:1}\nsettle: {max_tokens_per_request: 500, max_cost_micros_per_request: 7}\n", ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var c Config
			err := config.Decode([]byte(tc.yaml), &c)
			if tc.err == "" && err != nil || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
				t.Fatalf("err = %v, want %q", err, tc.err)
			}
		})
	}
}
