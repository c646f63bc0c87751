package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/prometheus/client_golang/prometheus/testutil"

	"github.com/lurus-switch/lurus-switch/lurus-common/events"
	"github.com/lurus-switch/lurus-switch/lurus-common/internalapi"
)

const upstreamKey = "sk-upstream-SECRET-1234567890abcd"

func TestProviderCRUD(t *testing.T) {
	h := newHarness(t)
	p := h.create(map[string]any{
		"name": "openai-main", "type": "openai", "base_url": "http://127.0.0.1:18190/v1/",
		"keys":   []any{upstreamKey, map[string]any{"key": upstreamKey + "-2", "enabled": false}},
		"models": []string{"gpt-4o*", "gpt-4.1"}, "model_mapping": map[string]string{"gpt-4": "gpt-4o"},
		"priority": 10, "weight": 3, "timeouts": map[string]int64{"connect_ms": 2000, "total_ms": 60000},
		"headers": map[string]string{"openai-organization": "org-1"}, "allow_private_network": true,
	})
	if !strings.HasPrefix(p.ID, "prv_") || p.BaseURL != "http://127.0.0.1:18190/v1" || p.Weight != 3 || p.Priority != 10 || !p.Enabled {
		t.Fatalf("created %+v", p)
	}
	if len(p.Keys) != 2 || p.Keys[0].Masked != "sk-…abcd" || !p.Keys[0].Enabled || p.Keys[1].Enabled || !strings.HasPrefix(p.Keys[0].ID, "pk_") {
		t.Fatalf("keys %+v", p.Keys)
	}
	if p.Timeouts["connect_ms"] != 2000 || p.Headers["Openai-Organization"] != "org-1" || p.ModelMapping["gpt-4"] != "gpt-4o" {
		t.Fatalf("timeouts %v headers %v mapping %v", p.Timeouts, p.Headers, p.ModelMapping)
	}

	get := h.admin("GET", "/api/v1/providers/"+p.ID, nil)
	if get.Status != 200 || strings.Contains(string(get.Body), upstreamKey) {
		t.Fatalf("get: %d %s", get.Status, get.Body)
	}

	// PUT accepts the GET body back, edited: keys by id survive.
	var full map[string]any
	get.JSON(t, &full)
	full["name"] = "openai-renamed"
	full["keys"] = full["keys"].([]any)[:1]
	put := h.admin("PUT", "/api/v1/providers/"+p.ID, full)
	var afterPut provider
	put.JSON(t, &afterPut)
	if put.Status != 200 || afterPut.Name != "openai-renamed" || len(afterPut.Keys) != 1 || afterPut.Keys[0].ID != p.Keys[0].ID {
		t.Fatalf("put: %d %s", put.Status, put.Body)
	}

	// PUT without keys keeps them (they cannot be read back); [] removes them.
	delete(full, "keys")
	var kept provider
	h.admin("PUT", "/api/v1/providers/"+p.ID, full).JSON(t, &kept)
	if len(kept.Keys) != 1 || kept.Keys[0].ID != p.Keys[0].ID {
		t.Fatalf("put without keys: %+v", kept.Keys)
	}

	// PATCH changes only what it names.
	patch := h.admin("PATCH", "/api/v1/providers/"+p.ID, map[string]any{"weight": 9, "timeouts": map[string]any{"idle_ms": 1500}})
	var afterPatch provider
	patch.JSON(t, &afterPatch)
	if patch.Status != 200 || afterPatch.Weight != 9 || afterPatch.Timeouts["idle_ms"] != 1500 || afterPatch.Timeouts["connect_ms"] != 2000 || afterPatch.Name != "openai-renamed" {
		t.Fatalf("patch: %d %s", patch.Status, patch.Body)
	}

	add := h.admin("POST", "/api/v1/providers/"+p.ID+"/keys", map[string]any{"key": "sk-added-key-0000000000wxyz"})
	var key struct{ ID, Masked string }
	add.JSON(t, &key)
	if add.Status != 201 || key.Masked != "sk-…wxyz" {
		t.Fatalf("add key: %d %s", add.Status, add.Body)
	}
	if r := h.admin("DELETE", "/api/v1/providers/"+p.ID+"/keys/"+key.ID, nil); r.Status != 204 {
		t.Fatalf("delete key: %d %s", r.Status, r.Body)
	}
	if r := h.admin("DELETE", "/api/v1/providers/"+p.ID+"/keys/"+key.ID, nil); r.Status != 404 || r.Reason() != "KEY_NOT_FOUND" {
		t.Fatalf("delete key again: %d %s", r.Status, r.Body)
	}
	full["keys"] = []any{}
	var emptied provider
	h.admin("PUT", "/api/v1/providers/"+p.ID, full).JSON(t, &emptied)
	if len(emptied.Keys) != 0 || emptied.Weight != 3 { // PUT replaces everything: the patched weight is gone
		t.Fatalf("put with keys []: %+v", emptied)
	}
	if r := h.admin("DELETE", "/api/v1/providers/"+p.ID, nil); r.Status != 204 {
		t.Fatalf("delete: %d %s", r.Status, r.Body)
	}
	for _, path := range []string{"/api/v1/providers/" + p.ID, "/api/v1/providers/" + p.ID + "/health"} {
		if r := h.admin("GET", path, nil); r.Status != 404 || r.Reason() != "PROVIDER_NOT_FOUND" {
			t.Fatalf("%s after delete: %d %s", path, r.Status, r.Body)
		}
	}
	if r := h.admin("PATCH", "/api/v1/providers/prv_NOPE", map[string]any{"weight": 1}); r.Status != 404 {
		t.Fatalf("patch missing: %d", r.Status)
	}
	if strings.Contains(h.Logs.String(), upstreamKey) {
		t.Fatal("a log line holds the upstream key")
	}
}

