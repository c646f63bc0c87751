// Command bench-sync is sync-service's benchmark: it starts the
// sync-service binary as a child process on a random port, with a fake
// billing-service and a fresh NATS namespace, connects many WebSocket
// clients, measures the server's memory per idle connection (RSS and Go heap
// and stack deltas divided by the client count), then publishes user events
// and measures publish→delivery latency at the clients. The baseline, in
// the same run, is the latency of the same events to a plain core-NATS
// subscriber: the floor any fan-out over NATS starts from.
//
// Usage:
//
//	bench-sync [-bin bin/sync-service] [-clients 10000] [-users 2500] [-events 2000] [-rate 200] ...
//
// It is a tool of its own so that the service binary carries no benchmark
// code; `make build` puts it beside bin/sync-service, which it starts by
// default.
package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"math"
	mrand "math/rand/v2"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/gorilla/websocket"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/lurus-switch/lurus-switch/lurus-common/apikey"
	"github.com/lurus-switch/lurus-switch/lurus-common/events"
	"github.com/lurus-switch/lurus-switch/lurus-common/events/eventid"
	"github.com/lurus-switch/lurus-switch/lurus-common/events/natsbus"
	"github.com/lurus-switch/lurus-switch/lurus-common/internalapi"
	"github.com/lurus-switch/lurus-switch/sync-service/internal/synctest"
)

// Options are the benchmark's parameters.
type Options struct {
	Bin         string        // sync-service binary to start (default: sync-service beside this executable)
	Clients     int           // WebSocket clients
	Users       int           // users the clients are spread over (devices per user = Clients/Users)
	Events      int           // events published
	Rate        int           // events per second
	Concurrency int           // parallel connection attempts
	Settle      time.Duration // wait after connecting before measuring memory
	NATSURL     string
	RedisAddr   string
	HeapProfile string // write the server's heap profile here after connecting (optional)
	GCPercent   int    // the server's runtime.gc_percent
}

func main() {
	if err := run(context.Background(), os.Args[1:], os.Stdout); err != nil {
		fmt.Fprintln(os.Stderr, "bench-sync:", err)
		os.Exit(1)
	}
}

