package chaos

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/lurus-switch/lurus-switch/lurus-common/events"
	"github.com/lurus-switch/lurus-switch/lurus-common/testenv"
)

// Harness for the publishing scenarios (2, 3, 13, 14): a fault proxy
// between the gateways and NATS that can lose the server's replies, a
// reader of what a stream stored, a reader of a gateway's file outbox and a
// streaming client.

// natsFault is a testenv.Proxy in front of the private nats-server that
// can also lose every byte the server sends back while still forwarding
// what the client sends (publishes reach the server and are stored, their
// acknowledgements never arrive), or lose what the client sends (a
// consumer's acks never reach the server).
type natsFault struct {
	*testenv.Proxy

	dropReplies atomic.Bool
	dropAcks    atomic.Bool
}

func newNATSFault(t testing.TB, target string) *natsFault {
	t.Helper()
	f := &natsFault{}
	f.Proxy = testenv.NewFilterProxy(t, target, testenv.Filters{ToServer: f.requests, ToClient: f.replies})
	return f
}

// DropReplies starts (true) or stops losing the server's bytes.
func (f *natsFault) DropReplies(on bool) { f.dropReplies.Store(on) }

// DropAcks starts (true) or stops losing the acknowledgements the client
// sends for JetStream messages; everything else it sends goes through.
func (f *natsFault) DropAcks(on bool) { f.dropAcks.Store(on) }

// replies passes on what the server sent, or loses it while dropReplies
// is set.
func (f *natsFault) replies(src *bufio.Reader) ([]byte, error) {
	buf := make([]byte, 32<<10)
	n, err := src.Read(buf)
	if f.dropReplies.Load() {
		return nil, err
	}
	return buf[:n], err
}

// requests passes on the client's protocol message by message so that,
// while dropAcks is set, a PUB or HPUB to a "$JS.ACK." subject (with its
// payload) can be left out.
func (f *natsFault) requests(src *bufio.Reader) ([]byte, error) {
	line, err := src.ReadBytes('\n')
	if err != nil {
		return nil, err
	}
	fields := strings.Fields(string(line))
	if len(fields) < 3 || (fields[0] != "PUB" && fields[0] != "HPUB") {
		return line, nil
	}
	size, _ := strconv.Atoi(fields[len(fields)-1])
	payload := make([]byte, size+2) // and its CRLF
	if _, err := io.ReadFull(src, payload); err != nil {
		return nil, err
	}
	if f.dropAcks.Load() && strings.HasPrefix(fields[1], "$JS.ACK.") {
		return nil, nil
	}
	return append(line, payload...), nil
}

// withNATSFault returns stack options whose gateways reach NATS through a
// fault proxy, and the proxy (set once the stack started).
func withNATSFault(t testing.TB, o stackOptions) (stackOptions, **natsFault) {
	var f *natsFault
	o.GatewayNATS = func(url string) string {
		f = newNATSFault(t, strings.TrimPrefix(url, "nats://"))
		return "nats://" + f.Addr
	}
	return o, &f
}

// editedConfig writes a copy of a service's configs/config.yaml changed by
// edit and returns its path.
func (s *stack) editedConfig(service string, edit func(string) string) string {
	s.t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, service, "configs", "config.yaml"))
	if err != nil {
		s.t.Fatal(err)
	}
	out := edit(string(b))
	if out == string(b) {
		s.t.Fatalf("%s config edit changed nothing", service)
	}
	path := filepath.Join(s.t.TempDir(), service+".yaml")
	if err := os.WriteFile(path, []byte(out), 0o644); err != nil {
		s.t.Fatal(err)
	}
	return path
}

// replaceLine is a config edit replacing one exact line fragment.
func replaceLine(old, repl string) func(string) string {
	return func(s string) string { return strings.Replace(s, old, repl, 1) }
}

// storedIDs reads every envelope a stream of the private NATS stored, in
// stream order, and returns their ids (the request ids, for billing.usage
// and log.write), duplicates included.
func (s *stack) storedIDs(base string) []string {
	s.t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	nc, err := nats.Connect(s.NATSURL, nats.Timeout(2*time.Second))
	if err != nil {
		s.t.Fatalf("nats: %v", err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	st, err := js.Stream(ctx, events.NewNames("").Stream(base))
	if err != nil {
		s.t.Fatalf("stream %s: %v", base, err)
	}
	info, err := st.Info(ctx)
	if err != nil {
		s.t.Fatal(err)
	}
	var ids []string
	for seq := info.State.FirstSeq; info.State.Msgs > 0 && seq <= info.State.LastSeq; seq++ {
		m, err := st.GetMsg(ctx, seq)
		if err != nil {
			if errors.Is(err, jetstream.ErrMsgNotFound) {
				continue
			}
			s.t.Fatalf("stream %s seq %d: %v", base, seq, err)
		}
		envs, err := events.ParseBody(m.Data)
		if err != nil {
			s.t.Fatalf("stream %s seq %d: %v", base, seq, err)
		}
		for _, e := range envs {
			ids = append(ids, e.ID)
		}
	}
	return ids
}

// streamMsgs is how many messages a stream holds.
func (s *stack) streamMsgs(nc *nats.Conn, base string) (uint64, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	js, _ := jetstream.New(nc)
	st, err := js.Stream(ctx, events.NewNames("").Stream(base))
	if err != nil {
		return 0, err
	}
	info, err := st.Info(ctx)
	if err != nil {
		return 0, err
	}
	return info.State.Msgs, nil
}

// gatewayEnv returns a value of gateway i's environment.
func (s *stack) gatewayEnv(i int, name string) string {
	for _, kv := range s.Gateways[i].env {
		if v, ok := strings.CutPrefix(kv, name+"="); ok {
			return v
		}
	}
	s.t.Fatalf("gateway %d has no %s", i, name)
	return ""
}

// outboxIDs reads the request ids of the billing.usage events a gateway's
// file outbox holds (segments and the current file).
func (s *stack) outboxIDs(i int) map[string]bool {
	s.t.Helper()
	dir := s.gatewayEnv(i, "LURUS_GATEWAY_OUTBOX_DIR")
	files, _ := filepath.Glob(filepath.Join(dir, "*.jsonl"))
	ids := map[string]bool{}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			s.t.Fatal(err)
		}
		for _, line := range strings.Split(string(raw), "\n") {
			var r struct {
				Subject string          `json:"s"`
				Body    json.RawMessage `json:"b"`
			}
			if line == "" || json.Unmarshal([]byte(line), &r) != nil || r.Subject != events.SubjectBillingUsage {
				continue
			}
			envs, err := events.ParseBody(r.Body)
			if err != nil {
				s.t.Fatalf("outbox %s: %v", f, err)
			}
			for _, e := range envs {
				ids[e.ID] = true
			}
		}
	}
	return ids
}

