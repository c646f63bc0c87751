package main

import (
	"bytes"
	"io"
	"net/http"
	"testing"

	"github.com/lurus-switch/lurus-switch/lurus-common/internalapi"
)

// BenchmarkChatThroughGateway measures one non-streaming chat through the
// in-process gateway (auth cached, admission in the real Redis, events to
// the real NATS). Profile it with -cpuprofile; compare against the
// direct call in BenchmarkChatDirect, run in the same process.
func BenchmarkChatThroughGateway(b *testing.B) {
	u := newUpstream(b)
	h := startGateway(b, []internalapi.Provider{provider("prv_oa", internalapi.TypeOpenAI, u, 0, 1, "gpt-4o")})
	benchPost(b, h.url+"/v1/chat/completions", "Bearer "+h.key)
}

// BenchmarkChatDirect is the baseline: the same call to the mock.
func BenchmarkChatDirect(b *testing.B) {
	u := newUpstream(b)
	benchPost(b, u.url+"/v1/chat/completions", "Bearer sk-up")
}

func benchPost(b *testing.B, url, auth string) {
	body := []byte(`{"model":"gpt-4o","max_tokens":32,"messages":[{"role":"user","content":"say something short"}]}`)
	c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}}
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(body))
			req.Header.Set("Authorization", auth)
			req.Header.Set("Content-Type", "application/json")
			resp, err := c.Do(req)
			if err != nil {
				b.Error(err)
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			if resp.StatusCode != 200 {
				b.Errorf("status %d", resp.StatusCode)
				return
			}
		}
	})
}
