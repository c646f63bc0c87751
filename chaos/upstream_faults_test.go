package chaos

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"time"
)

// Helpers of scenarios 8, 9 and 10: a gateway restarted on a config of
// the scenario's own, providers built from mock scenarios, a streaming
// client that hangs up where it is told, and the mock's own record of
// what reached it.

// restartGatewayWithConfig stops gateway i and starts it again on a copy
// of gateway-service's config.yaml in which every old → new replacement
// of edits was made (each old string must occur), on the same address
// and outbox. It waits until the gateway is ready.
func (s *stack) restartGatewayWithConfig(i int, edits map[string]string) {
	s.t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, "gateway-service", "configs", "config.yaml"))
	if err != nil {
		s.t.Fatal(err)
	}
	cfg := string(b)
	for old, repl := range edits {
		if !strings.Contains(cfg, old) {
			s.t.Fatalf("gateway config has no %q line to change; update the scenario", old)
		}
		cfg = strings.Replace(cfg, old, repl, 1)
	}
	path := filepath.Join(s.t.TempDir(), "gateway.yaml")
	if err := os.WriteFile(path, []byte(cfg), 0o644); err != nil {
		s.t.Fatal(err)
	}
	old := s.Gateways[i]
	if err := old.Stop(15 * time.Second); err != nil {
		s.t.Fatal(err)
	}
	g := newProc(s.t, s.logDir, old.name, old.path, old.dir, old.env, "serve", "-config", path)
	g.Start()
	s.Gateways[i] = g
	s.waitReady(s.GatewayURLs[i] + "/ready")
}

// mockScenario stores a named scenario on the mock (settings in the JSON
// form of mockupstream.Settings); a provider picks it with the
// X-Mock-Scenario header.
func (s *stack) mockScenario(name string, settings map[string]any) {
	s.t.Helper()
	s.admin(http.MethodPut, s.MockURL+"/__scenarios/"+name, settings, nil, http.StatusNoContent)
}

// upstreamTimeouts are a provider's timeouts in milliseconds.
type upstreamTimeouts struct {
	ConnectMs   int64 `json:"connect_ms"`
	FirstByteMs int64 `json:"first_byte_ms"`
	IdleMs      int64 `json:"idle_ms"`
	TotalMs     int64 `json:"total_ms"`
}

// mockProvider creates an OpenAI-type provider on the mock serving model,
// whose every request runs the mock scenario of the same name as the
// provider. Higher priority is tried first.
func (s *stack) mockProvider(name, model string, priority int, to upstreamTimeouts) {
	s.t.Helper()
	p := map[string]any{"name": name, "type": "openai", "base_url": s.MockURL + "/v1", "keys": []string{"sk-" + name},
		"models": []string{model}, "allow_private_network": true, "enabled": true, "weight": 1, "priority": priority,
		"timeouts": to, "headers": map[string]string{"X-Mock-Scenario": name}}
	s.addSecret("sk-" + name)
	s.admin(http.MethodPost, s.ProviderURL+"/api/v1/providers", p, nil, http.StatusCreated)
}

// waitModels waits until every gateway lists every model for the key.
func (s *stack) waitModels(key string, models ...string) {
	s.t.Helper()
	for _, gw := range s.GatewayURLs {
		s.eventually(30*time.Second, "gateway "+gw+" lists "+strings.Join(models, ", "), func() bool {
			req, _ := http.NewRequest(http.MethodGet, gw+"/v1/models", nil)
			req.Header.Set("Authorization", "Bearer "+key)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return false
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			for _, m := range models {
				if !strings.Contains(string(b), `"`+m+`"`) {
					return false
				}
			}
			return resp.StatusCode == 200
		})
	}
}

// mockRecord is the part of a mock-upstream request record the scenarios read.
type mockRecord struct {
	Scenario string `json:"scenario"`
	Status   int    `json:"status"`
	Cut      bool   `json:"cut"`
}

// mockRequests returns what reached the mock (its newest 1000 requests),
// counted by scenario.
func (s *stack) mockRequests() map[string]int {
	s.t.Helper()
	var out struct {
		Items []mockRecord `json:"items"`
	}
	s.admin(http.MethodGet, s.MockURL+"/__requests", nil, &out, http.StatusOK)
	n := map[string]int{}
	for _, r := range out.Items {
		n[r.Scenario]++
	}
	return n
}

