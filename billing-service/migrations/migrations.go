// Package migrations embeds billing-service's SQL migrations
// (NNN_name.sql), applied by `billing-service migrate` and by tests through
// testenv.Postgres, never implicitly at boot.
package migrations

import "embed"

// FS holds the migration files at its root (Dir).
//
//go:embed *.sql
var FS embed.FS

// Dir is the directory of FS that holds the files.
const Dir = "."
