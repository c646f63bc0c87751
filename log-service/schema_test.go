package logservice

import (
	"flag"
	"os"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the repository-root copy of clickhouse-init.sql")

// TestRootCopy checks that ../clickhouse-init.sql is this module's
// clickhouse-init.sql byte for byte; -update rewrites it.
func TestRootCopy(t *testing.T) {
	const root = "../clickhouse-init.sql"
	if *update {
		if err := os.WriteFile(root, []byte(ClickHouseDDL), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(root)
	if err != nil {
		t.Fatalf("read %s: %v (run: go test . -update)", root, err)
	}
	if string(got) != ClickHouseDDL {
		t.Fatalf("%s differs from log-service/clickhouse-init.sql; edit the log-service copy, then run: cd log-service && go test . -update", root)
	}
}
