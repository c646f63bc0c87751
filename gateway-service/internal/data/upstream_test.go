package data

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/lurus-switch/lurus-switch/gateway-service/internal/biz"
	"github.com/lurus-switch/lurus-switch/lurus-common/netguard"
)

func testProvider(url string, allowPrivate bool, idle time.Duration) *biz.Provider {
	return &biz.Provider{ID: "prv_t", BaseURL: url, AllowPrivateNetwork: allowPrivate,
		Timeouts: biz.Timeouts{Connect: time.Second, FirstByte: 2 * time.Second, Idle: idle, Total: time.Minute}}
}

func call(u *Upstream, p *biz.Provider) (biz.UpstreamResponse, error) {
	return u.Do(context.Background(), &biz.UpstreamRequest{Provider: p, Method: http.MethodPost,
		URL: p.BaseURL + "/v1/x", Timeouts: p.Timeouts})
}

func TestDialGuardRefusesPrivateAddresses(t *testing.T) {
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("ok")) }))
	defer s.Close()
	u := NewUpstream(UpstreamConfig{MaxConnsPerHost: 4})
	_, err := call(u, testProvider(s.URL, false, time.Second))
	if !errors.Is(err, netguard.ErrPrivate) || !errors.Is(err, biz.ErrUpstreamConnect) {
		t.Fatalf("loopback upstream without allow_private_network: err %v", err)
	}
	resp, err := call(u, testProvider(s.URL, true, time.Second))
	if err != nil {
		t.Fatalf("allowed provider: %v", err)
	}
	b, _ := io.ReadAll(resp.Body())
	resp.Close()
	if string(b) != "ok" {
		t.Fatalf("body %q", b)
	}
}

func TestIdleTimeoutIsPerReadNotPerResponse(t *testing.T) {
	// Chunks 100 ms apart for 600 ms: longer than the idle timeout in
	// total, shorter between chunks, so it must succeed; a stall of 1 s
	// must fail with ErrUpstreamTimeout.
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		rc := http.NewResponseController(w)
		for i := 0; i < 6; i++ {
			_, _ = w.Write([]byte("x"))
			_ = rc.Flush()
			time.Sleep(100 * time.Millisecond)
		}
		if r.URL.Query().Get("stall") != "" {
			time.Sleep(time.Second)
		}
	}))
	defer s.Close()
	u := NewUpstream(UpstreamConfig{MaxConnsPerHost: 4})
	p := testProvider(s.URL, true, 300*time.Millisecond)
	resp, err := call(u, p)
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body())
	resp.Close()
	if err != nil || string(b) != "xxxxxx" {
		t.Fatalf("slow but steady stream: %q %v", b, err)
	}
	resp, err = u.Do(context.Background(), &biz.UpstreamRequest{Provider: p, Method: http.MethodPost,
		URL: s.URL + "/v1/x?stall=1", Timeouts: p.Timeouts})
	if err != nil {
		t.Fatal(err)
	}
	_, err = io.ReadAll(resp.Body())
	resp.Close()
	if !errors.Is(err, biz.ErrUpstreamTimeout) {
		t.Fatalf("stalled stream: %v, want ErrUpstreamTimeout", err)
	}
}

// When a provider's settings change, its client is rebuilt and the old
// client's idle connections are closed, not left open until they idle out.
func TestReplacedProviderClosesItsOldConnections(t *testing.T) {
	closed := make(chan struct{}, 8)
	s := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("ok")) }))
	s.Config.ConnState = func(_ net.Conn, st http.ConnState) {
		if st == http.StateClosed {
			closed <- struct{}{}
		}
	}
	s.Start()
	defer s.Close()
	u := NewUpstream(UpstreamConfig{MaxConnsPerHost: 4})
	get := func(p *biz.Provider) {
		t.Helper()
		resp, err := call(u, p)
		if err != nil {
			t.Fatal(err)
		}
		_, _ = io.ReadAll(resp.Body())
		resp.Close()
	}
	get(testProvider(s.URL, true, time.Minute)) // leaves one idle keep-alive connection
	select {
	case <-closed:
		t.Fatal("the first connection closed before the provider changed")
	default:
	}
	get(testProvider(s.URL, true, 2*time.Minute)) // new settings: a new client
	select {
	case <-closed:
	case <-time.After(30 * time.Second): // far below the 90 s idle expiry; not a timing assertion
		t.Fatal("the replaced client's idle connection was never closed")
	}
}
