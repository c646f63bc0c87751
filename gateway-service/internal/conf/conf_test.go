package conf

import (
	"testing"
	"time"

	"github.com/lurus-switch/lurus-switch/lurus-common/config/configtest"
)

func TestShippedConfigLoads(t *testing.T) {
	c := configtest.LoadShipped(t, Load, map[string]string{
		"LURUS_REDIS_PREFIX": "t:abc123:", "LURUS_NATS_NAMESPACE": "t0f00", "LURUS_GATEWAY_ALLOW_PRIVATE": "true"})
	if c.Redis.Prefix != "t:abc123:" || c.NATS.Namespace != "t0f00" || !c.Upstream.AllowPrivateNetwork {
		t.Fatalf("env not applied: %+v %+v", c.Redis, c.NATS)
	}
	if c.Server.MaxBodyBytes != 32<<20 || c.Relay.DrainTimeout != 30*time.Second || c.Auth.PositiveTTL != time.Minute {
		t.Fatalf("defaults: %+v", c)
	}
	// The shipped output limit table is seeded with published limits.
	for model, want := range map[string]int64{"gpt-4o*": 16384, "claude-sonnet-4*": 64000, "gemini-2.5-pro*": 65536} {
		if got := c.Estimate.ModelMaxOutputTokens[model]; got != want {
			t.Errorf("model_max_output_tokens[%s] = %d, want %d", model, got, want)
		}
	}
	if c.Estimate.MaxChoices != 16 || c.Estimate.DefaultMaxOutputTokens != 4096 {
		t.Errorf("estimate: %+v", c.Estimate)
	}
}

func TestValidate(t *testing.T) {
	cases := map[string]func(*Config){
		"positive ttl over 60s": func(c *Config) { c.Auth.PositiveTTL = 2 * time.Minute },
		"stale ttl over 5m":     func(c *Config) { c.Auth.StaleTTL = 6 * time.Minute },
		"negative ttl over 5s":  func(c *Config) { c.Auth.NegativeTTL = 6 * time.Second },
		"bad proxy cidr":        func(c *Config) { c.Server.TrustedProxies = []string{"nope"} },
		"bad sync policy":       func(c *Config) { c.Events.OutboxSync = "sometimes" },
		"retry ratio":           func(c *Config) { c.Relay.RetryRatio = 2 },
		"max choices 0":         func(c *Config) { c.Estimate.MaxChoices = 0 },
		"output limit 0":        func(c *Config) { c.Estimate.ModelMaxOutputTokens = map[string]int64{"gpt-*": 0} },
		"output limit huge":     func(c *Config) { c.Estimate.ModelMaxOutputTokens = map[string]int64{"gpt-*": 1 << 40} },
		"output limit bad glob": func(c *Config) { c.Estimate.ModelMaxOutputTokens = map[string]int64{"gpt-[": 10} },
		"default limit huge":    func(c *Config) { c.Estimate.DefaultMaxOutputTokens = 1 << 40 },
	}
	for name, mut := range cases {
		var c Config
		c.SetDefaults()
		c.Billing.URL, c.Provider.URL, c.NATS.URL, c.Redis.Addr = "http://b", "http://p", "nats://n", "r:6379"
		if err := c.Validate(); err != nil {
			t.Fatalf("defaults invalid: %v", err)
		}
		mut(&c)
		if c.Validate() == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
