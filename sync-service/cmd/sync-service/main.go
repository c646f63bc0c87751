// Command sync-service pushes every user event (balance, quota, usage) to
// every device a user has connected, over WebSocket.
//
// Usage:
//
//	sync-service [serve] [-config configs/config.yaml]
//
// serve runs the service until SIGTERM or SIGINT, then closes every socket
// with 1001 after sending what was queued. The benchmark is a tool of its
// own, cmd/bench-sync, which starts this binary (see docs/sync-service.md).
// The service has no database, so there is no migrate step.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/lurus-switch/lurus-switch/lurus-common/config"
	"github.com/lurus-switch/lurus-switch/lurus-common/telemetry"

	"github.com/lurus-switch/lurus-switch/sync-service/internal/conf"
)

func main() {
	if err := run(os.Args[1:]); err != nil {
		fmt.Fprintln(os.Stderr, "sync-service:", err)
		os.Exit(1)
	}
}

func run(args []string) error {
	cmd := "serve"
	if len(args) > 0 && args[0] != "" && args[0][0] != '-' {
		cmd, args = args[0], args[1:]
	}
	switch cmd {
	case "serve":
		return serve(args)
	default:
		return fmt.Errorf("unknown command %q (serve)", cmd)
	}
}

func serve(args []string) error {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	path := fs.String("config", "configs/config.yaml", "config file")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := conf.Load(*path)
	if err != nil {
		return err
	}
	log := telemetry.NewLogger(os.Stderr, "sync-service", telemetry.ParseLevel(cfg.Log.Level))
	config.ApplyGCPercent(cfg.Runtime.GCPercent)
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	shutdownTracing, err := telemetry.SetupTracing(ctx, "sync-service")
	if err != nil {
		return err
	}
	defer func() { _ = shutdownTracing(context.WithoutCancel(ctx)) }()

	app, cleanup, err := newApp(ctx, cfg, log)
	if err != nil {
		return err
	}
	defer cleanup()
	err = app.Run(ctx)
	if err != nil && !errors.Is(err, context.Canceled) {
		log.Error("sync-service stopped", "err", err)
		return err
	}
	log.Info("sync-service stopped")
	return nil
}
