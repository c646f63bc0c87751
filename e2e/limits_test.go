package e2e

import (
	"bufio"
	"context"
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
