// Command log-service stores request logs in ClickHouse and answers the
// log and analytics queries (DESIGN.md §1, issue 5).
//
//	log-service [serve] [-config configs/config.yaml]   consume log.write and serve the API on :18102
//	log-service migrate [-config ...]                    apply clickhouse-init.sql (and retention where supported)
//
// The ingestion benchmark is a tool of its own, cmd/bench-ingest.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"time"

	logservice "github.com/lurus-switch/lurus-switch/log-service"
	"github.com/lurus-switch/lurus-switch/log-service/internal/conf"
	"github.com/lurus-switch/lurus-switch/log-service/internal/data"
	"github.com/lurus-switch/lurus-switch/lurus-common/telemetry"
)

func main() { os.Exit(run(os.Args[1:])) }

const usage = `usage: log-service [serve|migrate] [-config path] [flags]`

func run(args []string) int {
	cmd := "serve"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	var err error
	switch cmd {
	case "serve":
		err = serve(args)
	case "migrate":
		err = migrate(args)
	case "help", "-h", "--help":
		fmt.Println(usage)
		return 0
	default:
		fmt.Fprintln(os.Stderr, usage)
		return 2
	}
	if err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		fmt.Fprintf(os.Stderr, "log-service %s: %v\n", cmd, err)
		return 1
	}
	return 0
}

// loadConfig parses -config (and extra flags registered by register) and
// loads the file.
func loadConfig(name string, args []string, register func(*flag.FlagSet)) (conf.Config, error) {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	path := fs.String("config", "configs/config.yaml", "configuration file")
	if register != nil {
		register(fs)
	}
	if err := fs.Parse(args); err != nil {
		return conf.Config{}, err
	}
	return conf.Load(*path)
}

func serve(args []string) error {
	cfg, err := loadConfig("serve", args, nil)
	if err != nil {
		return err
	}
	app, cleanup, err := newApp(cfg)
	if err != nil {
		return err
	}
	defer cleanup()
	app.Log.Info("log-service starting", "addr", cfg.Server.Addr, "clickhouse", cfg.ClickHouse.Addr,
		"database", cfg.ClickHouse.Database, "nats_namespace", cfg.NATS.Namespace, "consumer", cfg.Consumer.Enabled)
	return app.Run()
}

func migrate(args []string) error {
	cfg, err := loadConfig("migrate", args, nil)
	if err != nil {
		return err
	}
	pw, err := conf.ClickHousePassword()
	if err != nil {
		return err
	}
	log := telemetry.NewLogger(os.Stderr, serviceName, slog.LevelInfo)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	ch := cfg.ClickHouse
	res, err := data.Migrate(ctx, ch, pw, logservice.ClickHouseDDL,
		data.Retention{RawDays: ch.RetentionDays, HourlyDays: ch.HourlyRetentionDays, DailyDays: ch.DailyRetentionDays}, log)
	if err != nil {
		return err
	}
	added := "none"
	if len(res.AddedColumns) > 0 {
		added = strings.Join(res.AddedColumns, ", ")
	}
	fmt.Printf("clickhouse %s at %s: database %s migrated (%d statements, columns added: %s, retention by TTL: %t)\n",
		res.Server, ch.Addr, ch.Database, res.Statements, added, res.TTL)
	return nil
}
