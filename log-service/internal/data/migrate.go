package data

import (
	"context"
	"fmt"
	"log/slog"
	"regexp"
	"strings"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"

	"github.com/lurus-switch/lurus-switch/log-service/internal/conf"
)

// templateDatabase is the database clickhouse-init.sql names in its CREATE
// DATABASE and USE statements; Migrate applies the file to the configured
// database instead.
const templateDatabase = "lurus_logs"

var (
	createDatabaseStmt = regexp.MustCompile(`(?i)^CREATE\s+DATABASE\s+IF\s+NOT\s+EXISTS\s+` + templateDatabase + `$`)
	useStmt            = regexp.MustCompile(`(?i)^USE\s+` + templateDatabase + `$`)
	createTableStmt    = regexp.MustCompile(`(?i)^CREATE\s+TABLE\s+IF\s+NOT\s+EXISTS\s+(\w+)\s*\(`)
	columnDef          = regexp.MustCompile(`^(\w+)\s+\S`)
)

// Statements splits a DDL script into statements: "--" comment lines and
// blank lines are dropped, statements end with ";". The schema has no ";"
// inside literals, which Statements does not parse.
func Statements(script string) []string {
	var out []string
	var cur strings.Builder
	for _, line := range strings.Split(script, "\n") {
		trimmed := strings.TrimSpace(line)
		if trimmed == "" || strings.HasPrefix(trimmed, "--") {
			continue
		}
		cur.WriteString(line)
		cur.WriteByte('\n')
		if strings.HasSuffix(trimmed, ";") {
			if s := strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(cur.String()), ";")); s != "" {
				out = append(out, s)
			}
			cur.Reset()
		}
	}
	if s := strings.TrimSpace(cur.String()); s != "" {
		out = append(out, s)
	}
	return out
}

// Retention is how long each table keeps rows; 0 keeps them forever.
type Retention struct {
	RawDays, HourlyDays, DailyDays int
}

// MigrateResult reports what Migrate did.
type MigrateResult struct {
	Server     string // e.g. "18.16.1"
	Statements int    // DDL statements applied
	// TTL is true when retention was applied (servers 19.6 and later);
	// on older servers rows are kept until dropped by hand.
	TTL bool
	// AddedColumns are the "table.column"s that existing tables lacked and
	// Migrate added; empty when the schema was already current.
	AddedColumns []string
}

// Migrate creates the configured database if needed and applies the DDL
// script to it, then adds the columns a table created by an older script
// lacks (see addMissingColumns), then retention where the server supports
// TTL. Every step is idempotent; running it again changes nothing.
func Migrate(ctx context.Context, cfg conf.ClickHouse, password, script string, ret Retention, log *slog.Logger) (MigrateResult, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	admin, err := Open(cfg, password, "")
	if err != nil {
		return MigrateResult{}, err
	}
	defer admin.Close()
	if err := admin.Ping(ctx); err != nil {
		return MigrateResult{}, fmt.Errorf("clickhouse %s: %w", cfg.Addr, err)
	}
	stmts := Statements(script)
	var res MigrateResult
	var rest []string
	for _, s := range stmts {
		switch {
		case createDatabaseStmt.MatchString(s):
			// cfg.Database is a validated plain identifier (conf.Validate).
			if err := admin.Exec(ctx, "CREATE DATABASE IF NOT EXISTS `"+cfg.Database+"`"); err != nil {
				return res, fmt.Errorf("create database %s: %w", cfg.Database, err)
			}
			res.Statements++
		case useStmt.MatchString(s):
		default:
			if strings.Contains(s, templateDatabase+".") {
				return res, fmt.Errorf("ddl statement names the database %s; only CREATE DATABASE and USE may: %.60s", templateDatabase, s)
			}
			rest = append(rest, s)
		}
	}
	conn, err := Open(cfg, password, cfg.Database)
	if err != nil {
		return res, err
	}
	defer conn.Close()
	for _, s := range rest {
		if err := conn.Exec(ctx, s); err != nil {
			return res, fmt.Errorf("apply %.60q: %w", s, err)
		}
		res.Statements++
	}
	added, err := addMissingColumns(ctx, conn, rest)
	res.AddedColumns = added
	if err != nil {
		return res, err
	}
	for _, c := range added {
		log.Info("clickhouse column added to an existing table", "column", c)
	}
	v, err := conn.ServerVersion()
	if err != nil {
		return res, fmt.Errorf("server version: %w", err)
	}
	res.Server = fmt.Sprintf("%d.%d.%d", v.Version.Major, v.Version.Minor, v.Version.Patch)
	if !SupportsTTL(v.Version.Major, v.Version.Minor) {
		log.Warn("clickhouse has no TTL; retention not applied, rows are kept until dropped by hand",
			"server", res.Server, "retention_days", ret.RawDays)
		return res, nil
	}
	for _, t := range []struct {
		table, column string
		days          int
	}{{"request_log", "created_at", ret.RawDays}, {"request_log_hourly", "hour", ret.HourlyDays}, {"request_log_daily", "day", ret.DailyDays}} {
		if t.days <= 0 {
			continue
		}
		// Table and column are constants; days is a bound argument.
		q := "ALTER TABLE " + t.table + " MODIFY TTL " + t.column + " + INTERVAL ? DAY"
		if err := conn.Exec(ctx, q, t.days); err != nil {
			return res, fmt.Errorf("retention of %s: %w", t.table, err)
		}
	}
	res.TTL = true
	log.Info("clickhouse schema applied", "server", res.Server, "database", cfg.Database, "statements", res.Statements,
		"added_columns", len(res.AddedColumns), "ttl", res.TTL)
	return res, nil
}

