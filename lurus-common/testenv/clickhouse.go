package testenv

import (
	"context"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
)

// ClickHouseEnv is a database owned by one test.
type ClickHouseEnv struct {
	// Conn is connected with Database as its default database.
	Conn     driver.Conn
	Addr     string
	Database string
}

// ClickHouse creates a fresh database on the test ClickHouse server and
// drops it when the test ends.
func ClickHouse(t testing.TB) ClickHouseEnv {
	t.Helper()
	addr := env("LURUS_CLICKHOUSE_ADDR", DefaultClickHouseAddr)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	admin, err := clickhouse.Open(&clickhouse.Options{Addr: []string{addr}, DialTimeout: 2 * time.Second})
	if err == nil {
		err = admin.Ping(ctx)
	}
	if err != nil {
		unavailable(t, "ClickHouse", err)
	}
	name := UniqueName("lurus_logs_t_")
	if err := admin.Exec(ctx, "CREATE DATABASE "+name); err != nil {
		_ = admin.Close()
		t.Fatalf("testenv: create clickhouse database: %v", err)
	}
	conn, err := clickhouse.Open(&clickhouse.Options{Addr: []string{addr}, Auth: clickhouse.Auth{Database: name}, DialTimeout: 2 * time.Second})
	if err != nil {
		t.Fatalf("testenv: open clickhouse database: %v", err)
	}
	t.Cleanup(func() {
		_ = conn.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := admin.Exec(ctx, "DROP DATABASE IF EXISTS "+name); err != nil {
			t.Errorf("testenv: drop clickhouse database %s: %v", name, err)
		}
		_ = admin.Close()
	})
	return ClickHouseEnv{Conn: conn, Addr: addr, Database: name}
}
