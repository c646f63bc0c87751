package deploy

import (
	"regexp"
	"slices"
	"testing"

	"github.com/BurntSushi/toml"
)

const vectorFile = "deploy/vector/vector.toml"

type vectorComponent struct {
	Type     string   `toml:"type"`
	Inputs   []string `toml:"inputs"`
	Source   string   `toml:"source"`
	Database string   `toml:"database"`
	Table    string   `toml:"table"`
	Endpoint string   `toml:"endpoint"`
}

// TestVectorConfig parses vector.toml and checks the component graph:
// known component types, every input names an existing source or
// transform, every sink is fed, and the ClickHouse sink writes to the
// table the Compose ClickHouse creates.
func TestVectorConfig(t *testing.T) {
	var cfg struct {
		DataDir    string                     `toml:"data_dir"`
		Sources    map[string]vectorComponent `toml:"sources"`
		Transforms map[string]vectorComponent `toml:"transforms"`
		Sinks      map[string]vectorComponent `toml:"sinks"`
	}
	if _, err := toml.Decode(string(readFile(t, vectorFile)), &cfg); err != nil {
		t.Fatalf("%s: %v", vectorFile, err)
	}
	if cfg.DataDir == "" || len(cfg.Sources) == 0 || len(cfg.Sinks) == 0 {
		t.Fatalf("%s: want data_dir, sources and sinks", vectorFile)
	}
	known := map[string][]string{
		"source":    {"docker_logs", "kubernetes_logs", "file", "journald", "internal_metrics"},
		"transform": {"remap", "filter", "route", "throttle"},
		"sink":      {"clickhouse", "console", "prometheus_exporter", "blackhole"},
	}
	producers := map[string]bool{}
	for name, c := range cfg.Sources {
		producers[name] = true
		if !slices.Contains(known["source"], c.Type) {
			t.Errorf("source %s: type %q", name, c.Type)
		}
	}
	for name, c := range cfg.Transforms {
		producers[name] = true
		if !slices.Contains(known["transform"], c.Type) {
			t.Errorf("transform %s: type %q", name, c.Type)
		}
		if c.Type == "remap" && c.Source == "" {
			t.Errorf("transform %s: remap without source", name)
		}
	}
	check := func(kind, name string, c vectorComponent) {
		if len(c.Inputs) == 0 {
			t.Errorf("%s %s has no inputs", kind, name)
		}
		for _, in := range c.Inputs {
			if !producers[in] || in == name {
				t.Errorf("%s %s: input %q is no source or transform", kind, name, in)
			}
		}
	}
	for name, c := range cfg.Transforms {
		check("transform", name, c)
	}
	var ch *vectorComponent
	for name, c := range cfg.Sinks {
		check("sink", name, c)
		if !slices.Contains(known["sink"], c.Type) {
			t.Errorf("sink %s: type %q", name, c.Type)
		}
		if c.Type == "clickhouse" {
			c := c
			ch = &c
		}
	}
	if ch == nil {
		t.Fatal("no ClickHouse sink")
	}
	ddl := string(readFile(t, "deploy/vector/clickhouse-service-log.sql"))
	re := regexp.MustCompile(`CREATE TABLE IF NOT EXISTS (\w+)\.(\w+)`)
	m := re.FindStringSubmatch(ddl)
	if m == nil || m[1] != ch.Database || m[2] != ch.Table {
		t.Errorf("sink writes %s.%s, clickhouse-service-log.sql creates %v", ch.Database, ch.Table, m)
	}
	compose := loadCompose(t)
	if !slices.Contains(compose.Services["clickhouse"].Volumes, "./deploy/vector/clickhouse-service-log.sql:/docker-entrypoint-initdb.d/20-service-log.sql:ro") {
		t.Errorf("the Compose ClickHouse does not create %s.%s", ch.Database, ch.Table)
	}
	if !slices.Contains(compose.Services["vector"].Volumes, "./"+vectorFile+":/etc/vector/vector.toml:ro") {
		t.Errorf("the Compose vector does not mount %s", vectorFile)
	}
}