func TestValidationErrors(t *testing.T) {
	h := newHarness(t)
	h.create(demo("taken"))
	versionBefore, _ := h.App.Store.Version(context.Background())
	with := func(k string, v any) map[string]any {
		b := demo("new-one", upstreamKey)
		if v == nil {
			delete(b, k)
		} else {
			b[k] = v
		}
		return b
	}
	tests := []struct {
		name   string
		body   any
		status int
		reason string
	}{
		{"unknown type", with("type", "cohere"), 400, "UNKNOWN_PROVIDER_TYPE"},
		{"bad url", with("base_url", "not a url"), 400, "INVALID_URL"},
		{"ftp url", with("base_url", "ftp://example.com/v1"), 400, "INVALID_URL"},
		{"private without flag", func() map[string]any {
			b := with("base_url", "http://10.0.0.8/v1")
			b["allow_private_network"] = false
			return b
		}(), 400, "PRIVATE_NETWORK_NOT_ALLOWED"},
		{"loopback without flag", func() map[string]any { b := demo("x"); b["allow_private_network"] = false; return b }(), 400, "PRIVATE_NETWORK_NOT_ALLOWED"},
		{"localhost name without flag", func() map[string]any {
			b := with("base_url", "http://localhost:8080/v1")
			b["allow_private_network"] = false
			return b
		}(), 400, "PRIVATE_NETWORK_NOT_ALLOWED"},
		{"negative weight", with("weight", -1), 400, "INVALID_WEIGHT"},
		{"empty models", with("models", []string{}), 400, "EMPTY_MODEL_LIST"},
		{"missing models", with("models", nil), 400, "EMPTY_MODEL_LIST"},
		{"malformed glob", with("models", []string{"gpt-[4o"}), 400, "INVALID_GLOB"},
		{"duplicate name", with("name", "TAKEN"), 409, "DUPLICATE_NAME"},
		{"malformed json", `{"name":`, 400, "MALFORMED_JSON"},
		{"empty body", "", 400, "MALFORMED_JSON"},
		{"unknown field", with("alow_private_network", true), 400, "INVALID_ARGUMENT"},
		{"wrong type", with("weight", "heavy"), 400, "INVALID_ARGUMENT"},
		{"credential header", with("headers", map[string]string{"Authorization": "Bearer x"}), 400, "INVALID_ARGUMENT"},
		{"key object with id on create", with("keys", []any{map[string]any{"id": "pk_x"}}), 400, "INVALID_ARGUMENT"},
		{"too large", `{"name":"` + strings.Repeat("a", 70<<10) + `"}`, 413, "BODY_TOO_LARGE"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := h.admin("POST", "/api/v1/providers", tt.body)
			if r.Status != tt.status || r.Reason() != tt.reason {
				t.Fatalf("got %d %s, want %d %s", r.Status, r.Body, tt.status, tt.reason)
			}
			var body map[string]map[string]string
			r.JSON(t, &body)
			if body["error"]["message"] == "" {
				t.Fatal("error without a message")
			}
		})
	}
	// A body of unknown length is cut by the reader cap instead.
	req, _ := http.NewRequest("POST", h.URL+"/api/v1/providers", io.MultiReader(strings.NewReader(`{"name":"`), strings.NewReader(strings.Repeat("a", 70<<10)), strings.NewReader(`"}`)))
	req.Header.Set("Authorization", "Bearer "+adminToken)
	if resp, err := http.DefaultClient.Do(req); err != nil || resp.StatusCode != http.StatusRequestEntityTooLarge || resp.ContentLength == 0 {
		t.Fatalf("chunked oversized body: %v %v", resp, err)
	} else {
		resp.Body.Close()
	}
	if v, _ := h.App.Store.Version(context.Background()); v != versionBefore {
		t.Fatalf("a refused request changed the version: %d → %d", versionBefore, v)
	}
	var list struct{ Items []provider }
	h.admin("GET", "/api/v1/providers", nil).JSON(t, &list)
	if len(list.Items) != 1 {
		t.Fatalf("refused requests wrote providers: %d", len(list.Items))
	}
	// The same rules hold for PUT and PATCH.
	id := list.Items[0].ID
	if r := h.admin("PATCH", "/api/v1/providers/"+id, map[string]any{"weight": -3}); r.Reason() != "INVALID_WEIGHT" {
		t.Fatalf("patch weight: %d %s", r.Status, r.Body)
	}
	if r := h.admin("PATCH", "/api/v1/providers/"+id, map[string]any{"allow_private_network": false}); r.Reason() != "PRIVATE_NETWORK_NOT_ALLOWED" {
		t.Fatalf("patch flag: %d %s", r.Status, r.Body)
	}
	if r := h.admin("PUT", "/api/v1/providers/"+id, with("models", []string{})); r.Reason() != "EMPTY_MODEL_LIST" {
		t.Fatalf("put models: %d %s", r.Status, r.Body)
	}
}

