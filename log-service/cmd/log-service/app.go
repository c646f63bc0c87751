package main

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"time"

	"github.com/go-kratos/kratos/v2"
	"github.com/go-kratos/kratos/v2/transport"
	khttp "github.com/go-kratos/kratos/v2/transport/http"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/lurus-switch/lurus-switch/log-service/internal/biz"
	"github.com/lurus-switch/lurus-switch/log-service/internal/conf"
	"github.com/lurus-switch/lurus-switch/log-service/internal/consumer"
	"github.com/lurus-switch/lurus-switch/log-service/internal/data"
	"github.com/lurus-switch/lurus-switch/log-service/internal/metrics"
	"github.com/lurus-switch/lurus-switch/log-service/internal/server"
	"github.com/lurus-switch/lurus-switch/log-service/internal/service"
	"github.com/lurus-switch/lurus-switch/lurus-common/authguard"
	"github.com/lurus-switch/lurus-switch/lurus-common/cleanup"
	"github.com/lurus-switch/lurus-switch/lurus-common/events"
	"github.com/lurus-switch/lurus-switch/lurus-common/events/natsbus"
	"github.com/lurus-switch/lurus-switch/lurus-common/internalapi"
	"github.com/lurus-switch/lurus-switch/lurus-common/keyauth"
	"github.com/lurus-switch/lurus-switch/lurus-common/kratoslog"
	"github.com/lurus-switch/lurus-switch/lurus-common/telemetry"
)

// serviceName names the service in logs, traces and Kratos.
const serviceName = "log-service"

// App is the wired service.
type App struct {
	Log      *slog.Logger
	Kratos   *kratos.App
	HTTP     *khttp.Server
	Consumer *consumer.Consumer // nil when consumer.enabled is false
	Ingester *biz.Ingester
	Metrics  *metrics.Metrics
}

// Run serves until SIGTERM/SIGINT (or Stop), then drains.
func (a *App) Run() error { return a.Kratos.Run() }

// appHooks lets tests reach inside the wiring; production passes none.
type appHooks struct {
	beforeAck func(natsbus.Delivery) bool
}

// newApp wires the service by hand: ClickHouse, NATS, the consumer, the
// HTTP API. The returned cleanup closes what newApp opened; call it after
// Run returns. On error newApp has already closed what it opened and the
// cleanup is nil.
func newApp(cfg conf.Config) (*App, func(), error) { return newAppWith(cfg, appHooks{}) }

