package conf

import (
	"strings"
	"testing"
	"time"

	"github.com/lurus-switch/lurus-switch/lurus-common/config"
	"github.com/lurus-switch/lurus-switch/lurus-common/config/configtest"
)

// TestShippedConfig loads configs/config.yaml as make run does, and checks
// that the environment overrides what E2E tests need.
func TestShippedConfig(t *testing.T) {
	c := configtest.LoadShipped(t, Load, map[string]string{
		"LURUS_LOG_ADDR": "127.0.0.1:0", "LURUS_NATS_NAMESPACE": "e2e-1", "LURUS_LOG_CLICKHOUSE_DB": "lurus_logs_e2e"})
	if c.Server.Addr != "127.0.0.1:0" || c.NATS.Namespace != "e2e-1" || c.ClickHouse.Database != "lurus_logs_e2e" {
		t.Fatalf("env not applied: %+v %+v %+v", c.Server, c.NATS, c.ClickHouse)
	}
	if c.Query.MaxRange != 93*24*time.Hour || c.ClickHouse.RetentionDays != 180 || len(c.Consumer.Backoff) != 5 {
		t.Fatalf("shipped values: %+v %+v", c.Query, c.ClickHouse)
	}
	if got := c.Consumer.EffectiveMaxAckPending(); got != 4*c.Consumer.BatchSize*c.Consumer.Workers {
		t.Fatalf("max ack pending %d", got)
	}
}

func TestValidate(t *testing.T) {
	configtest.Validate(t, configtest.Defaults[Config], []configtest.Case[Config]{
		{Name: "defaults", Mutate: func(*Config) {}, Want: ""},
		{Name: "database with a quote", Mutate: func(c *Config) { c.ClickHouse.Database = "logs`; DROP" }, Want: "clickhouse.database"},
		{Name: "database empty", Mutate: func(c *Config) { c.ClickHouse.Database = "" }, Want: "clickhouse.database"},
		{Name: "ack wait not above flush timeout", Mutate: func(c *Config) { c.Consumer.AckWait = c.Consumer.FlushTimeout }, Want: "ack_wait"},
		{Name: "batch size zero", Mutate: func(c *Config) { c.Consumer.BatchSize = 0 }, Want: "batch_size"},
		{Name: "no workers", Mutate: func(c *Config) { c.Consumer.Workers = 0 }, Want: "workers"},
		{Name: "namespace with dot", Mutate: func(c *Config) { c.NATS.Namespace = "a.b" }, Want: "namespace"},
		{Name: "default range over max", Mutate: func(c *Config) { c.Query.DefaultRange = c.Query.MaxRange + time.Hour }, Want: "default_range"},
		{Name: "default limit", Mutate: func(c *Config) { c.Query.DefaultLimit = 1001 }, Want: "default_limit"},
		{Name: "negative retention", Mutate: func(c *Config) { c.ClickHouse.RetentionDays = -1 }, Want: "retention"},
		{Name: "zero backoff", Mutate: func(c *Config) { c.Consumer.Backoff = []time.Duration{0} }, Want: "backoff"},
		{Name: "no billing url", Mutate: func(c *Config) { c.Billing.URL = "" }, Want: "billing.url"},
		{Name: "unknown ack mode", Mutate: func(c *Config) { c.Consumer.Ack = "maybe" }, Want: "consumer.ack"},
	})
}

func TestUnknownKeyIsAnError(t *testing.T) {
	var c Config
	if err := config.Decode([]byte("clickhouse:\n  adress: x\n"), &c); err == nil || !strings.Contains(err.Error(), "adress") {
		t.Fatalf("err = %v", err)
	}
}

func TestOldListenerNamesAreErrors(t *testing.T) {
	var c Config
	if err := config.Decode([]byte("http:\n  listen: x\n"), &c); err == nil || !strings.Contains(err.Error(), "key http.listen is now server.addr") {
		t.Fatalf("old key: %v", err)
	}
	t.Setenv("LURUS_LOG_LISTEN", "0.0.0.0:18102")
	if err := config.Decode(nil, &c); err == nil || !strings.Contains(err.Error(), "LURUS_LOG_LISTEN is now LURUS_LOG_ADDR") {
		t.Fatalf("old variable: %v", err)
	}
}