func TestAuth(t *testing.T) {
	h := newHarness(t)
	p := h.create(demo("auth"))
	routes := []struct {
		method, path string
		internal     bool
	}{
		{"GET", "/api/v1/providers", false},
		{"POST", "/api/v1/providers", false},
		{"GET", "/api/v1/providers/" + p.ID, false},
		{"DELETE", "/api/v1/providers/" + p.ID + "/keys/pk_x", false},
		{"POST", "/api/v1/providers/" + p.ID + "/test", false},
		{"GET", internalapi.RouteProviderSnapshot, true},
	}
	for _, rt := range routes {
		for _, c := range []struct {
			name, token string
			reason      string
		}{
			{"missing", "", "MISSING_CREDENTIALS"},
			{"wrong", "nope", "INVALID_CREDENTIALS"},
			{"other side's token", map[bool]string{true: adminToken, false: internalToken}[rt.internal], "INVALID_CREDENTIALS"},
		} {
			t.Run(rt.method+" "+rt.path+" "+c.name, func(t *testing.T) {
				r := h.do(rt.method, rt.path, c.token, nil)
				if r.Status != http.StatusUnauthorized || r.Reason() != c.reason || r.Header.Get("WWW-Authenticate") == "" {
					t.Fatalf("got %d %s", r.Status, r.Body)
				}
			})
		}
	}
	if r := h.do("GET", internalapi.RouteProviderSnapshot, internalToken, nil); r.Status != 200 {
		t.Fatalf("internal token on snapshot: %d", r.Status)
	}
	for _, open := range []string{"/health", "/ready", "/metrics"} {
		if r := h.do("GET", open, "", nil); r.Status != 200 {
			t.Fatalf("%s: %d %s", open, r.Status, r.Body)
		}
	}
	if r := h.do("GET", "/api/v1/nothing", adminToken, nil); r.Status != 404 || r.Reason() != "ROUTE_NOT_FOUND" {
		t.Fatalf("unknown route: %d %s", r.Status, r.Body)
	}
}

