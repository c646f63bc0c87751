package chaos

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/ClickHouse/clickhouse-go/v2/lib/driver"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/redis/go-redis/v9"

	"github.com/lurus-switch/lurus-switch/lurus-common/apikey"
)

// Scenario 17, the credential sweep: when a scenario ends (its traffic
// and faults done, its servers still up), every service's log, every
// message of every stream of its NATS and every Redis key and value are
// searched for a credential: the admin and internal bearer tokens, the
// key pepper and secret key, every API key and provider key the scenario
// created, and anything shaped like a whole Lurus API key. Not searched:
// mock-upstream's own log (it is the provider: it receives provider keys
// by design) and the servers' logs, which hold no payloads. Where the
// stack runs the request log, every row of every table of its ClickHouse
// database is searched too.

// addSecret registers a credential the sweep must not find.
func (s *stack) addSecret(v string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.secrets = append(s.secrets, v)
}

// wholeKey matches a complete Lurus API key (a display prefix is fine).
var wholeKey = regexp.MustCompile(regexp.QuoteMeta(apikey.Prefix) + fmt.Sprintf("[0-9A-Za-z]{%d}", apikey.RandomLen))

// leaks returns what of the stack's credentials b holds.
func (s *stack) leaks(b []byte) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []string
	for _, sec := range s.secrets {
		if strings.Contains(string(b), sec) {
			out = append(out, sec)
		}
	}
	if k := wholeKey.Find(b); k != nil && !slices.Contains(out, string(k)) {
		out = append(out, string(k))
	}
	return out
}

// sweepResult is what the sweep read.
type sweepResult struct {
	LogBytes, NATSMsgs, RedisKeys int
	ClickHouseRows                int
	Found                         []string // "where: what"
}

// sweepCredentials searches the logs, NATS and Redis of the stack.
func (s *stack) sweepCredentials() sweepResult {
	var r sweepResult
	found := func(where string, b []byte) {
		for _, l := range s.leaks(b) {
			r.Found = append(r.Found, where+": "+redact(l))
		}
	}
	logs, _ := filepath.Glob(filepath.Join(s.logDir, "*.log"))
	for _, f := range logs {
		switch filepath.Base(f) {
		case "mock-upstream.log", "nats-server.log", "redis-server.log", "postgres.log":
			continue
		}
		b, err := os.ReadFile(f)
		if err != nil {
			r.Found = append(r.Found, "read "+f+": "+err.Error())
			continue
		}
		r.LogBytes += len(b)
		found("log "+filepath.Base(f), b)
	}

	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	if nc, err := nats.Connect(s.NATSURL, nats.Timeout(2*time.Second)); err != nil {
		r.Found = append(r.Found, "nats: "+err.Error())
	} else {
		defer nc.Close()
		js, _ := jetstream.New(nc)
		names := js.StreamNames(ctx)
		for name := range names.Name() {
			n, err := sweepStream(ctx, js, name, func(m jetstream.Msg) {
				found(fmt.Sprintf("nats %s %s", name, m.Subject()), m.Data())
				for k, vs := range m.Headers() {
					found(fmt.Sprintf("nats %s %s header %s", name, m.Subject(), k), []byte(strings.Join(vs, "\n")))
				}
			})
			r.NATSMsgs += n
			if err != nil {
				r.Found = append(r.Found, fmt.Sprintf("nats stream %s: %v", name, err))
			}
		}
		if err := names.Err(); err != nil {
			r.Found = append(r.Found, "nats streams: "+err.Error())
		}
	}

	rdb := redis.NewClient(&redis.Options{Addr: s.RedisAddr})
	defer rdb.Close()
	iter := rdb.Scan(ctx, 0, "*", 500).Iterator()
	for iter.Next(ctx) {
		key := iter.Val()
		r.RedisKeys++
		found("redis key", []byte(key))
		v, err := redisValue(ctx, rdb, key)
		if err != nil {
			r.Found = append(r.Found, "redis "+key+": "+err.Error())
			continue
		}
		found("redis "+key, v)
	}
	if err := iter.Err(); err != nil {
		r.Found = append(r.Found, "redis scan: "+err.Error())
	}
	if s.Logs != nil {
		n, err := sweepClickHouse(ctx, s.Logs.CH, found)
		r.ClickHouseRows = n
		if err != nil {
			r.Found = append(r.Found, "clickhouse: "+err.Error())
		}
	}
	return r
}

