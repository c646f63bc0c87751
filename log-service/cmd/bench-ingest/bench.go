// Command bench-ingest measures log-service's ingestion: rows per second
// from log.write on NATS to rows queryable in ClickHouse, against same-run
// baselines (see benchIngest).
//
//	bench-ingest [-n 200000] [-config log-service/configs/config.yaml] [-batch N] [-workers W] ...
//
// It is a tool of its own so that the service binary carries no benchmark
// code.
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
	"strconv"
	"strings"
	"syscall"
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
	"github.com/lurus-switch/lurus-switch/lurus-common/events/natsbus"
)

func main() {
	err := benchIngest(os.Args[1:])
	if err != nil && !errors.Is(err, flag.ErrHelp) {
		fmt.Fprintln(os.Stderr, "bench-ingest:", err)
		os.Exit(1)
	}
}

// benchIngest measures rows per second from log.write on NATS to rows
// queryable in ClickHouse, and, in the same run, the baselines that bound
// it: a raw ClickHouse insert of the same rows without NATS, NATS publish
// alone, and NATS consume+ack without ClickHouse. Every measurement works
// in its own scratch database and stream namespace, removed afterwards.
func benchIngest(args []string) error {
	var n, batch, workers, acks, natsPID, chPID int
	var cpuProfile, ackMode string
	fs := flag.NewFlagSet("bench-ingest", flag.ContinueOnError)
	path := fs.String("config", "configs/config.yaml", "configuration file")
	fs.IntVar(&n, "n", 200000, "log.write events to publish")
	fs.IntVar(&batch, "batch", 0, "consumer batch size and raw insert block size (default: consumer.batch_size)")
	fs.IntVar(&workers, "workers", 0, "consumer pull loops (default: consumer.workers)")
	fs.IntVar(&acks, "acks", 0, "concurrent AckSync calls (default: consumer.ack_concurrency)")
	fs.StringVar(&ackMode, "ack", "", "async or sync (default: consumer.ack)")
	fs.StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile of the whole run to this file")
	fs.IntVar(&natsPID, "nats-pid", 0, "pid of nats-server: adds its CPU time to each measurement")
	fs.IntVar(&chPID, "clickhouse-pid", 0, "pid of clickhouse-server: adds its CPU time to each measurement")
	if err := fs.Parse(args); err != nil {
		return err
	}
	cfg, err := conf.Load(*path)
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
	if ackMode != "" {
		cfg.Consumer.Ack = ackMode
		if err := cfg.Validate(); err != nil {
			return err
		}
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
	b := &bench{cfg: cfg, pw: pw, n: n, recs: loadgen.Records("bench", n), pids: []int{natsPID, chPID}}
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
	fmt.Printf("bench-ingest: %d log.write events, batch %d, workers %d, ack %s, ClickHouse %s at %s, NATS %s\n",
		n, cfg.Consumer.BatchSize, cfg.Consumer.Workers, cfg.Consumer.Ack, server, cfg.ClickHouse.Addr, cfg.NATS.URL)

	insert, err := b.rawInsert(ctx)
	if err != nil {
		return fmt.Errorf("raw insert: %w", err)
	}
	publish, consume, err := b.natsOnly(ctx)
	if err != nil {
		return fmt.Errorf("nats only: %w", err)
	}
	mode := cfg.Consumer.AckMode()
	live, err := b.endToEnd(ctx, true, mode)
	if err != nil {
		return fmt.Errorf("end to end: %w", err)
	}
	backlog, err := b.endToEnd(ctx, false, mode)
	if err != nil {
		return fmt.Errorf("backlog: %w", err)
	}
	other := natsbus.AckSync
	if mode == natsbus.AckSync {
		other = natsbus.AckAsync
	}
	backlogOther, err := b.endToEnd(ctx, false, other)
	if err != nil {
		return fmt.Errorf("backlog: %w", err)
	}
	rate := func(d time.Duration) float64 { return float64(n) / d.Seconds() }
	w := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintf(w, "measurement\trows/s\tvs raw insert\tvs NATS consume\tCPU s/100k rows: all = bench + nats + clickhouse\n")
	per100k := func(d time.Duration) float64 { return d.Seconds() * 100000 / float64(n) }
	row := func(name string, m measurement) {
		cpu := "-"
		if m.totalCPU() > 0 {
			cpu = fmt.Sprintf("%.2f = %.2f + %.2f + %.2f", per100k(m.totalCPU()), per100k(m.cpu[0]), per100k(m.cpu[1]), per100k(m.cpu[2]))
		}
		fmt.Fprintf(w, "%s\t%.0f\t%.2f\t%.2f\t%s\n", name, rate(m.wall), insert.wall.Seconds()/m.wall.Seconds(),
			consume.wall.Seconds()/m.wall.Seconds(), cpu)
	}
	row("baseline: ClickHouse insert only (PrepareBatch, same rows and blocks)", insert)
	row("baseline: NATS publish only (async, acked)", publish)
	row("baseline: NATS consume+ack only, no ClickHouse (backlog)", consume)
	row("end to end: publish while consuming → all rows queryable (CPU includes publishing)", live)
	row("end to end: drain a published backlog → all rows queryable", backlog)
	row("  the same with ack: "+ackName(other)+" (for comparison)", backlogOther)
	if err := w.Flush(); err != nil {
		return err
	}
	fmt.Printf("CPU = this process%s, user+system; the machine's other load does not count.\n", b.cpuSources())
	return nil
}

// measurement is the wall time of one measurement and the CPU time spent
// on it by this process and the servers named with -nats-pid and
// -clickhouse-pid.
type measurement struct {
	wall time.Duration
	cpu  [3]time.Duration // this process, nats-server, clickhouse-server
}

func (m measurement) totalCPU() time.Duration { return m.cpu[0] + m.cpu[1] + m.cpu[2] }

// mark is the start of a measurement.
type mark struct {
	at  time.Time
	cpu [3]time.Duration
}

func (b *bench) mark() mark { return mark{at: time.Now(), cpu: b.cpuTimes()} }

func (b *bench) since(m mark) measurement {
	now := b.cpuTimes()
	out := measurement{wall: time.Since(m.at)}
	for i := range out.cpu {
		out.cpu[i] = now[i] - m.cpu[i]
	}
	return out
}

// cpuTimes returns user+system time of this process and of the pids given
// with -nats-pid and -clickhouse-pid (0 when not given).
func (b *bench) cpuTimes() [3]time.Duration {
	var ru syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	out := [3]time.Duration{time.Duration(ru.Utime.Nano() + ru.Stime.Nano())}
	for i, pid := range b.pids {
		if pid > 0 {
			out[i+1] = procCPU(pid)
		}
	}
	return out
}

func (b *bench) cpuSources() string {
	out := ""
	if b.pids[0] > 0 {
		out += fmt.Sprintf(" + nats-server (pid %d)", b.pids[0])
	}
	if b.pids[1] > 0 {
		out += fmt.Sprintf(" + clickhouse-server (pid %d)", b.pids[1])
	}
	return out
}

// procCPU reads utime+stime of pid from /proc/<pid>/stat (Linux; 0 when
// unreadable). Clock ticks are 100 per second on Linux.
func procCPU(pid int) time.Duration {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The command name (field 2) may contain spaces; fields after it start
	// at the last ')'.
	s := string(raw)
	fields := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(fields) < 13 {
		return 0
	}
	utime, _ := strconv.ParseInt(fields[11], 10, 64)
	stime, _ := strconv.ParseInt(fields[12], 10, 64)
	return time.Duration(utime+stime) * (time.Second / 100)
}

type bench struct {
	cfg      conf.Config
	pw       string
	pids     []int
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
	if err := natsbus.EnsureStreams(ctx, b.js, names, natsbus.StreamOptions{}); err != nil {
		return names, err
	}
	b.cleanups = append(b.cleanups, func() { _ = natsbus.DeleteStreams(context.Background(), b.js, names) })
	return names, nil
}

// rawInsert writes the rows in blocks of the batch size, one after the
// other, straight into ClickHouse.
func (b *bench) rawInsert(ctx context.Context) (measurement, error) {
	conn, err := b.scratchDB(ctx)
	if err != nil {
		return measurement{}, err
	}
	store := data.NewStore(conn)
	start := b.mark()
	for i := 0; i < len(b.recs); i += b.cfg.Consumer.BatchSize {
		if err := store.Insert(ctx, b.recs[i:min(i+b.cfg.Consumer.BatchSize, len(b.recs))]); err != nil {
			return measurement{}, err
		}
	}
	return b.since(start), nil
}

// discard is an Ingester that stores nothing: the NATS-only baseline.
type discard struct{}

func (discard) Ingest(_ context.Context, recs []biz.Record) (biz.IngestResult, error) {
	return biz.IngestResult{Received: len(recs)}, nil
}

// natsOnly publishes every event, then drains them with the consumer
// decoding and acking but not writing.
func (b *bench) natsOnly(ctx context.Context) (publish, consume measurement, err error) {
	names, err := b.scratchNames(ctx)
	if err != nil {
		return publish, consume, err
	}
	start := b.mark()
	if err := loadgen.Publish(ctx, b.js, names.Subject(events.SubjectLogWrite), b.recs, ""); err != nil {
		return publish, consume, err
	}
	publish = b.since(start)
	start = b.mark()
	c, err := b.startConsumer(ctx, names, discard{}, b.cfg.Consumer.AckMode())
	if err != nil {
		return publish, consume, err
	}
	defer b.stopConsumer(c)
	err = waitFor(ctx, func() (bool, error) {
		lag, err := c.Lag(ctx)
		return lag == 0, err
	})
	return publish, b.since(start), err
}

// endToEnd runs the real consumer on a fresh database and stream. live
// publishes while it consumes; otherwise the events are published first
// and the clock starts with the consumer. It ends when count() = n.
func (b *bench) endToEnd(ctx context.Context, live bool, mode natsbus.AckMode) (measurement, error) {
	conn, err := b.scratchDB(ctx)
	if err != nil {
		return measurement{}, err
	}
	names, err := b.scratchNames(ctx)
	if err != nil {
		return measurement{}, err
	}
	subject := names.Subject(events.SubjectLogWrite)
	if !live {
		if err := loadgen.Publish(ctx, b.js, subject, b.recs, ""); err != nil {
			return measurement{}, err
		}
	}
	start := b.mark()
	c, err := b.startConsumer(ctx, names, biz.NewIngester(data.NewStore(conn)), mode)
	if err != nil {
		return measurement{}, err
	}
	defer b.stopConsumer(c)
	if live {
		if err := loadgen.Publish(ctx, b.js, subject, b.recs, ""); err != nil {
			return measurement{}, err
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
	return b.since(start), err
}

func (b *bench) startConsumer(ctx context.Context, names events.Names, ing consumer.Ingester, mode natsbus.AckMode) (*consumer.Consumer, error) {
	cc := b.cfg.Consumer
	c, err := consumer.New(ctx, b.js, consumer.Config{Names: names, BatchSize: cc.BatchSize, Linger: cc.Linger,
		Workers: cc.Workers, AckWait: cc.AckWait, FlushTimeout: cc.FlushTimeout, MaxAckPending: cc.EffectiveMaxAckPending(),
		AckConcurrency: cc.AckConcurrency, AckMode: mode,
		Backoff: cc.Backoff, LagInterval: cc.LagInterval}, ing, metrics.New(prometheus.NewRegistry()), slog.New(slog.DiscardHandler))
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

func ackName(m natsbus.AckMode) string {
	if m == natsbus.AckSync {
		return "sync"
	}
	return "async"
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
