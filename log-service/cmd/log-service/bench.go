package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"log/slog"
	"os"
	"runtime/pprof"
	"text/tabwriter"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/prometheus/client_golang/prometheus"

	logservice "github.com/lurus-switch/lurus-switch/log-service"
	"github.com/lurus-switch/lurus-switch/log-service/internal/biz"
	"github.com/lurus-switch/lurus-switch/log-service/internal/conf"
	"github.com/lurus-switch/lurus-switch/log-service/internal/consumer"
	"github.com/lurus-switch/lurus-switch/log-service/internal/data"
	"github.com/lurus-switch/lurus-switch/log-service/internal/loadgen"
	"github.com/lurus-switch/lurus-switch/log-service/internal/metrics"
	"github.com/lurus-switch/lurus-switch/lurus-common/events"
)

// benchIngest measures rows per second from log.write on NATS to rows
// queryable in ClickHouse, and, in the same run, the baselines that bound
// it: a raw ClickHouse insert of the same rows without NATS, NATS publish
// alone, and NATS consume+ack without ClickHouse. Every measurement works
// in its own scratch database and stream namespace, removed afterwards.
func benchIngest(args []string) error {
	var n, batch, workers, acks int
	var cpuProfile string
	cfg, err := loadConfig("bench-ingest", args, func(fs *flag.FlagSet) {
		fs.IntVar(&n, "n", 200000, "log.write events to publish")
		fs.IntVar(&batch, "batch", 0, "consumer batch size and raw insert block size (default: consumer.batch_size)")
		fs.IntVar(&workers, "workers", 0, "consumer pull loops (default: consumer.workers)")
		fs.IntVar(&acks, "acks", 0, "concurrent AckSync calls (default: consumer.ack_concurrency)")
		fs.StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile of the whole run to this file")
	})
	if err != nil {
		return err
	}
	if batch > 0 {
		cfg.Consumer.BatchSize = batch
	}
	if workers > 0 {
		cfg.Consumer.Workers = workers
	}
	if acks > 0 {
		cfg.Consumer.AckConcurrency = acks
	}
	pw, err := conf.ClickHousePassword()
	if err != nil {
		return err
	}
	if cpuProfile != "" {
		f, err := os.Create(cpuProfile)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	b := &bench{cfg: cfg, pw: pw, n: n, recs: loadgen.Records("bench", n)}
	ctx := context.Background()
	nc, err := nats.Connect(cfg.NATS.URL, nats.Name("log-service-bench"))
	if err != nil {
		return err
	}
	defer nc.Close()
	if b.js, err = jetstream.New(nc); err != nil {
		return err
	}
	defer b.cleanup()

	server := ""
	if v, err := b.scratchDB(ctx); err != nil {
		return err
	} else if sv, err := v.ServerVersion(); err == nil {
		server = fmt.Sprintf("%d.%d.%d", sv.Version.Major, sv.Version.Minor, sv.Version.Patch)
	}
	fmt.Printf("bench-ingest: %d log.write events, batch %d, workers %d, ClickHouse %s at %s, NATS %s\n",
		n, cfg.Consumer.BatchSize, cfg.Consumer.Workers, server, cfg.ClickHouse.Addr, cfg.NATS.URL)

	insert, err := b.rawInsert(ctx)
	if err != nil {
		return fmt.Errorf("raw insert: %w", err)
	}
	publish, consume, err := b.natsOnly(ctx)
	if err != nil {
		return fmt.Errorf("nats only: %w", err)
	}
	live, err := b.endToEnd(ctx, true)
	if err != nil {
		return fmt.Errorf("end to end: %w", err)
	}
	backlog, err := b.endToEnd(ctx, false)
	if err != nil {
		return fmt.Errorf("backlog: %w", err)
	}
	rate := func(d time.Duration) float64 { return float64(n) / d.Seconds() }
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintf(w, "measurement\trows/s\tvs raw insert\tvs NATS consume\n")
	row := func(name string, d time.Duration) {
		fmt.Fprintf(w, "%s\t%.0f\t%.2f\t%.2f\n", name, rate(d), insert.Seconds()/d.Seconds(), consume.Seconds()/d.Seconds())
	}
	row("baseline: ClickHouse insert only (PrepareBatch, same rows and blocks)", insert)
	row("baseline: NATS publish only (async, acked)", publish)
	row("baseline: NATS consume+ack only, no ClickHouse (backlog)", consume)
	row("end to end: publish while consuming → all rows queryable", live)
	row("end to end: drain a published backlog → all rows queryable", backlog)
	return w.Flush()
}

type bench struct {
	cfg      conf.Config
	pw       string
	n        int
	recs     []biz.Record
	js       jetstream.JetStream
	cleanups []func()
}

func (b *bench) cleanup() {
	for i := len(b.cleanups) - 1; i >= 0; i-- {
		b.cleanups[i]()
	}
}

func randomSuffix() string {
	var x [5]byte
	_, _ = rand.Read(x[:])
	return hex.EncodeToString(x[:])
}

// scratchDB migrates a fresh database and returns a connection to it; it is
// dropped at cleanup.
func (b *bench) scratchDB(ctx context.Context) (driver.Conn, error) {
	ch := b.cfg.ClickHouse
	ch.Database = "lurus_logs_bench_" + randomSuffix()
	if _, err := data.Migrate(ctx, ch, b.pw, logservice.ClickHouseDDL, data.Retention{}, nil); err != nil {
		return nil, err
	}
	conn, err := data.Open(ch, b.pw, ch.Database)
	if err != nil {
		return nil, err
	}
	b.cleanups = append(b.cleanups, func() {
		dctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		_ = conn.Exec(dctx, "DROP DATABASE IF EXISTS `"+ch.Database+"`")
		_ = conn.Close()
	})
	return conn, nil
}

// scratchNames creates the streams of a fresh namespace, deleted at cleanup.
func (b *bench) scratchNames(ctx context.Context) (events.Names, error) {
	names := events.NewNames("bench" + randomSuffix())
	if err := events.EnsureStreams(ctx, b.js, names, events.StreamOptions{}); err != nil {
		return names, err
	}
	b.cleanups = append(b.cleanups, func() { _ = events.DeleteStreams(context.Background(), b.js, names) })
	return names, nil
}

// rawInsert writes the rows in blocks of the batch size, one after the
// other, straight into ClickHouse.
func (b *bench) rawInsert(ctx context.Context) (time.Duration, error) {
	conn, err := b.scratchDB(ctx)
	if err != nil {
		return 0, err
	}
	store := data.NewStore(conn)
	start := time.Now()
	for i := 0; i < len(b.recs); i += b.cfg.Consumer.BatchSize {
		if err := store.Insert(ctx, b.recs[i:min(i+b.cfg.Consumer.BatchSize, len(b.recs))]); err != nil {
			return 0, err
		}
	}
	return time.Since(start), nil
}

// discard is an Ingester that stores nothing: the NATS-only baseline.
type discard struct{}

func (discard) Ingest(_ context.Context, recs []biz.Record) (biz.IngestResult, error) {
	return biz.IngestResult{Received: len(recs)}, nil
}

// natsOnly publishes every event, then drains them with the consumer
// decoding and acking but not writing.
func (b *bench) natsOnly(ctx context.Context) (publish, consume time.Duration, err error) {
	names, err := b.scratchNames(ctx)
	if err != nil {
		return 0, 0, err
	}
	start := time.Now()
	if err := loadgen.Publish(ctx, b.js, names.Subject(events.SubjectLogWrite), b.recs, ""); err != nil {
		return 0, 0, err
	}
	publish = time.Since(start)
	start = time.Now()
	c, err := b.startConsumer(ctx, names, discard{})
	if err != nil {
		return 0, 0, err
	}
	defer b.stopConsumer(c)
	err = waitFor(ctx, func() (bool, error) {
		lag, err := c.Lag(ctx)
		return lag == 0, err
	})
	return publish, time.Since(start), err
}

// endToEnd runs the real consumer on a fresh database and stream. live
// publishes while it consumes; otherwise the events are published first
// and the clock starts with the consumer. It ends when count() = n.
func (b *bench) endToEnd(ctx context.Context, live bool) (time.Duration, error) {
	conn, err := b.scratchDB(ctx)
	if err != nil {
		return 0, err
	}
	names, err := b.scratchNames(ctx)
	if err != nil {
		return 0, err
	}
	subject := names.Subject(events.SubjectLogWrite)
	if !live {
		if err := loadgen.Publish(ctx, b.js, subject, b.recs, ""); err != nil {
			return 0, err
		}
	}
	start := time.Now()
	c, err := b.startConsumer(ctx, names, biz.NewIngester(data.NewStore(conn)))
	if err != nil {
		return 0, err
	}
	defer b.stopConsumer(c)
	if live {
		if err := loadgen.Publish(ctx, b.js, subject, b.recs, ""); err != nil {
			return 0, err
		}
	}
	err = waitFor(ctx, func() (bool, error) {
		var cnt uint64
		err := conn.QueryRow(ctx, "SELECT count() FROM request_log").Scan(&cnt)
		if cnt > uint64(b.n) {
			return false, fmt.Errorf("%d rows for %d events", cnt, b.n)
		}
		return cnt == uint64(b.n), err
	})
	return time.Since(start), err
}

func (b *bench) startConsumer(ctx context.Context, names events.Names, ing consumer.Ingester) (*consumer.Consumer, error) {
	cc := b.cfg.Consumer
	c, err := consumer.New(ctx, b.js, consumer.Config{Names: names, BatchSize: cc.BatchSize, Linger: cc.Linger,
		Workers: cc.Workers, AckWait: cc.AckWait, FlushTimeout: cc.FlushTimeout, MaxAckPending: cc.EffectiveMaxAckPending(),
		AckConcurrency: cc.AckConcurrency,
		Backoff:        cc.Backoff, LagInterval: cc.LagInterval}, ing, metrics.New(prometheus.NewRegistry()), slog.New(slog.DiscardHandler))
	if err != nil {
		return nil, err
	}
	go func() { _ = c.Start(context.Background()) }()
	return c, nil
}

func (b *bench) stopConsumer(c *consumer.Consumer) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	_ = c.Stop(ctx)
}

// waitFor polls done every 10 ms (5 minutes at most).
func waitFor(ctx context.Context, done func() (bool, error)) error {
	deadline := time.Now().Add(5 * time.Minute)
	for {
		ok, err := done()
		if ok {
			return nil
		}
		if time.Now().After(deadline) {
			return errors.Join(errors.New("timed out"), err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(10 * time.Millisecond):
		}
	}
}
