// Command provider-service serves the upstream provider configuration of
// Lurus Switch: the admin REST API, the gateway snapshot and provider
// probes.
//
// Usage:
//
//	provider-service [serve] [-config configs/config.yaml]
//	provider-service migrate [-config ...]
//	provider-service rotate-keys [-config ...] [-batch 100]
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strings"
	"syscall"

	klog "github.com/go-kratos/kratos/v2/log"

	"github.com/lurus-switch/lurus-switch/lurus-common/kratoslog"
	"github.com/lurus-switch/lurus-switch/lurus-common/postgres"
	"github.com/lurus-switch/lurus-switch/lurus-common/telemetry"
	"github.com/lurus-switch/lurus-switch/provider-service/internal/conf"
	"github.com/lurus-switch/lurus-switch/provider-service/internal/data"
	"github.com/lurus-switch/lurus-switch/provider-service/internal/keyring"
	"github.com/lurus-switch/lurus-switch/provider-service/migrations"
)

func main() {
	os.Exit(run(os.Args[1:], os.Stdout, os.Stderr))
}

const usage = `usage: provider-service [command] [-config path]

commands:
  serve        serve the HTTP API (default)
  migrate      apply the database migrations
  rotate-keys  re-encrypt every provider key under LURUS_SECRET_KEY
               (old keys must be in LURUS_SECRET_KEYS_PREVIOUS)
`

// run executes one command and returns the exit code.
func run(args []string, stdout, stderr io.Writer) int {
	cmd := "serve"
	if len(args) > 0 && !strings.HasPrefix(args[0], "-") {
		cmd, args = args[0], args[1:]
	}
	fs := flag.NewFlagSet(cmd, flag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() { fmt.Fprint(stderr, usage); fs.PrintDefaults() }
	configPath := fs.String("config", "configs/config.yaml", "configuration file")
	batch := fs.Int("batch", 100, "rotate-keys: rows re-encrypted per transaction")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	var fn func(context.Context, conf.Config, *slog.Logger) error
	switch cmd {
	case "serve":
		fn = serve
	case "migrate":
		fn = migrate
	case "rotate-keys":
		fn = func(ctx context.Context, cfg conf.Config, log *slog.Logger) error {
			return rotateKeys(ctx, cfg, log, *batch)
		}
	case "help":
		fs.Usage()
		return 0
	default:
		fmt.Fprintf(stderr, "provider-service: unknown command %q\n\n", cmd)
		fs.Usage()
		return 2
	}
	cfg, err := conf.Load(*configPath)
	if err != nil {
		fmt.Fprintf(stderr, "provider-service: %v\n", err)
		return 1
	}
	log := telemetry.NewLogger(stdout, serviceName, telemetry.ParseLevel(cfg.Log.Level))
	klog.SetLogger(kratoslog.New(log))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	if err := fn(ctx, cfg, log); err != nil {
		log.Error(cmd+" failed", "err", err)
		fmt.Fprintf(stderr, "provider-service %s: %v\n", cmd, err)
		return 1
	}
	return 0
}

func serve(ctx context.Context, cfg conf.Config, log *slog.Logger) error {
	shutdownTracing, err := telemetry.SetupTracing(ctx, serviceName)
	if err != nil {
		return err
	}
	defer func() { _ = shutdownTracing(context.WithoutCancel(ctx)) }()
	sec, err := conf.LoadSecrets()
	if err != nil {
		return err
	}
	app, cleanup, err := newApp(ctx, cfg, sec, log)
	if err != nil {
		return err
	}
	defer cleanup()
	log.Info("provider-service starting", "addr", cfg.Server.Addr, "nats_namespace", cfg.NATS.Namespace, "redis_prefix", cfg.Redis.Prefix)
	if err := app.Run(ctx); err != nil && !errors.Is(err, context.Canceled) {
		return err
	}
	log.Info("provider-service stopped")
	return nil
}

func migrate(ctx context.Context, cfg conf.Config, log *slog.Logger) error {
	return postgres.MigrateDatabase(ctx, cfg.Database, migrations.FS, migrations.Dir, log)
}

func rotateKeys(ctx context.Context, cfg conf.Config, log *slog.Logger, batch int) error {
	if batch < 1 {
		return errors.New("-batch must be at least 1")
	}
	current, previous, err := conf.LoadEncryptionSecrets()
	if err != nil {
		return err
	}
	keys, err := keyring.Parse(current, previous)
	if err != nil {
		return err
	}
	pool, err := postgres.Open(ctx, cfg.Database)
	if err != nil {
		return err
	}
	defer pool.Close()
	store := data.NewProviders(pool, keys)
	if _, err := store.CheckKeys(ctx); err != nil {
		return err
	}
	n, err := store.RotateKeys(ctx, batch)
	if err != nil {
		return err
	}
	log.Info("provider keys re-encrypted", "rows", n, "key_id", keys.CurrentID())
	return nil
}