// SupportsTTL reports whether a server version has table TTL (ClickHouse
// 19.6 introduced ALTER TABLE … MODIFY TTL).
func SupportsTTL(major, minor uint64) bool {
	return major > 19 || major == 19 && minor >= 6
}

// Column is one column definition of a CREATE TABLE statement.
type Column struct {
	Name string
	Def  string // the definition as written: "upstream_format String DEFAULT ''"
}

// TableColumns returns the table and the column definitions of a
// "CREATE TABLE IF NOT EXISTS name (...)" statement; ok is false for any
// other statement. Definitions are split on the commas outside
// parentheses and quotes.
func TableColumns(stmt string) (table string, cols []Column, ok bool, err error) {
	m := createTableStmt.FindStringSubmatchIndex(stmt)
	if m == nil {
		return "", nil, false, nil
	}
	table = stmt[m[2]:m[3]]
	depth, quoted, start := 0, false, m[1]
	for i := m[1]; i < len(stmt); i++ {
		switch c := stmt[i]; {
		case quoted:
			if c == '\\' {
				i++
			} else if c == '\'' {
				quoted = false
			}
		case c == '\'':
			quoted = true
		case c == '(':
			depth++
		case c == ')' && depth > 0:
			depth--
		case (c == ',' || c == ')') && depth == 0:
			def := strings.Join(strings.Fields(stmt[start:i]), " ")
			cm := columnDef.FindStringSubmatch(def)
			if cm == nil {
				return table, nil, true, fmt.Errorf("table %s: cannot read column definition %q", table, def)
			}
			cols = append(cols, Column{Name: cm[1], Def: def})
			if c == ')' {
				return table, cols, true, nil
			}
			start = i + 1
		}
	}
	return table, nil, true, fmt.Errorf("table %s: column list not closed", table)
}

// addMissingColumns brings tables created by an older script up to the
// columns the script declares now. CREATE TABLE IF NOT EXISTS leaves an
// existing table as it is, so a column added to the script later (such as
// request_log.upstream_format) is added here with ALTER TABLE … ADD COLUMN,
// at the place the script gives it. ClickHouse 18.16 has no ADD COLUMN IF
// NOT EXISTS, hence the look at system.columns first. Columns are only
// added: one the table has and the script does not, or one whose type was
// changed by hand (LowCardinality on a current server), is left alone. Rows
// stored before read the column's default.
func addMissingColumns(ctx context.Context, conn driver.Conn, stmts []string) ([]string, error) {
	var added []string
	for _, s := range stmts {
		table, cols, ok, err := TableColumns(s)
		if !ok {
			continue
		}
		if err != nil {
			return added, err
		}
		have, err := existingColumns(ctx, conn, table)
		if err != nil {
			return added, err
		}
		for i, c := range cols {
			if have[c.Name] {
				continue
			}
			// Table, name and definition come from the embedded script,
			// not from input.
			q := "ALTER TABLE " + table + " ADD COLUMN " + c.Def
			if i > 0 {
				q += " AFTER " + cols[i-1].Name
			}
			if err := conn.Exec(ctx, q); err != nil {
				return added, fmt.Errorf("add column %s.%s: %w", table, c.Name, err)
			}
			have[c.Name] = true
			added = append(added, table+"."+c.Name)
		}
	}
	return added, nil
}

// existingColumns returns the column names table has in the connection's
// database.
func existingColumns(ctx context.Context, conn driver.Conn, table string) (map[string]bool, error) {
	rows, err := conn.Query(ctx, "SELECT name FROM system.columns WHERE database = currentDatabase() AND table = ?", table)
	if err != nil {
		return nil, fmt.Errorf("columns of %s: %w", table, err)
	}
	defer rows.Close()
	have := make(map[string]bool)
	for rows.Next() {
		var n string
		if err := rows.Scan(&n); err != nil {
			return nil, fmt.Errorf("columns of %s: %w", table, err)
		}
		have[n] = true
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("columns of %s: %w", table, err)
	}
	if len(have) == 0 {
		return nil, fmt.Errorf("table %s has no columns in system.columns; was it created?", table)
	}
	return have, nil
}
