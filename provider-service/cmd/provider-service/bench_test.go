package main

import (
	"context"
	"fmt"
	"net/http"
	"testing"
	"time"

	"github.com/lurus-switch/lurus-switch/lurus-common/internalapi"
)

// BenchmarkSnapshot measures the snapshot route's three paths against
// GET /health through the same server (the baseline: HTTP, filters,
// logging, metrics, no dependency): a conditional request answered 304, a
// cache hit, and a rebuild from PostgreSQL (the cache entry is dropped
// before that request). 100 providers with 3 keys each. It reports the
// baseline's latency and each path's ratio to it.
//
//	go test -run '^$' -bench Snapshot -benchtime 3s -count 3 ./cmd/provider-service
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
	// The four requests are interleaved in every iteration, so load from
	// elsewhere on the machine hits them alike; ratios to the baseline are
	// the figures to compare.
	ctx := context.Background()
	get(b, internalapi.RouteProviderSnapshot, 200) // warm the cache
	var health, notModified, hit, rebuild time.Duration
	timed := func(d *time.Duration, f func()) {
		start := time.Now()
		f()
		*d += time.Since(start)
	}
	n := 0
	for b.Loop() {
		timed(&health, func() { get(b, "/health", 200) })
		timed(&notModified, func() { get(b, internalapi.RouteProviderSnapshot, 304, "If-None-Match", etag) })
		timed(&hit, func() { get(b, internalapi.RouteProviderSnapshot, 200) })
		h.RD.Client.Del(ctx, h.App.Cache.Key())
		timed(&rebuild, func() { get(b, internalapi.RouteProviderSnapshot, 200) })
		n++
	}
	per := func(d time.Duration) float64 { return float64(d.Nanoseconds()) / float64(n) }
	b.ReportMetric(per(health)/1e3, "health_us")
	b.ReportMetric(per(notModified)/per(health), "not_modified/health")
	b.ReportMetric(per(hit)/per(health), "cache_hit/health")
	b.ReportMetric(per(rebuild)/per(health), "rebuild/health")
	b.ReportMetric(per(rebuild)/per(hit), "rebuild/cache_hit")
}