func TestSnapshotCacheInvalidationAndEvent(t *testing.T) {
	h := newHarness(t)
	sub, err := h.NT.Conn.SubscribeSync(h.NT.Names.Subject(events.SubjectProviderChanged))
	if err != nil {
		t.Fatal(err)
	}
	if err := h.NT.Conn.Flush(); err != nil { // the server knows the subscription before anything is published
		t.Fatal(err)
	}
	ctx := context.Background()
	p := h.create(demo("snap", upstreamKey, map[string]any{"key": "sk-disabled-key-0000000", "enabled": false}))
	ev := nextChange(t, sub)
	if ev.ProviderID != p.ID || ev.Version < 2 {
		t.Fatalf("provider.changed %+v", ev)
	}
	h.create(map[string]any{"name": "off", "type": "gemini", "base_url": "http://127.0.0.1:1", "models": []string{"gemini-*"},
		"enabled": false, "allow_private_network": true})
	nextChange(t, sub)

	snapshot := func(headers ...string) (response, internalapi.Snapshot) {
		r := h.do("GET", internalapi.RouteProviderSnapshot, internalToken, nil, headers...)
		var s internalapi.Snapshot
		if r.Status == 200 {
			r.JSON(t, &s)
		}
		return r, s
	}
	cache := h.App.Metrics.SnapshotCache
	r1, s1 := snapshot()
	if r1.Status != 200 || r1.Header.Get("ETag") != strconv.Quote(strconv.FormatInt(s1.Version, 10)) || r1.Header.Get("Cache-Control") != "no-store" {
		t.Fatalf("snapshot: %d %v", r1.Status, r1.Header)
	}
	if len(s1.Providers) != 1 || s1.Providers[0].ID != p.ID || len(s1.Providers[0].Keys) != 1 || s1.Providers[0].Keys[0].Key != upstreamKey {
		t.Fatalf("snapshot holds disabled providers or keys: %s", r1.Body)
	}
	if got := testutil.ToFloat64(cache.WithLabelValues("miss")); got != 1 {
		t.Fatalf("misses = %v", got)
	}
	if r, s := snapshot(); r.Status != 200 || s.Version != s1.Version || testutil.ToFloat64(cache.WithLabelValues("hit")) != 1 {
		t.Fatalf("second read: %d v%d hits %v", r.Status, s.Version, testutil.ToFloat64(cache.WithLabelValues("hit")))
	}
	if got := h.RD.Client.HGet(ctx, h.App.Cache.Key(), "v").Val(); got != strconv.FormatInt(s1.Version, 10) {
		t.Fatalf("redis entry version %q, want %d", got, s1.Version)
	}
	if r, _ := snapshot("If-None-Match", r1.Header.Get("ETag")); r.Status != http.StatusNotModified || len(r.Body) != 0 {
		t.Fatalf("conditional read: %d", r.Status)
	}

	// A change: event with the new version, cache entry dropped, new
	// snapshot served and cached.
	if r := h.admin("PATCH", "/api/v1/providers/"+p.ID, map[string]any{"weight": 42}); r.Status != 200 {
		t.Fatalf("patch: %d %s", r.Status, r.Body)
	}
	ev = nextChange(t, sub)
	if ev.Version != s1.Version+1 || ev.ProviderID != p.ID {
		t.Fatalf("event after patch %+v (snapshot was v%d)", ev, s1.Version)
	}
	if n := h.RD.Client.Exists(ctx, h.App.Cache.Key()).Val(); n != 0 {
		t.Fatal("the change left the cached snapshot in redis")
	}
	if r, _ := snapshot("If-None-Match", r1.Header.Get("ETag")); r.Status != 200 {
		t.Fatalf("old etag still matches: %d", r.Status)
	}
	_, s2 := snapshot()
	if s2.Version != ev.Version || s2.Providers[0].Weight != 42 {
		t.Fatalf("after change: v%d weight %d", s2.Version, s2.Providers[0].Weight)
	}
	if got := h.RD.Client.HGet(ctx, h.App.Cache.Key(), "v").Val(); got != strconv.FormatInt(s2.Version, 10) {
		t.Fatalf("redis entry not replaced: v=%q", got)
	}

	// A missed invalidation (stale entry left in Redis) is never served:
	// reads compare with PostgreSQL's version.
	stale, _, err := h.App.Cache.Get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if r := h.admin("POST", "/api/v1/providers/"+p.ID+"/keys", map[string]any{"key": "sk-third-key-00000000000"}); r.Status != 201 {
		t.Fatalf("add key: %d", r.Status)
	}
	nextChange(t, sub)
	if err := h.App.Cache.Put(ctx, stale); err != nil {
		t.Fatal(err)
	}
	if _, s3 := snapshot(); s3.Version != s2.Version+1 || len(s3.Providers[0].Keys) != 2 {
		t.Fatalf("stale cache served: v%d keys %d", s3.Version, len(s3.Providers[0].Keys))
	}

	// Deleting announces too, and the snapshot loses the provider.
	h.admin("DELETE", "/api/v1/providers/"+p.ID, nil)
	if ev := nextChange(t, sub); ev.ProviderID != p.ID {
		t.Fatalf("delete event %+v", ev)
	}
	if _, s4 := snapshot(); len(s4.Providers) != 0 {
		t.Fatalf("deleted provider still in snapshot")
	}
	if got := testutil.ToFloat64(h.App.Metrics.SnapshotVersion); int64(got) < s2.Version+2 {
		t.Fatalf("snapshot version gauge %v", got)
	}
}

