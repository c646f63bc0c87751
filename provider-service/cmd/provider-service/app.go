package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/go-kratos/kratos/v2"
	khttp "github.com/go-kratos/kratos/v2/transport/http"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/lurus-switch/lurus-switch/lurus-common/cleanup"
	"github.com/lurus-switch/lurus-switch/lurus-common/events"
	"github.com/lurus-switch/lurus-switch/lurus-common/events/natsbus"
	"github.com/lurus-switch/lurus-switch/lurus-common/kratoslog"
	"github.com/lurus-switch/lurus-switch/lurus-common/postgres"
	"github.com/lurus-switch/lurus-switch/lurus-common/redisx"
	"github.com/lurus-switch/lurus-switch/lurus-common/telemetry"
	"github.com/lurus-switch/lurus-switch/provider-service/internal/biz"
	"github.com/lurus-switch/lurus-switch/provider-service/internal/conf"
	"github.com/lurus-switch/lurus-switch/provider-service/internal/data"
	"github.com/lurus-switch/lurus-switch/provider-service/internal/keyring"
	"github.com/lurus-switch/lurus-switch/provider-service/internal/probe"
	"github.com/lurus-switch/lurus-switch/provider-service/internal/publisher"
	"github.com/lurus-switch/lurus-switch/provider-service/internal/server"
	"github.com/lurus-switch/lurus-switch/provider-service/internal/service"
)

// serviceName names the service in logs, traces and Kratos.
const serviceName = "provider-service"

// App is a wired provider-service.
type App struct {
	// Server is the HTTP server; it is also an http.Handler, which tests
	// serve with httptest.
	Server  *khttp.Server
	Store   *data.Providers
	Cache   *data.SnapshotCache
	Metrics *server.Metrics
	cfg     conf.Config
	log     *slog.Logger
}

// newApp connects to PostgreSQL, Redis and NATS, checks that the
// configured encryption keys open the stored provider keys, and wires every
// layer. The cleanup closes the connections; call it after Run returns.
func newApp(ctx context.Context, cfg conf.Config, sec conf.Secrets, log *slog.Logger) (*App, func(), error) {
	keys, err := keyring.Parse(sec.SecretKey, sec.PreviousSecretKeys)
	if err != nil {
		return nil, nil, err
	}
	var closers cleanup.Stack
	fail := func(err error) (*App, func(), error) { return cleanup.Fail[App](&closers, err) }

	pool, err := postgres.Open(ctx, cfg.Database)
	if err != nil {
		return fail(err)
	}
	closers.Push(pool.Close)
	store := data.NewProviders(pool, keys)
	usage, err := store.CheckKeys(ctx)
	if err != nil {
		var pgErr *pgconn.PgError
		if errors.As(err, &pgErr) && pgErr.Code == "42P01" {
			return fail(fmt.Errorf("the provider tables do not exist: run `provider-service migrate` first (%w)", err))
		}
		return fail(fmt.Errorf("encryption key check failed: %w", err))
	}
	for kid, n := range usage {
		if kid != keys.CurrentID() {
			log.Warn("provider keys are still encrypted under a previous key; run `provider-service rotate-keys`", "key_id", kid, "rows", n)
		}
	}

	rdb, err := redisx.Open(ctx, cfg.Redis)
	closers.Push(func() { _ = rdb.Close() })
	if err != nil {
		// Redis only caches: the snapshot is rebuilt from PostgreSQL while
		// it is away, and /ready reports it.
		log.Warn("redis unavailable at start; serving without cache until it answers", "err", err)
	}

	nc, err := nats.Connect(cfg.NATS.URL, nats.Name(serviceName), nats.MaxReconnects(-1), nats.ReconnectWait(time.Second))
	if err != nil {
		return fail(fmt.Errorf("nats %s: %w", cfg.NATS.URL, err))
	}
	closers.Push(func() {
		_ = nc.FlushTimeout(2 * time.Second)
		nc.Close()
	})
	names := events.NewNames(cfg.NATS.Namespace)
	js, err := jetstream.New(nc)
	if err != nil {
		return fail(err)
	}
	if err := natsbus.EnsureStreams(ctx, js, names, natsbus.StreamOptions{}); err != nil {
		return fail(err)
	}

	reg := telemetry.NewRegistry()
	metrics := server.NewMetrics(reg)
	cache := data.NewSnapshotCache(rdb, keys, cfg.Redis.Prefix, cfg.Snapshot.CacheTTL)
	providers := &biz.Providers{
		Store: store, Keys: store, Log: log,
		Notify: []biz.Changed{cache, publisher.New(nc, names), biz.ChangedFunc(func(_ context.Context, v int64, _ string) error {
			metrics.SetSnapshotVersion(v)
			return nil
		})},
	}
	svc := &service.Providers{
		Providers: providers,
		Probes: &biz.Probes{Keys: store, Prober: probe.New(cfg.Probe.Timeout), Concurrency: cfg.Probe.Concurrency,
			Store: data.NewHealthStore(rdb, cfg.Redis.Prefix, cfg.Probe.HealthTTL), Observe: metrics.ObserveProbe, Log: log},
		Snapshots:  &biz.Snapshots{Source: store, Cache: cache, Observe: metrics.ObserveSnapshotCache, Log: log},
		OnSnapshot: metrics.SetSnapshotVersion,
	}
	if v, err := store.Version(ctx); err == nil {
		metrics.SetSnapshotVersion(v)
	}
	srv := server.NewHTTP(server.Options{
		Addr: cfg.Server.Addr, Timeout: cfg.Server.Timeout, MaxBodyBytes: cfg.Server.MaxBodyBytes,
		AdminToken: sec.AdminToken, InternalToken: sec.InternalToken, Log: log, Registry: reg, Metrics: metrics,
		Providers: svc,
		Ready: []server.Check{
			{Name: "postgres", Ping: pool.Ping},
			{Name: "redis", Ping: func(ctx context.Context) error { return rdb.Ping(ctx).Err() }},
			{Name: "nats", Ping: func(context.Context) error {
				if !nc.IsConnected() {
					return fmt.Errorf("not connected (%s)", nc.Status())
				}
				return nil
			}},
		},
	})
	return &App{Server: srv, Store: store, Cache: cache, Metrics: metrics, cfg: cfg, log: log}, closers.Close, nil
}

// Run serves until ctx ends or SIGINT/SIGTERM/SIGQUIT, then stops
// accepting and drains in-flight requests (at most http.shutdown_timeout).
func (a *App) Run(ctx context.Context) error {
	app := kratos.New(
		kratos.Name(serviceName),
		kratos.Context(ctx),
		kratos.Server(a.Server),
		kratos.StopTimeout(a.cfg.Server.ShutdownTimeout),
		kratos.Logger(kratoslog.New(a.log)),
	)
	return app.Run()
}
