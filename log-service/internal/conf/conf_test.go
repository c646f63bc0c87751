package conf

import (
	"strings"
	"testing"
	"time"

	"github.com/lurus-switch/lurus-switch/lurus-common/config"
)

// TestShippedConfig loads configs/config.yaml as make run does, and checks
// that the environment overrides what E2E tests need.
func TestShippedConfig(t *testing.T) {
	t.Setenv("LURUS_LOG_ADDR", "127.0.0.1:0")
	t.Setenv("LURUS_NATS_NAMESPACE", "e2e-1")
	t.Setenv("LURUS_LOG_CLICKHOUSE_DB", "lurus_logs_e2e")
	c, err := Load("../../configs/config.yaml")
	if err != nil {
		t.Fatal(err)
	}
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
	tests := []struct {
		name   string
		mutate func(*Config)
		want   string
	}{
		{"defaults", func(*Config) {}, ""},
		{"database with a quote", func(c *Config) { c.ClickHouse.Database = "logs`; DROP" }, "clickhouse.database"},
		{"database empty", func(c *Config) { c.ClickHouse.Database = "" }, "clickhouse.database"},
		{"ack wait not above flush timeout", func(c *Config) { c.Consumer.AckWait = c.Consumer.FlushTimeout }, "ack_wait"},
		{"batch size zero", func(c *Config) { c.Consumer.BatchSize = 0 }, "batch_size"},
		{"no workers", func(c *Config) { c.Consumer.Workers = 0 }, "workers"},
		{"namespace with dot", func(c *Config) { c.NATS.Namespace = "a.b" }, "namespace"},
		{"default range over max", func(c *Config) { c.Query.DefaultRange = c.Query.MaxRange + time.Hour }, "default_range"},
		{"default limit", func(c *Config) { c.Query.DefaultLimit = 1001 }, "default_limit"},
		{"negative retention", func(c *Config) { c.ClickHouse.RetentionDays = -1 }, "retention"},
		{"zero backoff", func(c *Config) { c.Consumer.Backoff = []time.Duration{0} }, "backoff"},
		{"no billing url", func(c *Config) { c.Billing.URL = "" }, "billing.url"},
		{"unknown ack mode", func(c *Config) { c.Consumer.Ack = "maybe" }, "consumer.ack"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var c Config
			c.SetDefaults()
			tt.mutate(&c)
			err := c.Validate()
			if tt.want == "" && err != nil || tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)) {
				t.Fatalf("err = %v, want %q", err, tt.want)
			}
		})
	}
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
