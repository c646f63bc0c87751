// Package logtest provides what log-service's integration tests share: a
// migrated ClickHouse database per test. Only tests import it; the records
// they write come from loadgen.
package logtest

import (
	"context"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	logservice "github.com/lurus-switch/lurus-switch/log-service"
	"github.com/lurus-switch/lurus-switch/log-service/internal/conf"
	"github.com/lurus-switch/lurus-switch/log-service/internal/data"
	"github.com/lurus-switch/lurus-switch/lurus-common/testenv"
)

// DB is a test's own ClickHouse database with the schema applied.
type DB struct {
	Conn  driver.Conn
	Conf  conf.ClickHouse
	Store *data.Store
}

// ClickHouse creates a database for t (dropped when t ends) and migrates
// it with clickhouse-init.sql.
func ClickHouse(t testing.TB) DB {
	t.Helper()
	return ClickHouseWith(t, logservice.ClickHouseDDL)
}

// ClickHouseWith is ClickHouse migrated with ddl instead, such as an older
// schema that a test then migrates to the current one.
func ClickHouseWith(t testing.TB, ddl string) DB {
	t.Helper()
	env := testenv.ClickHouse(t)
	var c conf.Config
	c.SetDefaults()
	cfg := c.ClickHouse
	cfg.Addr, cfg.Database = env.Addr, env.Database
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	if _, err := data.Migrate(ctx, cfg, "", ddl, data.Retention{RawDays: 180}, nil); err != nil {
		t.Fatalf("migrate: %v", err)
	}
	return DB{Conn: env.Conn, Conf: cfg, Store: data.NewStore(env.Conn)}
}

// Count returns SELECT count() FROM table (a constant name).
func (d DB) Count(t testing.TB, table string) uint64 {
	t.Helper()
	return d.scalar(t, "SELECT count() FROM "+table)
}

// SumRequests returns the requests counted by a rollup table.
func (d DB) SumRequests(t testing.TB, table string) uint64 {
	t.Helper()
	return d.scalar(t, "SELECT sum(requests) FROM "+table)
}

func (d DB) scalar(t testing.TB, query string) uint64 {
	t.Helper()
	var n uint64
	if err := d.Conn.QueryRow(context.Background(), query).Scan(&n); err != nil {
		t.Fatalf("%s: %v", query, err)
	}
	return n
}
