package data

import (
	"context"
	"fmt"
	"log/slog"
	"regexp"
	"strings"

	"github.com/lurus-switch/lurus-switch/log-service/internal/conf"
)

// templateDatabase is the database clickhouse-init.sql names in its CREATE
// DATABASE and USE statements; Migrate applies the file to the configured
// database instead.
const templateDatabase = "lurus_logs"

var (
	createDatabaseStmt = regexp.MustCompile(`(?i)^CREATE\s+DATABASE\s+IF\s+NOT\s+EXISTS\s+` + templateDatabase + `$`)
	useStmt            = regexp.MustCompile(`(?i)^USE\s+` + templateDatabase + `$`)
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
}

// Migrate creates the configured database if needed and applies the DDL
// script to it, then retention where the server supports TTL. Every step
// is idempotent; running it again changes nothing.
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
	log.Info("clickhouse schema applied", "server", res.Server, "database", cfg.Database, "statements", res.Statements, "ttl", res.TTL)
	return res, nil
}

// SupportsTTL reports whether a server version has table TTL (ClickHouse
// 19.6 introduced ALTER TABLE … MODIFY TTL).
func SupportsTTL(major, minor uint64) bool {
	return major > 19 || major == 19 && minor >= 6
}