// run parses args and runs the benchmark, printing a report to out.
func run(ctx context.Context, args []string, out io.Writer) error {
	fs := flag.NewFlagSet("bench-sync", flag.ContinueOnError)
	var o Options
	fs.StringVar(&o.Bin, "bin", "", "sync-service binary (default: sync-service beside this executable)")
	fs.IntVar(&o.Clients, "clients", 10000, "WebSocket clients")
	fs.IntVar(&o.Users, "users", 2500, "users the clients belong to")
	fs.IntVar(&o.Events, "events", 2000, "events to publish")
	fs.IntVar(&o.Rate, "rate", 200, "events published per second")
	fs.IntVar(&o.Concurrency, "concurrency", 64, "parallel connection attempts")
	fs.DurationVar(&o.Settle, "settle", 5*time.Second, "wait after connecting before measuring memory")
	fs.StringVar(&o.NATSURL, "nats", envOr("LURUS_NATS_URL", "nats://127.0.0.1:4222"), "NATS URL")
	fs.StringVar(&o.RedisAddr, "redis", envOr("LURUS_REDIS_ADDR", "127.0.0.1:6379"), "Redis address")
	fs.IntVar(&o.GCPercent, "gc-percent", 35, "server runtime.gc_percent (the shipped config's value is 35)")
	fs.StringVar(&o.HeapProfile, "heap-profile", "", "write the server's heap profile (pprof) here after connecting")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if o.Clients < 1 || o.Users < 1 || o.Users > o.Clients || o.Events < 1 || o.Rate < 1 || o.Concurrency < 1 {
		return errors.New("need clients ≥ users ≥ 1, events, rate and concurrency ≥ 1")
	}
	r, err := Run(ctx, o)
	if err != nil {
		return err
	}
	r.Print(out)
	return nil
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

// Result is what a run measured.
type Result struct {
	Options       Options
	Connected     int
	ConnectTime   time.Duration
	RSSBefore     int64 // server RSS before connecting, bytes
	RSSAfter      int64 // server RSS with every client connected and idle
	HeapBefore    int64 // server Go heap in use (bytes) before / after
	HeapAfter     int64
	StackBefore   int64 // server goroutine stacks in use (bytes) before / after
	StackAfter    int64
	Goroutines    [2]int64 // server goroutines before / after
	Sync          Latencies
	Baseline      Latencies
	Expected      int // deliveries expected at the WebSocket clients
	Delivered     int
	Duplicates    int
	PublishErrors int
}

// Latencies summarizes publish→delivery times.
type Latencies struct {
	N                  int
	P50, P90, P99, Max time.Duration
}

func summarize(d []time.Duration) Latencies {
	if len(d) == 0 {
		return Latencies{}
	}
	slices.Sort(d)
	at := func(q float64) time.Duration {
		i := int(math.Ceil(q*float64(len(d)))) - 1
		return d[max(0, min(i, len(d)-1))]
	}
	return Latencies{N: len(d), P50: at(0.50), P90: at(0.90), P99: at(0.99), Max: d[len(d)-1]}
}

// Print writes the report.
func (r *Result) Print(w io.Writer) {
	n := float64(r.Connected)
	kib := func(b int64) string { return fmt.Sprintf("%.1f KiB", float64(b)/n/1024) }
	fmt.Fprintf(w, "bench-sync: %d clients (%d users × %d devices), %d events at %d/s, server gc_percent %d\n",
		r.Options.Clients, r.Options.Users, r.Options.Clients/r.Options.Users, r.Options.Events, r.Options.Rate, r.Options.GCPercent)
	fmt.Fprintf(w, "connected %d clients in %s\n", r.Connected, r.ConnectTime.Round(time.Millisecond))
	fmt.Fprintf(w, "memory per idle connection: RSS %s (%.1f MiB → %.1f MiB), Go heap %s, goroutine stacks %s, goroutines %.2f\n",
		kib(r.RSSAfter-r.RSSBefore), float64(r.RSSBefore)/(1<<20), float64(r.RSSAfter)/(1<<20),
		kib(r.HeapAfter-r.HeapBefore), kib(r.StackAfter-r.StackBefore), float64(r.Goroutines[1]-r.Goroutines[0])/n)
	row := func(name string, l Latencies) {
		fmt.Fprintf(w, "  %-28s n=%-6d p50=%-9s p90=%-9s p99=%-9s max=%s\n", name, l.N, fmtDur(l.P50), fmtDur(l.P90), fmtDur(l.P99), fmtDur(l.Max))
	}
	fmt.Fprintln(w, "publish→delivery latency:")
	row("baseline (core NATS sub)", r.Baseline)
	row("sync-service (WebSocket)", r.Sync)
	ratio := func(a, b time.Duration) string {
		if b <= 0 {
			return "n/a"
		}
		return fmt.Sprintf("%.1f×", float64(a)/float64(b))
	}
	fmt.Fprintf(w, "ratio sync/baseline: p50 %s, p99 %s\n", ratio(r.Sync.P50, r.Baseline.P50), ratio(r.Sync.P99, r.Baseline.P99))
	fmt.Fprintf(w, "deliveries %d of %d expected, %d duplicates, %d publish errors\n", r.Delivered, r.Expected, r.Duplicates, r.PublishErrors)
	verdict := func(ok bool) string {
		if ok {
			return "met"
		}
		return "NOT met"
	}
	fmt.Fprintf(w, "targets: p99 ≤ 100 ms %s; ≤ 20 KiB RSS per idle connection %s\n",
		verdict(r.Sync.N > 0 && r.Sync.P99 <= 100*time.Millisecond), verdict(r.Connected > 0 && (r.RSSAfter-r.RSSBefore)/int64(r.Connected) <= 20<<10))
}

func fmtDur(d time.Duration) string {
	switch {
	case d >= time.Second:
		return fmt.Sprintf("%.2fs", d.Seconds())
	case d >= time.Millisecond:
		return fmt.Sprintf("%.2fms", float64(d)/1e6)
	default:
		return fmt.Sprintf("%.0fµs", float64(d)/1e3)
	}
}

// Run runs the benchmark.
func Run(ctx context.Context, o Options) (*Result, error) {
	if o.Bin == "" {
		exe, err := os.Executable()
		if err != nil {
			return nil, err
		}
		o.Bin = filepath.Join(filepath.Dir(exe), "sync-service")
	}
	res := &Result{Options: o}
	token := randomHex(16)
	ns := "bench" + randomHex(6)
	names := events.NewNames(ns)

	nc, err := nats.Connect(o.NATSURL, nats.Name("sync-bench"))
	if err != nil {
		return nil, fmt.Errorf("nats: %w", err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, err
	}
	if err := natsbus.EnsureStreams(ctx, js, names, natsbus.StreamOptions{}); err != nil {
		return nil, err
	}
	defer func() {
		dctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		_ = natsbus.DeleteStreams(dctx, js, names)
	}()

	billing := synctest.NewFakeBilling(token)
	bsrv := billing.Start()
	defer bsrv.Close()
	users := make([]string, o.Users)
	keys := make([]string, o.Users)
	for i := range users {
		users[i] = fmt.Sprintf("usr_bench%06d", i)
		keys[i] = apikey.Generate()
		billing.AddKey(keys[i], internalapi.VerifyKeyResponse{KeyID: "key_" + users[i], UserID: users[i], UserActive: true})
	}

	srv, err := startServer(ctx, o, ns, token, bsrv.URL)
	if err != nil {
		return nil, err
	}
	defer srv.stop()

	res.RSSBefore, err = rss(srv.cmd.Process.Pid)
	if err != nil {
		return nil, err
	}
	before, err := srv.memstats()
	if err != nil {
		return nil, err
	}

	// Connect.
	col := newCollector()
	conns := make([]*websocket.Conn, o.Clients)
	start := time.Now()
	var next atomic.Int64
	var connErr error
	var errOnce sync.Once
	var wg sync.WaitGroup
	dialer := websocket.Dialer{HandshakeTimeout: 30 * time.Second, ReadBufferSize: 1024, WriteBufferSize: 256}
	for w := 0; w < o.Concurrency; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				i := int(next.Add(1) - 1)
				if i >= o.Clients {
					return
				}
				u := i % o.Users
				url := fmt.Sprintf("%s?device_id=dev%d", srv.wsURL, i)
				c, _, err := dialer.DialContext(ctx, url, http.Header{"Authorization": {"Bearer " + keys[u]}})
				if err != nil {
					errOnce.Do(func() { connErr = fmt.Errorf("client %d: %w", i, err) })
					return
				}
				conns[i] = c
			}
		}()
	}
	wg.Wait()
	res.ConnectTime = time.Since(start)
	defer func() {
		for _, c := range conns {
			if c != nil {
				c.Close()
			}
		}
	}()
	if connErr != nil {
		return nil, connErr
	}
	res.Connected = o.Clients
	for _, c := range conns {
		go col.read(c)
	}

	// Memory with every client idle.
	time.Sleep(o.Settle)
	if o.HeapProfile != "" {
		if err := srv.heapProfile(o.HeapProfile); err != nil {
			return nil, err
		}
	}
	res.RSSAfter, err = rss(srv.cmd.Process.Pid)
	if err != nil {
		return nil, err
	}
	after, err := srv.memstats()
	if err != nil {
		return nil, err
	}
	res.HeapBefore, res.HeapAfter = before["go_memstats_heap_inuse_bytes"], after["go_memstats_heap_inuse_bytes"]
	res.StackBefore, res.StackAfter = before["go_memstats_stack_inuse_bytes"], after["go_memstats_stack_inuse_bytes"]
	res.Goroutines = [2]int64{before["go_goroutines"], after["go_goroutines"]}

	// Baseline: a plain subscriber on every user event.
	var baseMu sync.Mutex
	var base []time.Duration
	bsub, err := nc.Subscribe(names.AllUsersFilter(), func(m *nats.Msg) {
		now := time.Now()
		env, err := events.ParseEnvelope(m.Data)
		if err != nil {
			return
		}
		baseMu.Lock()
		base = append(base, now.Sub(env.OccurredAt))
		baseMu.Unlock()
	})
	if err != nil {
		return nil, err
	}
	defer bsub.Unsubscribe()
	if err := nc.Flush(); err != nil {
		return nil, err
	}

	// Publish.
	pub := natsbus.NewPublisher(js)
	perUser := o.Clients / o.Users
	extra := o.Clients % o.Users
	tick := time.NewTicker(time.Second / time.Duration(o.Rate))
	defer tick.Stop()
	for i := 0; i < o.Events; i++ {
		<-tick.C
		u := mrand.IntN(o.Users)
		env, err := events.NewEnvelope(eventid.New(), events.TypeBalanceChanged, users[u], time.Now(), events.BalanceChanged{BalanceMicros: int64(i), Kind: "usage"})
		if err != nil {
			return nil, err
		}
		if _, err := pub.Publish(ctx, names.UserSubject(users[u], env.Type), env); err != nil {
			res.PublishErrors++
			continue
		}
		res.Expected += perUser
		if u < extra {
			res.Expected++
		}
	}
	deadline := time.Now().Add(30 * time.Second)
	for col.delivered() < res.Expected && time.Now().Before(deadline) {
		time.Sleep(50 * time.Millisecond)
	}
	time.Sleep(200 * time.Millisecond) // let late duplicates, if any, show
	res.Sync, res.Delivered, res.Duplicates = col.result()
	baseMu.Lock()
	res.Baseline = summarize(base)
	baseMu.Unlock()
	return res, nil
}