// gatewayMetric reads one metric of gateway i (-1 when the gateway does
// not answer).
func (s *stack) gatewayMetric(i int, name string) float64 {
	return scrapeMetric(s.GatewayURLs[i]+"/metrics", name)
}

// metricAt reads one sample of a service's /metrics (see scrapeMetric).
func metricAt(baseURL, name string) float64 { return scrapeMetric(baseURL+"/metrics", name) }

// scrapeMetric reads one series of a Prometheus endpoint, named as the
// exposition writes it (`name` or `name{label="v"}`); -1 when the
// endpoint does not answer or lacks the series.
func scrapeMetric(url, series string) float64 {
	resp, err := http.Get(url)
	if err != nil {
		return -1
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 1<<20), 1<<20)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), series+" "); ok {
			f, _ := strconv.ParseFloat(v, 64)
			return f
		}
	}
	return -1
}

// logLines counts the lines of a process's log containing substr.
func (s *stack) logLines(p *proc, substr string) int {
	b, _ := os.ReadFile(p.log)
	return strings.Count(string(b), substr)
}

// sseReply is what a streaming client of the publishing scenarios saw.
type sseReply struct {
	Status    int
	RequestID string
	Chunks    int  // data events with content
	Done      bool // the [DONE] terminator arrived
	DoneAt    time.Time
	Err       error
}

// chatStream sends one streaming chat completion and reads it to the end;
// first is called once when the first data event arrived.
func chatStream(gw, key string, maxTokens int, first func()) sseReply {
	body := fmt.Sprintf(`{"model":"gpt-4o-mini","stream":true,"max_tokens":%d,"messages":[{"role":"user","content":"hi"}]}`, maxTokens)
	req, _ := http.NewRequest(http.MethodPost, gw+"/v1/chat/completions", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := httpClient.Do(req)
	if err != nil {
		return sseReply{Err: err}
	}
	defer resp.Body.Close()
	r := sseReply{Status: resp.StatusCode, RequestID: resp.Header.Get("X-Request-Id")}
	br := bufio.NewReader(resp.Body)
	called := false
	for {
		line, err := br.ReadString('\n')
		if data, ok := strings.CutPrefix(strings.TrimSpace(line), "data:"); ok {
			data = strings.TrimSpace(data)
			if !called && first != nil {
				called = true
				first()
			}
			if data == "[DONE]" {
				r.Done, r.DoneAt = true, time.Now()
			} else if strings.Contains(data, `"content"`) {
				r.Chunks++
			}
		}
		if err != nil {
			if !errors.Is(err, io.EOF) {
				r.Err = err
			}
			if !called && first != nil {
				first()
			}
			return r
		}
	}
}

// asReply is the reply traffic records for a stream (the request id is
// accepted when the status was 2xx).
func (r sseReply) asReply() reply {
	return reply{Status: r.Status, RequestID: r.RequestID}
}

// usageOf reads the usage row of each id: completion tokens and source.
func (s *stack) usageOf(ids []string) map[string][2]string {
	s.t.Helper()
	rows, err := s.BillingDB.Query(context.Background(),
		`SELECT request_id, completion_tokens::text, usage_source FROM usage_records WHERE request_id = ANY($1)`, ids)
	if err != nil {
		s.t.Fatal(err)
	}
	defer rows.Close()
	out := map[string][2]string{}
	for rows.Next() {
		var id, c, src string
		if err := rows.Scan(&id, &c, &src); err != nil {
			s.t.Fatal(err)
		}
		out[id] = [2]string{c, src}
	}
	return out
}

// readyOK reports whether a readiness route answers 200 (the gateway's
// fails while NATS is unreachable).
func readyOK(url string) bool {
	resp, err := http.Get(url)
	if err != nil {
		return false
	}
	resp.Body.Close()
	return resp.StatusCode == http.StatusOK
}
