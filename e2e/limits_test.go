package e2e

import (
	"bufio"
	"context"
	"io"
	"net/http"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/anthropics/anthropic-sdk-go"
	aoption "github.com/anthropics/anthropic-sdk-go/option"
	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/tidwall/gjson"
	"google.golang.org/genai"

	"github.com/lurus-switch/lurus-switch/lurus-common/ratelimit"
)

// secondGateway starts another gateway process on the stack's Redis
// prefix, NATS namespace, billing and provider-service: a second replica.
func (s *stack) secondGateway() string {
	s.t.Helper()
	addr := freeAddr(s.t)
	env := append(append([]string{}, s.gwEnv...), "LURUS_GATEWAY_ADDR="+addr,
		"LURUS_GATEWAY_OUTBOX_DIR="+filepath.Join(s.t.TempDir(), "outbox"))
	s.run(s.t.TempDir(), "gateway-service", "gateway-service", env, "serve")
	url := "http://" + addr
	s.waitReady(url + "/ready")
	return url
}

// keyWithLimits creates a key of tn's user with the given limits.
func (s *stack) keyWithLimits(tn tenant, name string, l ratelimit.Limits) string {
	s.t.Helper()
	var key struct {
		Key string `json:"key"`
	}
	s.admin(http.MethodPost, s.billing+"/api/v1/billing/users/"+tn.userID+"/keys", map[string]any{"name": name,
		"rpm_limit": l.RPM, "tpm_limit": l.TPM, "concurrency_limit": l.Concurrency}, &key, http.StatusCreated)
	return key.Key
}

// waitWindow waits for the next minute window when less than need is
// left of the current one, so a test's requests share one window.
func waitWindow(need time.Duration) {
	if left := ratelimit.UntilReset(time.Now()); left < need {
		time.Sleep(left + 100*time.Millisecond)
	}
}

// call is one relay request and its answer.
type call struct {
	status int
	header http.Header
	body   string
}

// chatCall sends an OpenAI chat request with key to gateway url and reads
// the whole answer (a stream to its end).
func chatCall(url, key, body string) call {
	req, _ := http.NewRequest(http.MethodPost, url+"/v1/chat/completions", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return call{body: err.Error()}
	}
	defer resp.Body.Close()
	var b strings.Builder
	sc := bufio.NewScanner(resp.Body)
	for sc.Scan() {
		b.WriteString(sc.Text())
		b.WriteByte('\n')
	}
	return call{status: resp.StatusCode, header: resp.Header, body: b.String()}
}

// startStream opens a stream and returns once its headers arrived; done
// is closed when it has been read to its end.
func startStream(t *testing.T, url, key, body string) (status int, done <-chan struct{}) {
	t.Helper()
	req, _ := http.NewRequest(http.MethodPost, url+"/v1/chat/completions", strings.NewReader(body))
	req.Header.Set("Authorization", "Bearer "+key)
	req.Header.Set("Content-Type", "application/json")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	ch := make(chan struct{})
	go func() {
		defer close(ch)
		defer resp.Body.Close()
		sc := bufio.NewScanner(resp.Body)
		for sc.Scan() {
		}
	}()
	return resp.StatusCode, ch
}

const (
	// Every mock stream sends 10 chunks 100 ms apart: about a second.
	slowChunks = "10"
	slowGapMs  = "100"
	chatBody   = `{"model":"gpt-4o-mini","max_tokens":100,"messages":[{"role":"user","content":"hello there"}]}`
	streamBody = `{"model":"gpt-4o-mini","stream":true,"max_tokens":100,"messages":[{"role":"user","content":"hello there"}]}`
)