// collector gathers what the clients receive.
type collector struct {
	mu    sync.Mutex
	lat   []time.Duration
	dups  int
	count atomic.Int64
}

func newCollector() *collector { return &collector{} }

// read records every event conn receives; an event id seen twice on one
// connection is a duplicate.
func (c *collector) read(conn *websocket.Conn) {
	var seen map[string]struct{}
	for {
		_, raw, err := conn.ReadMessage()
		if err != nil {
			return
		}
		now := time.Now()
		var m synctest.Message
		if json.Unmarshal(raw, &m) != nil || m.Type != "event" || m.Event == nil {
			continue
		}
		if seen == nil {
			seen = map[string]struct{}{}
		}
		if _, dup := seen[m.Event.ID]; dup {
			c.mu.Lock()
			c.dups++
			c.mu.Unlock()
			continue
		}
		seen[m.Event.ID] = struct{}{}
		c.mu.Lock()
		c.lat = append(c.lat, now.Sub(m.Event.OccurredAt))
		c.mu.Unlock()
		c.count.Add(1)
	}
}

func (c *collector) delivered() int { return int(c.count.Load()) }

func (c *collector) result() (Latencies, int, int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	return summarize(slices.Clone(c.lat)), len(c.lat), c.dups
}

// server is the child sync-service.
type server struct {
	cmd     *exec.Cmd
	base    string
	wsURL   string
	waitErr chan error
	dir     string
}