func nextChange(t *testing.T, sub interface {
	NextMsg(time.Duration) (*nats.Msg, error)
}) events.ProviderChanged {
	t.Helper()
	m, err := sub.NextMsg(10 * time.Second)
	if err != nil {
		t.Fatalf("no provider.changed: %v", err)
	}
	var ev events.ProviderChanged
	if err := json.Unmarshal(m.Data, &ev); err != nil {
		t.Fatal(err)
	}
	return ev
}

func TestListPaginationAndFilters(t *testing.T) {
	h := newHarness(t)
	var ids []string
	for i := range 7 {
		b := demo(fmt.Sprintf("p%d", i))
		switch i % 3 {
		case 1:
			b["type"], b["models"] = "openai-compatible", []string{"deepseek-*"}
		case 2:
			b["models"], b["model_mapping"] = []string{"o3"}, map[string]string{"claude-*": "o3"}
		}
		if i == 6 {
			b["enabled"] = false
		}
		ids = append(ids, h.create(b).ID)
	}
	type page struct {
		Items      []provider `json:"items"`
		NextCursor *string    `json:"next_cursor"`
	}
	collect := func(query string) []string {
		var got []string
		cursor := ""
		for range 10 {
			q := query + "&limit=3"
			if cursor != "" {
				q += "&cursor=" + cursor
			}
			r := h.admin("GET", "/api/v1/providers?"+q, nil)
			if r.Status != 200 {
				t.Fatalf("list %s: %d %s", q, r.Status, r.Body)
			}
			var pg page
			r.JSON(t, &pg)
			for _, p := range pg.Items {
				got = append(got, p.Name)
			}
			if pg.NextCursor == nil {
				return got
			}
			cursor = *pg.NextCursor
		}
		t.Fatal("pagination does not end")
		return nil
	}
	tests := []struct{ query, want string }{
		{"", "p0,p1,p2,p3,p4,p5,p6"},
		{"type=openai-compatible", "p1,p4"},
		{"enabled=false", "p6"},
		{"enabled=true&type=openai", "p0,p2,p3,p5"},
		{"model=gpt-4o-mini", "p0,p3,p6"},
		{"model=deepseek-chat", "p1,p4"},
		{"model=claude-3-opus", "p2,p5"},
		{"model=o3&enabled=true", "p2,p5"},
		{"model=nothing-serves-this", ""},
	}
	for _, tt := range tests {
		t.Run(tt.query, func(t *testing.T) {
			if got := strings.Join(collect(tt.query), ","); got != tt.want {
				t.Fatalf("got %s, want %s", got, tt.want)
			}
		})
	}
	for q, reason := range map[string]string{
		"cursor=bm9wZQ": "INVALID_CURSOR", "limit=0": "INVALID_ARGUMENT", "limit=500": "INVALID_ARGUMENT",
		"limit=x": "INVALID_ARGUMENT", "enabled=maybe": "INVALID_ARGUMENT", "type=cohere": "UNKNOWN_PROVIDER_TYPE",
	} {
		if r := h.admin("GET", "/api/v1/providers?"+q, nil); r.Status != 400 || r.Reason() != reason {
			t.Errorf("%s: %d %s", q, r.Status, r.Body)
		}
	}
}