func newAppWith(cfg conf.Config, hooks appHooks) (*App, func(), error) {
	log := telemetry.NewLogger(os.Stderr, serviceName, telemetry.ParseLevel(cfg.Log.Level))
	sec, err := conf.LoadSecrets()
	if err != nil {
		return nil, nil, err
	}
	var closers cleanup.Stack
	// fail closes what is open so far; every error after the first closer
	// returns through it.
	fail := func(err error) (*App, func(), error) { return cleanup.Fail[App](&closers, err) }
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	shutdownTracing, err := telemetry.SetupTracing(ctx, serviceName)
	if err != nil {
		return fail(err)
	}
	closers.Push(func() {
		sctx, scancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer scancel()
		_ = shutdownTracing(sctx)
	})

	conn, err := data.Open(cfg.ClickHouse, sec.ClickHousePassword, cfg.ClickHouse.Database)
	if err != nil {
		return fail(err)
	}
	closers.Push(func() { _ = conn.Close() })
	store := data.NewStore(conn)
	if err := store.Ping(ctx); err != nil {
		log.Warn("clickhouse does not answer yet; events wait in JetStream until it does", "addr", cfg.ClickHouse.Addr, "err", err)
	}

	nc, err := nats.Connect(cfg.NATS.URL, nats.Name(serviceName), nats.MaxReconnects(-1), nats.ReconnectWait(time.Second))
	if err != nil {
		return fail(fmt.Errorf("nats %s: %w", cfg.NATS.URL, err))
	}
	closers.Push(nc.Close)
	js, err := jetstream.New(nc)
	if err != nil {
		return fail(err)
	}
	names := events.NewNames(cfg.NATS.Namespace)
	if err := natsbus.EnsureStreams(ctx, js, names, natsbus.StreamOptions{}); err != nil {
		return fail(err)
	}

	reg := telemetry.NewRegistry()
	m := metrics.New(reg)
	ing := biz.NewIngester(store)
	// A retry checks for stored records only once a timed-out insert had
	// half a flush timeout more to land (biz.Ingester.TimeoutSettle); half,
	// so the retry's own flush still has time left.
	ing.TimeoutSettle = cfg.Consumer.FlushTimeout / 2
	app := &App{Log: log, Ingester: ing, Metrics: m}

	servers := []transport.Server{}
	if cfg.Consumer.Enabled {
		c := cfg.Consumer
		app.Consumer, err = consumer.New(ctx, js, consumer.Config{
			Names: names, BatchSize: c.BatchSize, Linger: c.Linger, Workers: c.Workers,
			AckWait: c.AckWait, FlushTimeout: c.FlushTimeout, MaxAckPending: c.EffectiveMaxAckPending(), AckMode: c.AckMode(), AckConcurrency: c.AckConcurrency,
			Backoff: c.Backoff, LagInterval: c.LagInterval, BeforeAck: hooks.beforeAck,
		}, ing, m, log)
		if err != nil {
			return fail(err)
		}
		servers = append(servers, app.Consumer)
	}

	billing := internalapi.NewClient(cfg.Billing.URL, sec.InternalToken, cfg.Billing.Timeout)
	keys, err := keyauth.New(keyauth.Remote{Client: billing}, sec.KeyPepper, cfg.Billing.KeyCache())
	if err != nil {
		return nil, nil, err
	}
	keySub, err := natsbus.SubscribeKeyChanged(nc, names, log, func(kc events.KeyChanged) { keys.Evict(kc.KeyID, kc.UserID) })
	if err != nil {
		return nil, nil, err
	}
	closers.Push(func() { _ = keySub.Unsubscribe() })
	clientIP, err := cfg.Server.ClientIP()
	if err != nil {
		return nil, nil, err
	}
	failures := cfg.Auth.Failures
	failures.OnRefuse = func() { m.RateLimited.WithLabelValues("ip", "auth_failures").Inc() }
	guard, err := authguard.New(failures)
	if err != nil {
		return fail(err)
	}
	svc := service.New(service.Options{
		Queries: biz.NewQueries(store, biz.QueryLimits{
			MaxRange: cfg.Query.MaxRange, DefaultRange: cfg.Query.DefaultRange, DefaultLimit: cfg.Query.DefaultLimit,
		}),
		Ingester:        ing,
		Keys:            keys,
		ClientIP:        clientIP,
		Guard:           guard,
		Metrics:         m,
		AdminToken:      sec.AdminToken,
		InternalToken:   sec.InternalToken,
		MaxBatchRecords: cfg.Query.MaxBatchRecords,
	})
	app.HTTP = server.NewHTTP(server.Options{
		Addr: cfg.Server.Addr, Timeout: cfg.Server.Timeout, MaxBodyBytes: cfg.Server.MaxBodyBytes,
		Routes: svc.Routes(), Registry: reg, Metrics: m, Log: log,
		Ready: []server.Check{
			{Name: "clickhouse", Ping: store.Ping},
			{Name: "nats", Ping: func(context.Context) error {
				if !nc.IsConnected() {
					return errors.New("nats: " + nc.Status().String())
				}
				return nil
			}},
		},
	})
	servers = append(servers, app.HTTP)

	app.Kratos = kratos.New(
		kratos.Name(serviceName),
		kratos.Server(servers...),
		kratos.StopTimeout(cfg.Server.ShutdownTimeout),
		kratos.Logger(kratoslog.New(log)),
	)
	return app, closers.Close, nil
}