// mockInFlight is the number of requests the mock is answering now.
func (s *stack) mockInFlight() int64 {
	s.t.Helper()
	var st struct {
		InFlight int64 `json:"in_flight"`
	}
	s.admin(http.MethodGet, s.MockURL+"/__stats", nil, &st, http.StatusOK)
	return st.InFlight
}

// streamReply is what a streaming client saw.
type streamReply struct {
	reply
	Chunks     int    // data events read, error events aside
	ErrorEvent string // the error event that ended the stream, if any
	Done       bool   // the [DONE] event arrived
	Elapsed    time.Duration
	RetryAfter string
}

// chatModel sends one chat completion for model (output capped at
// maxTokens) through gw. When stream,
// it reads the events and hangs up after hangUpAfter data events (0:
// reads to the end). A stream whose headers arrived is reported with its
// status and no Err, however its body ended: the request was accepted.
func chatModel(gw, key, model string, maxTokens int, stream bool, hangUpAfter int) streamReply {
	start := time.Now()
	body := fmt.Sprintf(`{"model":%q,"max_tokens":%d,"stream":%t,"messages":[{"role":"user","content":"hi"}]}`,
		model, maxTokens, stream)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, gw+"/v1/chat/completions", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := httpClient.Do(req)
	if err != nil {
		return streamReply{reply: reply{Err: err}, Elapsed: time.Since(start)}
	}
	defer resp.Body.Close()
	r := streamReply{reply: reply{Status: resp.StatusCode, RequestID: resp.Header.Get("X-Request-Id")},
		RetryAfter: resp.Header.Get("Retry-After")}
	if !stream || resp.StatusCode != http.StatusOK {
		r.Body, r.Err = io.ReadAll(resp.Body)
		r.Elapsed = time.Since(start)
		return r
	}
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, "data:") {
			continue
		}
		data := strings.TrimSpace(strings.TrimPrefix(line, "data:"))
		if data == "[DONE]" {
			r.Done = true
			break
		}
		if strings.HasPrefix(data, `{"error"`) {
			r.ErrorEvent = data
			continue
		}
		r.Chunks++
		if hangUpAfter > 0 && r.Chunks >= hangUpAfter {
			// Hang up: cancel the request and close the connection under it.
			cancel()
			break
		}
	}
	r.Elapsed = time.Since(start)
	return r
}

// usageRow is one usage_records row as the scenarios check it.
type usageRow struct {
	Source             string
	Status             string
	Prompt, Completion int64
	Cost               int64
}

// usageRows reads the usage rows of the given request ids.
func (s *stack) usageRows(ids []string) map[string][]usageRow {
	s.t.Helper()
	rows, err := s.BillingDB.Query(context.Background(), `SELECT request_id, usage_source, status, prompt_tokens,
		completion_tokens, cost_micros FROM usage_records WHERE request_id = ANY($1)`, ids)
	if err != nil {
		s.t.Fatal(err)
	}
	defer rows.Close()
	out := map[string][]usageRow{}
	for rows.Next() {
		var id string
		var u usageRow
		if err := rows.Scan(&id, &u.Source, &u.Status, &u.Prompt, &u.Completion, &u.Cost); err != nil {
			s.t.Fatal(err)
		}
		out[id] = append(out[id], u)
	}
	if err := rows.Err(); err != nil {
		s.t.Fatal(err)
	}
	return out
}

// runAll runs n calls of f concurrently, at most conc at a time, and
// returns their results in order.
func runAll(n, conc int, f func(i int) streamReply) []streamReply {
	out := make([]streamReply, n)
	sem := make(chan struct{}, conc)
	var wg sync.WaitGroup
	for i := 0; i < n; i++ {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			out[i] = f(i)
		}()
	}
	wg.Wait()
	return out
}

// metricValue reads one sample of the gateway's /metrics: the first line
// starting with name and containing every one of labels.
func metricValue(gw, name string, labels ...string) (float64, bool) {
	resp, err := http.Get(gw + "/metrics")
	if err != nil {
		return 0, false
	}
	defer resp.Body.Close()
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 0, 64<<10), 1<<20)
next:
	for sc.Scan() {
		line := sc.Text()
		if !strings.HasPrefix(line, name+"{") && !strings.HasPrefix(line, name+" ") {
			continue
		}
		for _, l := range labels {
			if !strings.Contains(line, l) {
				continue next
			}
		}
		var v float64
		if _, err := fmt.Sscan(line[strings.LastIndexByte(line, ' ')+1:], &v); err == nil {
			return v, true
		}
	}
	return 0, false
}
