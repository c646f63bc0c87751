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
	configtest.Validate(t, func() *Config {
		var c Config
		c.SetDefaults()
		c.Billing.URL, c.Provider.URL, c.NATS.URL, c.Redis.Addr = "http://b", "http://p", "nats://n", "r:6379"
		return &c
	}, []configtest.Case[Config]{
		{Name: "defaults", Mutate: func(*Config) {}, Want: ""},
		{Name: "positive ttl over 60s", Mutate: func(c *Config) { c.Auth.PositiveTTL = 2 * time.Minute }, Want: "auth: key cache: positive TTL"},
		{Name: "stale ttl over 5m", Mutate: func(c *Config) { c.Auth.StaleTTL = 6 * time.Minute }, Want: "auth: key cache: stale TTL"},
		{Name: "negative ttl over 5s", Mutate: func(c *Config) { c.Auth.NegativeTTL = 6 * time.Second }, Want: "auth: key cache: negative TTL"},
		{Name: "bad proxy cidr", Mutate: func(c *Config) { c.Server.TrustedProxies = []string{"nope"} }, Want: "server.trusted_proxies"},
		{Name: "bad sync policy", Mutate: func(c *Config) { c.Events.OutboxSync = "sometimes" }, Want: "events.outbox_sync"},
		{Name: "retry ratio", Mutate: func(c *Config) { c.Relay.RetryRatio = 2 }, Want: "relay.retry_ratio"},
		{Name: "max choices 0", Mutate: func(c *Config) { c.Estimate.MaxChoices = 0 }, Want: "estimate.max_choices"},
		{Name: "output limit 0", Mutate: func(c *Config) { c.Estimate.ModelMaxOutputTokens = map[string]int64{"gpt-*": 0} }, Want: "estimate.model_max_output_tokens[gpt-*]"},
		{Name: "output limit huge", Mutate: func(c *Config) { c.Estimate.ModelMaxOutputTokens = map[string]int64{"gpt-*": 1 << 40} }, Want: "estimate.model_max_output_tokens[gpt-*]"},
		{Name: "output limit bad glob", Mutate: func(c *Config) { c.Estimate.ModelMaxOutputTokens = map[string]int64{"gpt-[": 10} }, Want: "malformed model pattern"},
		{Name: "default limit huge", Mutate: func(c *Config) { c.Estimate.DefaultMaxOutputTokens = 1 << 40 }, Want: "default_max_output_tokens"},
	})
}
