package main

import (
	"net/http"
	"strings"
	"testing"

	"github.com/lurus-switch/lurus-switch/lurus-common/internalapi"
)

// keyLimits is a key of the admin JSON with its limits.
type keyLimits struct {
	ID       string `json:"id"`
	Masked   string `json:"masked"`
	Key      string `json:"key"`
	RPMLimit int64  `json:"rpm_limit"`
	TPMLimit int64  `json:"tpm_limit"`
}

// TestProviderKeyLimits: upstream keys take rpm_limit and tpm_limit in the
// create body, the key create body and a PUT; admin answers show them next
// to the masked key (never the secret); the snapshot carries them to the
// gateway; out-of-range values are 400 INVALID_ARGUMENT naming the field.
func TestProviderKeyLimits(t *testing.T) {
	h := newHarness(t)
	p := h.create(demo("limited", map[string]any{"key": upstreamKey, "rpm_limit": 60, "tpm_limit": 90_000}, "sk-plain-key-000000000"))

	var got struct {
		Keys []keyLimits `json:"keys"`
	}
	r := h.admin("GET", "/api/v1/providers/"+p.ID, nil)
	r.JSON(t, &got)
	if len(got.Keys) != 2 || got.Keys[0].RPMLimit != 60 || got.Keys[0].TPMLimit != 90_000 || got.Keys[1].RPMLimit != 0 ||
		got.Keys[0].Key != "" || strings.Contains(string(r.Body), upstreamKey) {
		t.Fatalf("admin view: %s", r.Body)
	}

	// POST .../keys with limits.
	r = h.admin("POST", "/api/v1/providers/"+p.ID+"/keys", map[string]any{"key": "sk-third-key-111111111", "tpm_limit": 5000})
	var added keyLimits
	if r.Status != http.StatusCreated {
		t.Fatalf("add key: %d %s", r.Status, r.Body)
	}
	r.JSON(t, &added)
	if added.TPMLimit != 5000 || added.RPMLimit != 0 || added.Masked == "" {
		t.Fatalf("added key: %s", r.Body)
	}

	// PUT keeping the keys by id: key 0 without limits keeps them, key 1
	// gets an RPM, the added key is cleared with 0.
	body := demo("limited", map[string]any{"id": got.Keys[0].ID}, map[string]any{"id": got.Keys[1].ID, "rpm_limit": 3},
		map[string]any{"id": added.ID, "tpm_limit": 0})
	if r = h.admin("PUT", "/api/v1/providers/"+p.ID, body); r.Status != 200 {
		t.Fatalf("put: %d %s", r.Status, r.Body)
	}

	r = h.do("GET", internalapi.RouteProviderSnapshot, internalToken, nil)
	var snap internalapi.Snapshot
	r.JSON(t, &snap)
	want := map[string][2]int64{got.Keys[0].ID: {60, 90_000}, got.Keys[1].ID: {3, 0}, added.ID: {0, 0}}
	if len(snap.Providers) != 1 || len(snap.Providers[0].Keys) != 3 {
		t.Fatalf("snapshot: %s", r.Body)
	}
	for _, k := range snap.Providers[0].Keys {
		if w := want[k.ID]; k.RPMLimit != w[0] || k.TPMLimit != w[1] {
			t.Errorf("snapshot key %s: rpm %d tpm %d, want %v", k.ID, k.RPMLimit, k.TPMLimit, w)
		}
	}
	if !strings.Contains(string(r.Body), `"rpm_limit":60,"tpm_limit":90000`) {
		t.Fatalf("snapshot wire names: %s", r.Body)
	}

	version, _ := h.App.Store.Version(t.Context())
	for _, tc := range []struct {
		name, method, path string
		body               any
		field              string
	}{
		{"negative rpm on create", "POST", "/api/v1/providers", demo("bad", map[string]any{"key": upstreamKey, "rpm_limit": -1}), "rpm_limit"},
		{"absurd tpm on key create", "POST", "/api/v1/providers/" + p.ID + "/keys", map[string]any{"key": "sk-x-22222222222", "tpm_limit": 2_000_000_000}, "tpm_limit"},
		{"negative tpm on put", "PUT", "/api/v1/providers/" + p.ID, demo("limited", map[string]any{"id": got.Keys[0].ID, "tpm_limit": -5}), "tpm_limit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := h.admin(tc.method, tc.path, tc.body)
			if r.Status != 400 || r.Reason() != "INVALID_ARGUMENT" || !strings.Contains(string(r.Body), tc.field) {
				t.Fatalf("%d %s", r.Status, r.Body)
			}
		})
	}
	if v, _ := h.App.Store.Version(t.Context()); v != version {
		t.Fatalf("refused requests changed the snapshot version %d → %d", version, v)
	}
}
