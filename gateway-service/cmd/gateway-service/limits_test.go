package main

import (
	"bufio"
	"net/http"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/tidwall/gjson"

	"github.com/lurus-switch/lurus-switch/gateway-service/internal/mockupstream"
	"github.com/lurus-switch/lurus-switch/lurus-common/apikey"
	"github.com/lurus-switch/lurus-switch/lurus-common/internalapi"
	"github.com/lurus-switch/lurus-switch/lurus-common/ratelimit"
	"github.com/lurus-switch/lurus-switch/lurus-common/ratelimit/redisstore"
)

// clearOfWindowEnd waits for the next minute window when less than need
// is left of the current one, so a test's requests share one window.
func clearOfWindowEnd(t testing.TB, need time.Duration) {
	t.Helper()
	if left := ratelimit.UntilReset(time.Now()); left < need {
		time.Sleep(left + 50*time.Millisecond)
	}
}

// setLimits gives the harness key the limits in force that billing would
// answer (before the key's first request: the key cache keeps answers).
func (h *harness) setLimits(key, user ratelimit.Limits) {
	h.billing.mu.Lock()
	defer h.billing.mu.Unlock()
	k := h.billing.keys[h.key]
	k.KeyLimits, k.UserLimits = key, user
	h.billing.keys[h.key] = k
}

const (
	limOpenAI    = `{"model":"gpt-4o","max_tokens":20,"messages":[{"role":"user","content":"hi"}]}`
	limAnthropic = `{"model":"claude-sonnet-4-5","max_tokens":20,"messages":[{"role":"user","content":"hi"}]}`
	limGemini    = `{"contents":[{"role":"user","parts":[{"text":"hi"}]}],"generationConfig":{"maxOutputTokens":20}}`
	limGeminiURL = "/v1beta/models/gemini-2.5-flash:generateContent"
)

func limitProviders(t *testing.T) []internalapi.Provider {
	oa, an, ge := newUpstream(t), newUpstream(t), newUpstream(t)
	return []internalapi.Provider{
		provider("prv_oa", internalapi.TypeOpenAI, oa, 0, 1, "gpt-4o"),
		provider("prv_an", internalapi.TypeAnthropic, an, 0, 1, "claude-*"),
		provider("prv_ge", internalapi.TypeGemini, ge, 0, 1, "gemini-2.5-flash"),
	}
}

// checkRefusal asserts a 429 of reason in the caller's format with
// Retry-After (whole seconds within the window) and retry-after-ms.
func checkRefusal(t *testing.T, format string, resp *http.Response, body []byte, reason string, maxWait int) {
	t.Helper()
	if resp.StatusCode != http.StatusTooManyRequests {
		t.Fatalf("%s: status %d, want 429: %s", format, resp.StatusCode, body)
	}
	switch format {
	case "openai":
		if gjson.GetBytes(body, "error.type").Str != "rate_limit_exceeded" || gjson.GetBytes(body, "error.code").Str != reason {
			t.Errorf("openai body %s, want type rate_limit_exceeded code %s", body, reason)
		}
	case "anthropic":
		if gjson.GetBytes(body, "type").Str != "error" || gjson.GetBytes(body, "error.type").Str != "rate_limit_error" ||
			gjson.GetBytes(body, "error.reason").Str != reason {
			t.Errorf("anthropic body %s, want rate_limit_error reason %s", body, reason)
		}
	case "gemini":
		if gjson.GetBytes(body, "error.code").Int() != 429 || gjson.GetBytes(body, "error.status").Str != "RESOURCE_EXHAUSTED" ||
			gjson.GetBytes(body, "error.details.0.reason").Str != reason {
			t.Errorf("gemini body %s, want RESOURCE_EXHAUSTED reason %s", body, reason)
		}
	}
	ra, err := strconv.Atoi(resp.Header.Get("Retry-After"))
	if err != nil || ra < 1 || ra > maxWait {
		t.Errorf("%s: Retry-After %q, want 1..%d", format, resp.Header.Get("Retry-After"), maxWait)
	}
	ms, err := strconv.Atoi(resp.Header.Get("retry-after-ms"))
	if err != nil || ms < 1 || ms > ra*1000 {
		t.Errorf("%s: retry-after-ms %q with Retry-After %d", format, resp.Header.Get("retry-after-ms"), ra)
	}
}

// checkWindowHeaders asserts the x-ratelimit-* trio of kind.
func checkWindowHeaders(t *testing.T, resp *http.Response, kind string, limit, remaining int64) {
	t.Helper()
	if got := resp.Header.Get("x-ratelimit-limit-" + kind); got != strconv.FormatInt(limit, 10) {
		t.Errorf("x-ratelimit-limit-%s = %q, want %d", kind, got, limit)
	}
	if got := resp.Header.Get("x-ratelimit-remaining-" + kind); got != strconv.FormatInt(remaining, 10) {
		t.Errorf("x-ratelimit-remaining-%s = %q, want %d", kind, got, remaining)
	}
	d, err := time.ParseDuration(resp.Header.Get("x-ratelimit-reset-" + kind))
	if err != nil || d <= 0 || d > time.Minute {
		t.Errorf("x-ratelimit-reset-%s = %q, want a duration in (0, 1m]", kind, resp.Header.Get("x-ratelimit-reset-"+kind))
	}
}

