// Package data implements biz's storage interfaces on ClickHouse (request
// log, rollups, schema). It holds no other client: API keys are checked by
// lurus-common/keyauth (a remote check against billing-service), wired in
// cmd/log-service.
//
// Every query is fixed SQL text plus arguments that clickhouse-go binds on
// the client side (positional ?); ClickHouse 18.16 has no server-side query
// parameters. User input never becomes SQL text: the only fragments chosen
// at run time are constants picked by validated enums.
package data

import (
	"fmt"

	"github.com/ClickHouse/clickhouse-go/v2"
	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/lurus-switch/lurus-switch/log-service/internal/conf"
)

// Open returns a connection pool to ClickHouse with database as the
// default database ("" for the server's default). It does not dial: the
// service starts while ClickHouse is down (its consumer then keeps events
// in JetStream) and /ready tells. Use Ping to check.
func Open(cfg conf.ClickHouse, password, database string) (driver.Conn, error) {
	opts := &clickhouse.Options{
		Addr:         []string{cfg.Addr},
		Auth:         clickhouse.Auth{Database: database, Username: cfg.Username, Password: password},
		DialTimeout:  cfg.DialTimeout,
		ReadTimeout:  cfg.ReadTimeout,
		MaxOpenConns: cfg.MaxOpenConns,
		MaxIdleConns: cfg.MaxOpenConns,
	}
	if cfg.Compress {
		opts.Compression = &clickhouse.Compression{Method: clickhouse.CompressionLZ4}
	}
	conn, err := clickhouse.Open(opts)
	if err != nil {
		return nil, fmt.Errorf("clickhouse %s: %w", cfg.Addr, err)
	}
	return conn, nil
}