// sweepClickHouse hands every row of every table of the log database to
// found, each column printed with fmt, and returns how many rows it read.
func sweepClickHouse(ctx context.Context, ch driver.Conn, found func(string, []byte)) (int, error) {
	rows, err := ch.Query(ctx, `SELECT name FROM system.tables WHERE database = currentDatabase()`)
	if err != nil {
		return 0, err
	}
	var tables []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			rows.Close()
			return 0, err
		}
		tables = append(tables, name)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return 0, err
	}
	n := 0
	for _, tbl := range tables {
		rows, err := ch.Query(ctx, "SELECT * FROM `"+tbl+"`")
		if err != nil {
			return n, fmt.Errorf("%s: %w", tbl, err)
		}
		types := rows.ColumnTypes()
		for rows.Next() {
			vals := make([]any, len(types))
			for i, ct := range types {
				vals[i] = reflect.New(ct.ScanType()).Interface()
			}
			if err := rows.Scan(vals...); err != nil {
				rows.Close()
				return n, fmt.Errorf("%s: %w", tbl, err)
			}
			var b strings.Builder
			for _, v := range vals {
				fmt.Fprintf(&b, "%v\t", reflect.ValueOf(v).Elem().Interface())
			}
			found("clickhouse "+tbl, []byte(b.String()))
			n++
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return n, fmt.Errorf("%s: %w", tbl, err)
		}
	}
	return n, nil
}

// sweepStream hands every message a stream holds to fn (an ordered
// consumer reads them in bulk) and returns how many it read.
func sweepStream(ctx context.Context, js jetstream.JetStream, name string, fn func(jetstream.Msg)) (int, error) {
	st, err := js.Stream(ctx, name)
	if err != nil {
		return 0, err
	}
	info, err := st.Info(ctx)
	if err != nil {
		return 0, err
	}
	if info.State.Msgs == 0 {
		return 0, nil
	}
	c, err := st.OrderedConsumer(ctx, jetstream.OrderedConsumerConfig{})
	if err != nil {
		return 0, err
	}
	n := 0
	for n < int(info.State.Msgs) {
		batch, err := c.Fetch(500, jetstream.FetchMaxWait(2*time.Second))
		if err != nil {
			return n, err
		}
		got := 0
		for m := range batch.Messages() {
			fn(m)
			got++
		}
		n += got
		if err := batch.Error(); err != nil && !errors.Is(err, nats.ErrTimeout) {
			return n, err
		}
		if got == 0 {
			return n, fmt.Errorf("read %d of %d messages", n, info.State.Msgs)
		}
	}
	return n, nil
}

// redisValue renders a key's value, whatever its type, as bytes.
func redisValue(ctx context.Context, rdb *redis.Client, key string) ([]byte, error) {
	typ, err := rdb.Type(ctx, key).Result()
	if err != nil {
		return nil, err
	}
	var parts []string
	switch typ {
	case "none": // expired since the scan
	case "string":
		v, err := rdb.Get(ctx, key).Result()
		if err != nil && !errors.Is(err, redis.Nil) {
			return nil, err
		}
		parts = append(parts, v)
	case "hash":
		m, err := rdb.HGetAll(ctx, key).Result()
		if err != nil {
			return nil, err
		}
		for k, v := range m {
			parts = append(parts, k, v)
		}
	case "list":
		parts, err = rdb.LRange(ctx, key, 0, -1).Result()
	case "set":
		parts, err = rdb.SMembers(ctx, key).Result()
	case "zset":
		parts, err = rdb.ZRange(ctx, key, 0, -1).Result()
	case "stream":
		var xs []redis.XMessage
		xs, err = rdb.XRange(ctx, key, "-", "+").Result()
		for _, x := range xs {
			parts = append(parts, fmt.Sprint(x.Values))
		}
	default:
		return nil, fmt.Errorf("type %s not swept", typ)
	}
	return []byte(strings.Join(parts, "\n")), err
}

// redact shows enough of a credential to recognise it in a failure
// message without printing it whole.
func redact(s string) string {
	if len(s) <= 12 {
		return s[:min(len(s), 4)] + "…"
	}
	return s[:12] + "…"
}

// TestSweepRecognisesCredentials: the matcher the sweep uses finds a
// registered credential and any whole Lurus key, and passes a key's
// display prefix.
func TestSweepRecognisesCredentials(t *testing.T) {
	s := &stack{secrets: []string{adminToken}}
	key := apikey.Generate()
	for _, c := range []struct {
		in   string
		want int
	}{
		{`{"msg":"request","key":"` + key[:apikey.DisplayLen] + `"}`, 0},
		{`Authorization: Bearer ` + adminToken, 1},
		{`{"key":"` + key + `"}`, 1},
		{adminToken + " " + key, 2},
	} {
		if got := s.leaks([]byte(c.in)); len(got) != c.want {
			t.Errorf("leaks(%q) = %q, want %d", c.in, got, c.want)
		}
	}
}
