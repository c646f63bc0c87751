package main

import (
	"bufio"
	"net/http"
	"strings"
	"testing"

	"github.com/lurus-switch/lurus-switch/gateway-service/internal/mockupstream"
	"github.com/lurus-switch/lurus-switch/lurus-common/internalapi"
)

const streamBody = `{"model":"gpt-4o","stream":true,"messages":[{"role":"user","content":"one two"}]}`

func TestFirstByteTimeoutFailsOver(t *testing.T) {
	slow, fast := newUpstream(t), newUpstream(t)
	ps := provider("prv_slow", internalapi.TypeOpenAI, slow, 10, 1, "gpt-4o")
	if err := slow.mock.SetScenario("s", mockupstream.Settings{Hang: ptr(mockupstream.HangFirstByte)}); err != nil {
		t.Fatal(err)
	}
	ps.Headers = map[string]string{"X-Mock-Scenario": "s"}
	ps.Timeouts.FirstByteMs = 200
	h := startGateway(t, []internalapi.Provider{ps, provider("prv_fast", internalapi.TypeOpenAI, fast, 0, 1, "gpt-4o")})
	resp, body := h.do(http.MethodPost, "/v1/chat/completions", chatBody, nil)
	if resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	_, logs := h.eventsFor(resp.Header.Get("X-Request-Id"), true)
	if logs[0].Attempts != 2 || logs[0].ProviderID != "prv_fast" {
		t.Errorf("attempts %d provider %s", logs[0].Attempts, logs[0].ProviderID)
	}
	// Alone, the hanging provider gives 504 in the caller's format.
	h.setSnapshot(ps)
	resp, body = h.do(http.MethodPost, "/v1/chat/completions", chatBody, nil)
	if resp.StatusCode != http.StatusGatewayTimeout || !strings.Contains(string(body), "UPSTREAM_TIMEOUT") {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
}

func TestIdleTimeoutEndsStreamWithErrorEvent(t *testing.T) {
	up := newUpstream(t)
	p := provider("prv_idle", internalapi.TypeAnthropic, up, 0, 1, "claude-x")
	if err := up.mock.SetScenario("s", mockupstream.Settings{Hang: ptr(mockupstream.HangMid)}); err != nil {
		t.Fatal(err)
	}
	p.Headers = map[string]string{"X-Mock-Scenario": "s"}
	p.Timeouts.IdleMs = 200
	h := startGateway(t, []internalapi.Provider{p})
	resp, body := h.do(http.MethodPost, "/v1/messages",
		`{"model":"claude-x","max_tokens":50,"stream":true,"messages":[{"role":"user","content":"a b c"}]}`, nil)
	if resp.StatusCode != 200 {
		t.Fatalf("%d %s", resp.StatusCode, body)
	}
	s := string(body)
	if !strings.Contains(s, "event: message_start") || !strings.HasSuffix(s, "\n\n") ||
		!strings.Contains(s, "event: error\ndata: {\"type\":\"error\"") {
		t.Fatalf("stream %q", s)
	}
	u, logs := h.eventsFor(resp.Header.Get("X-Request-Id"), true)
	if u.Status != "upstream_error" || logs[0].ErrorReason != "UPSTREAM_TIMEOUT" {
		t.Errorf("status %s reason %s", u.Status, logs[0].ErrorReason)
	}
}

func TestClientGoneMidStreamStillBillsRealUsage(t *testing.T) {
	up := newUpstream(t)
	p := provider("prv_oa", internalapi.TypeOpenAI, up, 0, 1, "gpt-4o")
	if err := up.mock.SetScenario("s", mockupstream.Settings{Chunks: ptr(30), GapMs: ptr(20)}); err != nil {
		t.Fatal(err)
	}
	p.Headers = map[string]string{"X-Mock-Scenario": "s"}
	h := startGateway(t, []internalapi.Provider{p})
	req, _ := http.NewRequest(http.MethodPost, h.url+"/v1/chat/completions", strings.NewReader(streamBody))
	req.Header.Set("Authorization", "Bearer "+h.key)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	id := resp.Header.Get("X-Request-Id")
	line, err := bufio.NewReader(resp.Body).ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "data: ") {
		t.Fatalf("first line %q %v", line, err)
	}
	resp.Body.Close() // the client goes away after the first event
	u, _ := h.eventsFor(id, true)
	if u.Status != "client_cancelled" || u.UsageSource != "upstream" || u.CompletionTokens != 30 {
		t.Errorf("usage after the client left: %+v (want the upstream's full count)", u)
	}
}
