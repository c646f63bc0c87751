package main

import (
	"context"
	"fmt"
	"net/http"
	"testing"

	"github.com/lurus-switch/lurus-switch/lurus-common/internalapi"
)

// BenchmarkSnapshot measures the snapshot route's three paths against
// GET /health through the same server (the baseline: HTTP, filters,
// logging, metrics, no dependency): a conditional request answered 304, a
// cache hit, and a rebuild from PostgreSQL (the cache entry is dropped
// before each request). 100 providers with 3 keys each.
//
//	go test -run '^$' -bench Snapshot -benchtime 2s ./cmd/provider-service
func BenchmarkSnapshot(b *testing.B) {
	h := newHarness(b)
	for i := range 100 {
		h.create(demo(fmt.Sprintf("bench-%03d", i), fmt.Sprintf("sk-bench-%03d-a-0123456789", i),
			fmt.Sprintf("sk-bench-%03d-b-0123456789", i), fmt.Sprintf("sk-bench-%03d-c-0123456789", i)))
	}
	v, err := h.App.Store.Version(context.Background())
	if err != nil {
		b.Fatal(err)
	}
	etag := fmt.Sprintf(`"%d"`, v)
	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4}}
	get := func(b *testing.B, path string, want int, headers ...string) {
		req, _ := http.NewRequest("GET", h.URL+path, nil)
		req.Header.Set("Authorization", "Bearer "+internalToken)
		for i := 0; i+1 < len(headers); i += 2 {
			req.Header.Set(headers[i], headers[i+1])
		}
		resp, err := client.Do(req)
		if err != nil {
			b.Fatal(err)
		}
		n, _ := resp.Body.Read(make([]byte, 64<<10))
		for n > 0 {
			n, _ = resp.Body.Read(make([]byte, 64<<10))
		}
		resp.Body.Close()
		if resp.StatusCode != want {
			b.Fatalf("%s: %d", path, resp.StatusCode)
		}
	}
	b.Run("health_baseline", func(b *testing.B) {
		for b.Loop() {
			get(b, "/health", 200)
		}
	})
	b.Run("not_modified", func(b *testing.B) {
		for b.Loop() {
			get(b, internalapi.RouteProviderSnapshot, 304, "If-None-Match", etag)
		}
	})
	b.Run("cache_hit", func(b *testing.B) {
		get(b, internalapi.RouteProviderSnapshot, 200)
		for b.Loop() {
			get(b, internalapi.RouteProviderSnapshot, 200)
		}
	})
	b.Run("rebuild", func(b *testing.B) {
		ctx := context.Background()
		for b.Loop() {
			b.StopTimer()
			h.RD.Client.Del(ctx, h.App.Cache.Key())
			b.StartTimer()
			get(b, internalapi.RouteProviderSnapshot, 200)
		}
	})
}