func TestProbeAndHealth(t *testing.T) {
	var (
		mu   sync.Mutex
		seen []string
	)
	upstream := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct {
			Model string `json:"model"`
		}
		_ = json.NewDecoder(r.Body).Decode(&body)
		mu.Lock()
		seen = append(seen, r.Method+" "+r.URL.Path+" "+body.Model)
		mu.Unlock()
		if r.URL.Path != "/v1/chat/completions" {
			http.NotFound(w, r)
			return
		}
		if r.Header.Get("Authorization") != "Bearer "+upstreamKey {
			w.WriteHeader(http.StatusUnauthorized)
			_, _ = w.Write([]byte(`{"error":{"message":"Incorrect API key provided: sk-bad...0000"}}`))
			return
		}
		_, _ = w.Write([]byte(`{"id":"c1","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"po"},"finish_reason":"length"}]}`))
	}))
	defer upstream.Close()
	h := newHarness(t)
	b := demo("probe", upstreamKey, "sk-bad-key-000000000000")
	b["base_url"] = upstream.URL + "/v1"
	p := h.create(b)

	type health struct {
		Status    string     `json:"status"`
		CheckedAt *time.Time `json:"checked_at"`
		Keys      []struct {
			KeyID      string `json:"key_id"`
			Reachable  bool   `json:"reachable"`
			AuthOK     bool   `json:"auth_ok"`
			StatusCode int    `json:"status_code"`
			LatencyMs  int64  `json:"latency_ms"`
			Error      string `json:"error"`
		} `json:"keys"`
	}
	var before health
	h.admin("GET", "/api/v1/providers/"+p.ID+"/health", nil).JSON(t, &before)
	if before.Status != "unknown" || before.CheckedAt != nil || len(before.Keys) != 0 {
		t.Fatalf("health before any probe: %+v", before)
	}
	r := h.admin("POST", "/api/v1/providers/"+p.ID+"/test", nil)
	var res health
	r.JSON(t, &res)
	if r.Status != 200 || res.Status != "degraded" || len(res.Keys) != 2 || res.CheckedAt == nil {
		t.Fatalf("test: %d %s", r.Status, r.Body)
	}
	good, bad := res.Keys[0], res.Keys[1]
	if good.KeyID != p.Keys[0].ID || !good.Reachable || !good.AuthOK || good.StatusCode != 200 || good.Error != "" {
		t.Fatalf("good key %+v", good)
	}
	if !bad.Reachable || bad.AuthOK || bad.StatusCode != 401 || !strings.Contains(bad.Error, "401") || strings.Contains(string(r.Body), "sk-bad-key-000000000000") {
		t.Fatalf("bad key %+v (body %s)", bad, r.Body)
	}
	// The probe asks for the first exact model the provider lists.
	mu.Lock()
	if len(seen) != 2 || seen[0] != "POST /v1/chat/completions gpt-4.1" || seen[1] != seen[0] {
		t.Fatalf("upstream saw %v", seen)
	}
	mu.Unlock()
	var after health
	h.admin("GET", "/api/v1/providers/"+p.ID+"/health", nil).JSON(t, &after)
	if after.Status != "degraded" || len(after.Keys) != 2 || !after.CheckedAt.Equal(*res.CheckedAt) {
		t.Fatalf("health after probe: %+v", after)
	}
	// Removing the bad key: the remembered result follows the key set.
	h.admin("DELETE", "/api/v1/providers/"+p.ID+"/keys/"+bad.KeyID, nil)
	h.admin("GET", "/api/v1/providers/"+p.ID+"/health", nil).JSON(t, &after)
	if after.Status != "healthy" || len(after.Keys) != 1 {
		t.Fatalf("health after key removal: %+v", after)
	}
	probes := h.App.Metrics.Probes
	if testutil.ToFloat64(probes.WithLabelValues("ok")) != 1 || testutil.ToFloat64(probes.WithLabelValues("auth_failed")) != 1 {
		t.Fatal("probe metrics not counted")
	}
	if r := h.admin("POST", "/api/v1/providers/prv_NOPE/test", nil); r.Status != 404 {
		t.Fatalf("probe of a missing provider: %d", r.Status)
	}

	// ?model= picks a model the provider serves (here through its glob);
	// one it does not serve, or a glob, is refused before any call.
	lastModel := func() string {
		mu.Lock()
		defer mu.Unlock()
		return seen[len(seen)-1]
	}
	if r := h.admin("POST", "/api/v1/providers/"+p.ID+"/test?model=gpt-4o-mini", nil); r.Status != 200 || lastModel() != "POST /v1/chat/completions gpt-4o-mini" {
		t.Fatalf("test with model: %d %s, upstream saw %s", r.Status, r.Body, lastModel())
	}
	mu.Lock()
	calls := len(seen)
	mu.Unlock()
	for _, m := range []string{"claude-sonnet-4-5", "gpt-*"} {
		if r := h.admin("POST", "/api/v1/providers/"+p.ID+"/test?model="+m, nil); r.Status != 400 || r.Reason() != "INVALID_ARGUMENT" {
			t.Fatalf("test with model %s: %d %s", m, r.Status, r.Body)
		}
	}
	// Only globs: nothing to ask for, refused; a mapping target is exact.
	h.admin("PATCH", "/api/v1/providers/"+p.ID, map[string]any{"models": []string{"gpt-4o*"}})
	if r := h.admin("POST", "/api/v1/providers/"+p.ID+"/test", nil); r.Status != 400 || r.Reason() != "INVALID_ARGUMENT" || !strings.Contains(string(r.Body), "exact model") {
		t.Fatalf("test of a glob-only provider: %d %s", r.Status, r.Body)
	}
	mu.Lock()
	if len(seen) != calls {
		t.Fatal("a refused test called the upstream")
	}
	mu.Unlock()
	h.admin("PATCH", "/api/v1/providers/"+p.ID, map[string]any{"model_mapping": map[string]string{"fast": "gpt-4o-mini-2024-07-18"}})
	if r := h.admin("POST", "/api/v1/providers/"+p.ID+"/test", nil); r.Status != 200 || lastModel() != "POST /v1/chat/completions gpt-4o-mini-2024-07-18" {
		t.Fatalf("test through the mapping: %d %s, upstream saw %s", r.Status, r.Body, lastModel())
	}
}