func startServer(ctx context.Context, o Options, ns, token, billingURL string) (*server, error) {
	dir, err := os.MkdirTemp("", "sync-bench-")
	if err != nil {
		return nil, err
	}
	cfgPath := filepath.Join(dir, "config.yaml")
	cfg := fmt.Sprintf(`server:
  addr: 127.0.0.1:0
  pprof: true
log:
  level: info
nats:
  url: %s
  namespace: %s
redis:
  addr: %s
  prefix: "bench:%s:"
billing:
  url: %s
runtime:
  gc_percent: %d
# Every client dials from this host, with up to ceil(clients/users)
# devices per user: the abuse caps are raised to fit.
ws:
  max_per_user: %d
  max_per_ip: %d
`, o.NATSURL, ns, o.RedisAddr, ns, billingURL, o.GCPercent, max(20, (o.Clients+o.Users-1)/o.Users), max(100, o.Clients))
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		return nil, err
	}
	cmd := exec.CommandContext(ctx, o.Bin, "serve", "-config", cfgPath)
	cmd.Env = append(slices.DeleteFunc(os.Environ(), func(e string) bool { return strings.HasPrefix(e, "GOGC=") }), "LURUS_INTERNAL_TOKEN="+token, "LURUS_KEY_PEPPER="+synctest.Pepper)
	stderr, err := cmd.StderrPipe()
	if err != nil {
		return nil, err
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("start %s: %w", o.Bin, err)
	}
	s := &server{cmd: cmd, waitErr: make(chan error, 1), dir: dir}
	addrc := make(chan string, 1)
	go func() {
		sc := bufio.NewScanner(stderr)
		for sc.Scan() {
			var line struct {
				Msg  string `json:"msg"`
				Addr string `json:"addr"`
			}
			if json.Unmarshal(sc.Bytes(), &line) == nil && line.Msg == "sync-service listening" {
				addrc <- line.Addr
			} else if !strings.Contains(sc.Text(), `"level":"INFO"`) {
				fmt.Fprintln(os.Stderr, "server:", sc.Text())
			}
		}
	}()
	go func() { s.waitErr <- cmd.Wait() }()
	select {
	case addr := <-addrc:
		s.base = "http://" + addr
		s.wsURL = "ws://" + addr + "/ws/sync"
	case err := <-s.waitErr:
		return nil, fmt.Errorf("sync-service exited: %v", err)
	case <-time.After(20 * time.Second):
		s.stop()
		return nil, errors.New("sync-service did not start")
	}
	for deadline := time.Now().Add(10 * time.Second); ; {
		resp, err := http.Get(s.base + "/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return s, nil
			}
		}
		if time.Now().After(deadline) {
			s.stop()
			return nil, fmt.Errorf("sync-service not ready: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (s *server) stop() {
	_ = s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case <-s.waitErr:
	case <-time.After(20 * time.Second):
		_ = s.cmd.Process.Kill()
		<-s.waitErr
	}
	_ = os.RemoveAll(s.dir)
}

// memstats reads the Go runtime gauges from /metrics after forcing a GC
// (through the heap profile endpoint), so heap numbers are live memory.
func (s *server) memstats() (map[string]int64, error) {
	if resp, err := http.Get(s.base + "/debug/pprof/heap?gc=1"); err == nil {
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
	}
	resp, err := http.Get(s.base + "/metrics")
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	out := map[string]int64{}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		name, val, ok := strings.Cut(sc.Text(), " ")
		if !ok || strings.HasPrefix(name, "#") {
			continue
		}
		switch name {
		case "go_memstats_heap_inuse_bytes", "go_memstats_stack_inuse_bytes", "go_goroutines":
			f, err := strconv.ParseFloat(val, 64)
			if err == nil {
				out[name] = int64(f)
			}
		}
	}
	return out, sc.Err()
}

func (s *server) heapProfile(path string) error {
	resp, err := http.Get(s.base + "/debug/pprof/heap")
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(f, resp.Body)
	return err
}

// rss returns a process's resident set size from /proc.
func rss(pid int) (int64, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(raw), "\n") {
		if v, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(v), "kB")), 10, 64)
			if err != nil {
				return 0, err
			}
			return kb << 10, nil
		}
	}
	return 0, errors.New("no VmRSS")
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
