// Package logservice holds what the log-service module must embed from its
// root: the ClickHouse DDL. The service itself lives under cmd/ and
// internal/.
package logservice

import _ "embed"

// ClickHouseDDL is clickhouse-init.sql: the canonical copy of the
// ClickHouse schema (edit this one), applied by `log-service migrate` (see
// internal/data.Migrate). The repository root holds an identical copy for
// tools that run it by hand; TestRootCopy keeps the two equal.
//
//go:embed clickhouse-init.sql
var ClickHouseDDL string