// TestLimitsAcrossGateways runs two gateway processes on one Redis and
// shows that the limits hold in total across both.
func TestLimitsAcrossGateways(t *testing.T) {
	s := startStack(t)
	s.providerHeaders = map[string]string{"X-Mock-Chunks": slowChunks, "X-Mock-Gap-Ms": slowGapMs}
	tn := s.setup()
	gws := []string{s.gateway, s.secondGateway()}

	// An RPM limit of L admits exactly L requests of one window in total,
	// whichever replica serves them.
	t.Run("rpm", func(t *testing.T) {
		const limit, sent = 7, 24
		key := s.keyWithLimits(tn, "rpm", ratelimit.Limits{RPM: limit})
		waitWindow(20 * time.Second)
		calls := make([]call, sent)
		var wg sync.WaitGroup
		for i := range calls {
			wg.Add(1)
			go func() { defer wg.Done(); calls[i] = chatCall(gws[i%2], key, chatBody) }()
		}
		wg.Wait()
		ok, refused := 0, 0
		for _, c := range calls {
			switch c.status {
			case http.StatusOK:
				ok++
			case http.StatusTooManyRequests:
				refused++
				if gjson.Get(c.body, "error.code").Str != "RATE_LIMITED_RPM" || c.header.Get("Retry-After") == "" ||
					c.header.Get("x-ratelimit-remaining-requests") != "0" || c.header.Get("x-ratelimit-limit-requests") != "7" {
					t.Errorf("refusal %v %s", c.header, c.body)
				}
			default:
				t.Errorf("status %d: %s", c.status, c.body)
			}
		}
		if ok != limit || refused != sent-limit {
			t.Fatalf("%d admitted, %d refused across two gateways; want exactly %d admitted", ok, refused, limit)
		}
	})

	// A concurrency limit of C never lets more than C streams run: of 6
	// streams opened at once on both replicas (each ~1 s), C run.
	t.Run("concurrency", func(t *testing.T) {
		const limit, sent = 2, 6
		key := s.keyWithLimits(tn, "concurrency", ratelimit.Limits{Concurrency: limit})
		calls := make([]call, sent)
		var wg sync.WaitGroup
		for i := range calls {
			wg.Add(1)
			go func() {
				defer wg.Done()
				calls[i] = chatCall(gws[i%2], key, streamBody)
			}()
		}
		wg.Wait()
		ok := 0
		for _, c := range calls {
			switch {
			case c.status == http.StatusOK && strings.Contains(c.body, "[DONE]"):
				ok++
			case c.status == http.StatusTooManyRequests && gjson.Get(c.body, "error.code").Str == "CONCURRENCY_LIMITED" &&
				c.header.Get("Retry-After") == "1":
			default:
				t.Errorf("status %d %v: %s", c.status, c.header, c.body)
			}
		}
		if ok != limit {
			t.Fatalf("%d streams ran at once across two gateways, want %d", ok, limit)
		}
		// The slots come back when the streams end.
		s.eventually("a slot is free again", func() bool { return chatCall(gws[1], key, chatBody).status == http.StatusOK })
	})

	// A TPM limit counts each stream's estimate (prompt + max_tokens) while
	// it runs: with two streams in flight a third is refused; once they
	// end, their real usage (far below the estimate) is what stays counted.
	t.Run("tpm", func(t *testing.T) {
		key := s.keyWithLimits(tn, "tpm", ratelimit.Limits{TPM: 300})
		waitWindow(20 * time.Second)
		st1, done1 := startStream(t, gws[0], key, streamBody)
		st2, done2 := startStream(t, gws[1], key, streamBody)
		if st1 != http.StatusOK || st2 != http.StatusOK {
			t.Fatalf("streams: %d %d", st1, st2)
		}
		c := chatCall(gws[0], key, chatBody)
		if c.status != http.StatusTooManyRequests || gjson.Get(c.body, "error.code").Str != "RATE_LIMITED_TPM" ||
			c.header.Get("x-ratelimit-limit-tokens") != "300" {
			t.Fatalf("third request with two streams in flight: %d %v %s", c.status, c.header, c.body)
		}
		<-done1
		<-done2
		s.eventually("the streams' unused estimate is given back", func() bool {
			c := chatCall(gws[1], key, chatBody)
			return c.status == http.StatusOK
		})
	})

	// A saturated upstream key is skipped like an open breaker, whichever
	// replica serves the request: an OpenAI provider with two keys of RPM 3
	// serves 6 requests of a window, 3 on each key, and the 7th is refused
	// without reaching upstream.
	t.Run("upstream key", func(t *testing.T) {
		s.admin(http.MethodPost, s.provider+"/api/v1/providers", map[string]any{"name": "mock-tiered", "type": "openai",
			"base_url": s.mock + "/v1", "models": []string{"tiered-model"}, "enabled": true, "weight": 1,
			"allow_private_network": true, "priority": 10,
			"keys": []map[string]any{{"key": "sk-tier-a", "rpm_limit": 3}, {"key": "sk-tier-b", "rpm_limit": 3}}},
			nil, http.StatusCreated)
		for _, gw := range gws {
			s.eventually("gateway sees the tiered provider", func() bool {
				status, b := getWithKey(gw+"/v1/models", tn.key)
				return status == http.StatusOK && strings.Contains(string(b), "tiered-model")
			})
		}
		waitWindow(20 * time.Second)
		s.admin(http.MethodDelete, s.mock+"/__requests", nil, nil, http.StatusNoContent)
		body := `{"model":"tiered-model","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}`
		for i := 0; i < 6; i++ {
			if c := chatCall(gws[i%2], tn.key, body); c.status != http.StatusOK {
				t.Fatalf("request %d: %d %s", i, c.status, c.body)
			}
		}
		c := chatCall(gws[0], tn.key, body)
		if c.status != http.StatusTooManyRequests || gjson.Get(c.body, "error.code").Str != "RATE_LIMITED_RPM" ||
			c.header.Get("Retry-After") == "" || strings.Contains(c.body, "mock-tiered") {
			t.Fatalf("7th request with both upstream keys saturated: %d %v %s", c.status, c.header, c.body)
		}
		var page struct {
			Items []struct {
				Headers http.Header `json:"headers"`
			} `json:"items"`
		}
		s.admin(http.MethodGet, s.mock+"/__requests?limit=50", nil, &page, http.StatusOK)
		perKey := map[string]int{}
		for _, it := range page.Items {
			perKey[it.Headers.Get("Authorization")]++
		}
		if perKey["Bearer sk-tier-a"] != 3 || perKey["Bearer sk-tier-b"] != 3 || len(page.Items) != 6 {
			t.Fatalf("upstream saw %v in %d requests; want 3 per key, 6 in all", perKey, len(page.Items))
		}
	})

	// A refusal reads as each SDK expects, from either replica: 429 with
	// Retry-After and the stable reason in the caller's own error shape.
	t.Run("formats", func(t *testing.T) {
		key := s.keyWithLimits(tn, "formats", ratelimit.Limits{RPM: 1})
		waitWindow(20 * time.Second)
		if c := chatCall(gws[0], key, chatBody); c.status != http.StatusOK {
			t.Fatalf("first request: %d %s", c.status, c.body)
		}
		c := chatCall(gws[1], key, chatBody)
		if c.status != http.StatusTooManyRequests || gjson.Get(c.body, "error.type").Str != "rate_limit_exceeded" ||
			gjson.Get(c.body, "error.code").Str != "RATE_LIMITED_RPM" || c.header.Get("Retry-After") == "" {
			t.Errorf("openai: %d %v %s", c.status, c.header, c.body)
		}
		post := func(url, path string, hdr map[string]string, body string) call {
			req, _ := http.NewRequest(http.MethodPost, url+path, strings.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			for k, v := range hdr {
				req.Header.Set(k, v)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				return call{body: err.Error()}
			}
			defer resp.Body.Close()
			b, _ := io.ReadAll(resp.Body)
			return call{status: resp.StatusCode, header: resp.Header, body: string(b)}
		}
		c = post(gws[0], "/v1/messages", map[string]string{"x-api-key": key, "anthropic-version": "2023-06-01"},
			`{"model":"claude-sonnet-4-5","max_tokens":10,"messages":[{"role":"user","content":"hi"}]}`)
		if c.status != http.StatusTooManyRequests || gjson.Get(c.body, "type").Str != "error" ||
			gjson.Get(c.body, "error.type").Str != "rate_limit_error" || gjson.Get(c.body, "error.reason").Str != "RATE_LIMITED_RPM" ||
			c.header.Get("Retry-After") == "" {
			t.Errorf("anthropic: %d %v %s", c.status, c.header, c.body)
		}
		c = post(gws[1], "/v1beta/models/gemini-2.5-flash:generateContent", map[string]string{"x-goog-api-key": key},
			`{"contents":[{"parts":[{"text":"hi"}]}]}`)
		if c.status != http.StatusTooManyRequests || gjson.Get(c.body, "error.status").Str != "RESOURCE_EXHAUSTED" ||
			gjson.Get(c.body, "error.details.0.reason").Str != "RATE_LIMITED_RPM" || c.header.Get("Retry-After") == "" {
			t.Errorf("gemini: %d %v %s", c.status, c.header, c.body)
		}
	})

	// The official SDKs' own retries succeed once the limit has room: a
	// key with concurrency 1 has a stream in flight on the other replica;
	// the SDK's first attempt gets 429 with Retry-After, its retry passes.
	t.Run("sdk retries", func(t *testing.T) {
		key := s.keyWithLimits(tn, "sdk", ratelimit.Limits{Concurrency: 1})
		ctx := context.Background()
		var refused atomic.Int32
		hc := &http.Client{Transport: countingTransport{next: http.DefaultTransport, refused: &refused}}
		busy := func() {
			t.Helper()
			st, _ := startStream(t, gws[1], key, streamBody)
			if st != http.StatusOK {
				t.Fatalf("stream: %d", st)
			}
			refused.Store(0)
		}

		busy()
		oa := openai.NewClient(option.WithBaseURL(gws[0]+"/v1/"), option.WithAPIKey(key), option.WithHTTPClient(hc))
		if _, err := oa.Chat.Completions.New(ctx, openai.ChatCompletionNewParams{Model: "gpt-4o-mini",
			Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")}}); err != nil {
			t.Fatalf("openai-go: %v", err)
		}
		if refused.Load() == 0 {
			t.Error("openai-go: no attempt was refused; the test proves nothing")
		}

		busy()
		an := anthropic.NewClient(aoption.WithoutEnvironmentDefaults(), aoption.WithBaseURL(gws[0]),
			aoption.WithAPIKey(key), aoption.WithHTTPClient(hc))
		if _, err := an.Messages.New(ctx, anthropic.MessageNewParams{Model: "claude-sonnet-4-5", MaxTokens: 50,
			Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock("hi"))}}); err != nil {
			t.Fatalf("anthropic-sdk-go: %v", err)
		}
		if refused.Load() == 0 {
			t.Error("anthropic-sdk-go: no attempt was refused")
		}

		// genai does not retry unless told to: HTTPRetryOptions turns on its
		// own backoff (1 s, doubling) for 429.
		busy()
		attempts, delay := int32(5), 1.0
		ge, err := genai.NewClient(ctx, &genai.ClientConfig{APIKey: key, Backend: genai.BackendGeminiAPI, HTTPClient: hc,
			HTTPOptions: genai.HTTPOptions{BaseURL: gws[0], RetryOptions: &genai.HTTPRetryOptions{Attempts: &attempts, InitialDelay: &delay}}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ge.Models.GenerateContent(ctx, "gemini-2.5-flash", genai.Text("hi"), nil); err != nil {
			t.Fatalf("genai: %v", err)
		}
		if refused.Load() == 0 {
			t.Error("genai: no attempt was refused")
		}
	})
}

// countingTransport counts the 429 answers an SDK saw and checks each
// carries Retry-After.
type countingTransport struct {
	next    http.RoundTripper
	refused *atomic.Int32
}

func (c countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	resp, err := c.next.RoundTrip(r)
	if err == nil && resp.StatusCode == http.StatusTooManyRequests {
		if _, perr := strconv.Atoi(resp.Header.Get("Retry-After")); perr == nil {
			c.refused.Add(1)
		}
	}
	return resp, err
}
