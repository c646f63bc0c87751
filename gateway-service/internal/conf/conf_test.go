package conf

import (
	"testing"
	"time"
)

func TestShippedConfigLoads(t *testing.T) {
	t.Setenv("LURUS_REDIS_PREFIX", "t:abc123:")
	t.Setenv("LURUS_NATS_NAMESPACE", "t0f00")
	t.Setenv("LURUS_GATEWAY_ALLOW_PRIVATE", "true")
	c, err := Load("../../configs/config.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if c.Redis.Prefix != "t:abc123:" || c.NATS.Namespace != "t0f00" || !c.Upstream.AllowPrivateNetwork {
		t.Fatalf("env not applied: %+v %+v", c.Redis, c.NATS)
	}
	if c.Server.MaxBodyBytes != 32<<20 || c.Relay.DrainTimeout != 30*time.Second || c.Auth.PositiveTTL != time.Minute {
		t.Fatalf("defaults: %+v", c)
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
