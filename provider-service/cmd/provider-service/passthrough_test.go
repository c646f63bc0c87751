package main

import (
	"context"
	"testing"

	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/lurus-switch/lurus-switch/lurus-common/internalapi"
)

// TestPassthroughOnly follows the opt-out of translation through the admin
// API (create default, create, PATCH, PUT defaults), PostgreSQL and the
// gateway snapshot, both rebuilt and served from the Redis cache.
func TestPassthroughOnly(t *testing.T) {
	h := newHarness(t)
	open := h.create(demo("translatable", upstreamKey))
	if open.PassthroughOnly {
		t.Fatalf("passthrough_only defaults to true: %+v", open)
	}
	body := demo("own-family-only", upstreamKey)
	body["passthrough_only"] = true
	only := h.create(body)
	if !only.PassthroughOnly {
		t.Fatalf("created without the flag: %+v", only)
	}
	var got provider
	h.admin("GET", "/api/v1/providers/"+only.ID, nil).JSON(t, &got)
	if !got.PassthroughOnly {
		t.Fatal("GET lost passthrough_only")
	}

	snapshot := func() map[string]bool {
		t.Helper()
		r := h.do("GET", internalapi.RouteProviderSnapshot, internalToken, nil)
		var s internalapi.Snapshot
		r.JSON(t, &s)
		out := map[string]bool{}
		for _, p := range s.Providers {
			out[p.ID] = p.PassthroughOnly
		}
		return out
	}
	want := map[string]bool{open.ID: false, only.ID: true}
	hits := h.App.Metrics.SnapshotCache.WithLabelValues("hit")
	before := testutil.ToFloat64(hits)
	for i := range 2 { // the first read rebuilds from PostgreSQL, the second is the Redis copy
		if s := snapshot(); s[open.ID] != want[open.ID] || s[only.ID] != want[only.ID] || len(s) != 2 {
			t.Fatalf("snapshot read %d: %v", i, s)
		}
	}
	if testutil.ToFloat64(hits) != before+1 {
		t.Fatal("the second snapshot read did not come from Redis")
	}

	// PATCH changes the flag alone; PUT without it takes the create default.
	r := h.admin("PATCH", "/api/v1/providers/"+open.ID, map[string]any{"passthrough_only": true})
	r.JSON(t, &got)
	if r.Status != 200 || !got.PassthroughOnly || got.Weight != open.Weight {
		t.Fatalf("patch: %d %s", r.Status, r.Body)
	}
	if r := h.admin("PATCH", "/api/v1/providers/"+open.ID, map[string]any{"weight": 5}); r.Status != 200 {
		t.Fatalf("patch weight: %d %s", r.Status, r.Body)
	}
	h.admin("GET", "/api/v1/providers/"+open.ID, nil).JSON(t, &got)
	if !got.PassthroughOnly {
		t.Fatal("a PATCH of another field reset passthrough_only")
	}
	if s := snapshot(); !s[open.ID] {
		t.Fatalf("snapshot after patch: %v", s)
	}
	h.admin("PUT", "/api/v1/providers/"+open.ID, demo("translatable")).JSON(t, &got)
	if got.PassthroughOnly {
		t.Fatal("PUT without passthrough_only kept it")
	}
	if s := snapshot(); s[open.ID] || !s[only.ID] {
		t.Fatalf("snapshot after put: %v", s)
	}
	if r := h.admin("PATCH", "/api/v1/providers/"+open.ID, map[string]any{"passthrough_only": "yes"}); r.Status != 400 {
		t.Fatalf("a string flag: %d %s", r.Status, r.Body)
	}
	var stored bool
	if err := h.PG.Pool.QueryRow(context.Background(), `SELECT passthrough_only FROM providers WHERE id = $1`, only.ID).Scan(&stored); err != nil || !stored {
		t.Fatalf("column = %v, %v", stored, err)
	}
}