// TestLimitsRPMInEveryFormat: a user RPM of 2 admits two requests, whose
// answers carry the x-ratelimit-*-requests headers (and no -tokens ones,
// no TPM being set); the next request is refused in each caller's format.
func TestLimitsRPMInEveryFormat(t *testing.T) {
	h := startGateway(t, limitProviders(t))
	h.setLimits(ratelimit.Limits{}, ratelimit.Limits{RPM: 2})
	clearOfWindowEnd(t, 10*time.Second)
	for i := int64(1); i <= 2; i++ {
		resp, body := h.do("POST", "/v1/chat/completions", limOpenAI, nil)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("request %d: %d %s", i, resp.StatusCode, body)
		}
		checkWindowHeaders(t, resp, "requests", 2, 2-i)
		if v := resp.Header.Get("x-ratelimit-limit-tokens"); v != "" {
			t.Errorf("x-ratelimit-limit-tokens %q without a TPM limit", v)
		}
	}
	for _, c := range []struct{ format, path, body string }{
		{"openai", "/v1/chat/completions", limOpenAI},
		{"anthropic", "/v1/messages", limAnthropic},
		{"gemini", limGeminiURL, limGemini},
	} {
		resp, body := h.do("POST", c.path, c.body, nil)
		checkRefusal(t, c.format, resp, body, "RATE_LIMITED_RPM", 60)
		checkWindowHeaders(t, resp, "requests", 2, 0)
		if !strings.Contains(gjson.GetBytes(body, "error.message").Str, "2 requests per minute") {
			t.Errorf("%s message %s does not name the limit", c.format, body)
		}
	}
}

// TestLimitsTPMHeadersAndTooLarge: a TPM limit shows in the -tokens
// headers, counts the estimate (prompt + max_tokens), and a request whose
// estimate alone exceeds it is a 400 that no SDK retries.
func TestLimitsTPMHeadersAndTooLarge(t *testing.T) {
	h := startGateway(t, limitProviders(t))
	h.setLimits(ratelimit.Limits{TPM: 1000}, ratelimit.Limits{})
	clearOfWindowEnd(t, 10*time.Second)
	resp, body := h.do("POST", "/v1/messages", limAnthropic, nil)
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	rem, _ := strconv.ParseInt(resp.Header.Get("x-ratelimit-remaining-tokens"), 10, 64)
	if resp.Header.Get("x-ratelimit-limit-tokens") != "1000" || rem <= 1000-200 || rem > 1000-20 {
		t.Errorf("tokens headers %q/%q: want limit 1000, the estimate (20 output + the prompt) taken",
			resp.Header.Get("x-ratelimit-limit-tokens"), resp.Header.Get("x-ratelimit-remaining-tokens"))
	}
	big := strings.Replace(limOpenAI, `"max_tokens":20`, `"max_tokens":4000`, 1)
	resp, body = h.do("POST", "/v1/chat/completions", big, nil)
	if resp.StatusCode != http.StatusBadRequest || gjson.GetBytes(body, "error.code").Str != "REQUEST_EXCEEDS_TPM_LIMIT" {
		t.Fatalf("too large: %d %s", resp.StatusCode, body)
	}
	if resp.Header.Get("Retry-After") != "" {
		t.Errorf("a request that can never pass has Retry-After %q", resp.Header.Get("Retry-After"))
	}
}

// TestLimitsConcurrencyStream: with a key concurrency limit of 1, a
// request while a stream runs is refused with CONCURRENCY_LIMITED and
// Retry-After 1; once the stream ends its slot is free again.
func TestLimitsConcurrencyStream(t *testing.T) {
	oa := newUpstream(t)
	if err := oa.mock.SetScenario("slow", mockupstream.Settings{Chunks: ptr(10), GapMs: ptr(100)}); err != nil {
		t.Fatal(err)
	}
	ps := limitProviders(t)
	ps[0] = provider("prv_oa", internalapi.TypeOpenAI, oa, 0, 1, "gpt-4o")
	ps[0].Headers = map[string]string{"X-Mock-Scenario": "slow"}
	h := startGateway(t, ps)
	h.setLimits(ratelimit.Limits{Concurrency: 1}, ratelimit.Limits{})
	req, _ := http.NewRequest("POST", h.url+"/v1/chat/completions",
		strings.NewReader(`{"model":"gpt-4o","stream":true,"max_tokens":20,"messages":[{"role":"user","content":"hi"}]}`))
	req.Header.Set("Authorization", "Bearer "+h.key)
	req.Header.Set("Content-Type", "application/json")
	stream, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer stream.Body.Close()
	if stream.StatusCode != http.StatusOK {
		t.Fatalf("stream: %d", stream.StatusCode)
	}
	resp, body := h.do("POST", "/v1/messages", limAnthropic, nil)
	checkRefusal(t, "anthropic", resp, body, "CONCURRENCY_LIMITED", 1)
	sc := bufio.NewScanner(stream.Body)
	for sc.Scan() {
	}
	h.eventually(func() bool {
		resp, _ := h.do("POST", "/v1/messages", limAnthropic, nil)
		return resp.StatusCode == http.StatusOK
	})
}

