// Package migrations embeds provider-service's SQL migrations, applied by
// `provider-service migrate` (never at boot).
package migrations

import "embed"

// FS holds the migration files NNN_name.sql at its root.
//
//go:embed *.sql
var FS embed.FS

// Dir is the directory of FS holding the files.
const Dir = "."