func TestMetricsAndRequestLog(t *testing.T) {
	h := newHarness(t)
	h.create(demo("m"))
	r := h.do("GET", "/api/v1/providers", adminToken, nil, "X-Request-Id", "01J9ZZZZZZZZZZZZZZZZZZZZZZ",
		"traceparent", "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01")
	if r.Header.Get("X-Request-Id") != "01J9ZZZZZZZZZZZZZZZZZZZZZZ" {
		t.Fatalf("request id not echoed: %q", r.Header.Get("X-Request-Id"))
	}
	if r := h.do("GET", "/api/v1/providers", adminToken, nil, "X-Request-Id", "not-an-id"); r.Header.Get("X-Request-Id") == "not-an-id" {
		t.Fatal("an invalid request id was kept")
	}
	metrics := string(h.do("GET", "/metrics", "", nil).Body)
	for _, want := range []string{
		`lurus_provider_http_requests_total{code="201",method="POST",route="/api/v1/providers"} 1`,
		`lurus_provider_http_request_duration_seconds_bucket{method="GET",route="/api/v1/providers"`,
		`lurus_provider_snapshot_version 2`,
		`lurus_provider_snapshot_cache_total{result="miss"} 0`,
	} {
		if !strings.Contains(metrics, want) {
			t.Errorf("metrics lack %s", want)
		}
	}
	var line map[string]any
	for _, l := range strings.Split(h.Logs.String(), "\n") {
		if strings.Contains(l, "01J9ZZZZZZZZZZZZZZZZZZZZZZ") {
			if err := json.Unmarshal([]byte(l), &line); err != nil {
				t.Fatal(err)
			}
		}
	}
	if line["msg"] != "request" || line["route"] != "/api/v1/providers" || line["status"] != float64(200) ||
		line["trace_id"] != "4bf92f3577b34da6a3ce929d0e0e4736" || line["level"] != "INFO" {
		t.Fatalf("request log line %v", line)
	}
}