// TestLimitsUpstreamKeys: upstream keys at their RPM are skipped like an
// open breaker — the provider's next key, then the next provider — and
// only when none has room is the request refused (429, naming no
// provider).
func TestLimitsUpstreamKeys(t *testing.T) {
	a, b := newUpstream(t), newUpstream(t)
	pa := provider("prv_a", internalapi.TypeOpenAI, a, 10, 1, "gpt-4o")
	pa.Keys = []internalapi.ProviderKey{{ID: "pk_a1", Key: "sk-a1", RPMLimit: 1}, {ID: "pk_a2", Key: "sk-a2", RPMLimit: 1}}
	pb := provider("prv_b", internalapi.TypeOpenAI, b, 0, 1, "gpt-4o")
	pb.Keys[0].RPMLimit = 1
	h := startGateway(t, []internalapi.Provider{pa, pb})
	clearOfWindowEnd(t, 10*time.Second)
	for i := 0; i < 3; i++ {
		resp, body := h.do("POST", "/v1/chat/completions", limOpenAI, nil)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("request %d: %d %s", i, resp.StatusCode, body)
		}
		if v := resp.Header.Get("x-ratelimit-limit-requests"); v != "" {
			t.Errorf("upstream key limits leak into the client's headers: %q", v)
		}
	}
	used := map[string]int{}
	for _, r := range a.mock.Requests(10) {
		used[r.Headers.Get("Authorization")]++
	}
	if used["Bearer sk-a1"] != 1 || used["Bearer sk-a2"] != 1 || len(b.mock.Requests(10)) != 1 {
		t.Fatalf("keys used %v, provider b %d requests; want each key once", used, len(b.mock.Requests(10)))
	}
	resp, body := h.do("POST", "/v1/chat/completions", limOpenAI, nil)
	checkRefusal(t, "openai", resp, body, "RATE_LIMITED_RPM", 60)
	msg := gjson.GetBytes(body, "error.message").Str
	if !strings.Contains(msg, "every upstream") || strings.Contains(msg, "prv_") {
		t.Errorf("message %q", msg)
	}
	if n := len(a.mock.Requests(10)) + len(b.mock.Requests(10)); n != 3 {
		t.Errorf("%d upstream requests, want 3 (the refusal sent none)", n)
	}
}

// beforeRun, when set, changes the wired gateway before it serves
// (startGateway calls it).
var beforeRun func(*App)

// TestLimitsRedisDown: when the limit store does not answer, a limited
// key is refused with 503 ADMISSION_UNAVAILABLE by default and admitted
// without limits under fail-open; an unlimited key never notices.
func TestLimitsRedisDown(t *testing.T) {
	for _, failOpen := range []bool{false, true} {
		beforeRun = func(a *App) {
			dead, err := redisstore.New(deadRedis(), "", redisstore.Options{})
			if err != nil {
				t.Fatal(err)
			}
			a.core.Limits, a.core.LimitCfg.FailOpen = dead, failOpen
		}
		h := startGateway(t, limitProviders(t))
		beforeRun = nil
		h.setLimits(ratelimit.Limits{RPM: 100}, ratelimit.Limits{})
		free := apikey.Generate()
		h.billing.mu.Lock()
		h.billing.keys[free] = internalapi.VerifyKeyResponse{KeyID: "key_free", UserID: "usr_free", UserActive: true}
		h.billing.mu.Unlock()
		resp, body := h.do("POST", "/v1/chat/completions", limOpenAI, nil)
		switch {
		case !failOpen && (resp.StatusCode != http.StatusServiceUnavailable || gjson.GetBytes(body, "error.code").Str != "ADMISSION_UNAVAILABLE"):
			t.Fatalf("fail closed: %d %s", resp.StatusCode, body)
		case failOpen && (resp.StatusCode != http.StatusOK || resp.Header.Get("x-ratelimit-limit-requests") != ""):
			t.Fatalf("fail open: %d %s %v", resp.StatusCode, body, resp.Header)
		}
		resp, body = h.do("POST", "/v1/chat/completions", limOpenAI, map[string]string{"Authorization": "Bearer " + free})
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("unlimited key: %d %s", resp.StatusCode, body)
		}
	}
}

// deadRedis is a client of a port nobody listens on.
func deadRedis() *redis.Client {
	return redis.NewClient(&redis.Options{Addr: "127.0.0.1:1", DialTimeout: 200 * time.Millisecond, MaxRetries: -1})
}
