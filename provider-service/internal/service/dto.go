package service

import (
	"bytes"
	"encoding/json"
	"time"

	"github.com/lurus-switch/lurus-switch/provider-service/internal/biz"
)

// providerJSON is a provider as the admin API shows it (DESIGN.md §9).
type providerJSON struct {
	ID                  string            `json:"id"`
	Name                string            `json:"name"`
	Type                string            `json:"type"`
	BaseURL             string            `json:"base_url"`
	APIVersion          string            `json:"api_version,omitempty"`
	Keys                []keyJSON         `json:"keys"`
	Models              []string          `json:"models"`
	ModelMapping        map[string]string `json:"model_mapping"`
	Priority            int               `json:"priority"`
	Weight              int               `json:"weight"`
	Enabled             bool              `json:"enabled"`
	Timeouts            timeoutsJSON      `json:"timeouts"`
	Headers             map[string]string `json:"headers"`
	AllowPrivateNetwork bool              `json:"allow_private_network"`
	PassthroughOnly     bool              `json:"passthrough_only"`
	CreatedAt           time.Time         `json:"created_at"`
	UpdatedAt           time.Time         `json:"updated_at"`
}

// keyJSON is a key as the admin API shows it: never the secret.
type keyJSON struct {
	ID        string    `json:"id"`
	Masked    string    `json:"masked"`
	Enabled   bool      `json:"enabled"`
	RPMLimit  int64     `json:"rpm_limit"`
	TPMLimit  int64     `json:"tpm_limit"`
	CreatedAt time.Time `json:"created_at"`
}

type timeoutsJSON struct {
	ConnectMs   int64 `json:"connect_ms"`
	FirstByteMs int64 `json:"first_byte_ms"`
	IdleMs      int64 `json:"idle_ms"`
	TotalMs     int64 `json:"total_ms"`
}

type timeoutsPatchJSON struct {
	ConnectMs   *int64 `json:"connect_ms"`
	FirstByteMs *int64 `json:"first_byte_ms"`
	IdleMs      *int64 `json:"idle_ms"`
	TotalMs     *int64 `json:"total_ms"`
}

// readOnlyJSON are the response fields a request may carry back unchanged
// (so a GET body can be edited and PUT); they are ignored.
type readOnlyJSON struct {
	ID        json.RawMessage `json:"id"`
	CreatedAt json.RawMessage `json:"created_at"`
	UpdatedAt json.RawMessage `json:"updated_at"`
}

// specJSON is the body of POST and PUT /api/v1/providers[/{id}].
type specJSON struct {
	readOnlyJSON
	Name                string            `json:"name"`
	Type                string            `json:"type"`
	BaseURL             string            `json:"base_url"`
	APIVersion          string            `json:"api_version"`
	Keys                []keyInputJSON    `json:"keys"`
	Models              []string          `json:"models"`
	ModelMapping        map[string]string `json:"model_mapping"`
	Priority            int               `json:"priority"`
	Weight              *int              `json:"weight"`
	Enabled             *bool             `json:"enabled"`
	Timeouts            timeoutsJSON      `json:"timeouts"`
	Headers             map[string]string `json:"headers"`
	AllowPrivateNetwork bool              `json:"allow_private_network"`
	PassthroughOnly     bool              `json:"passthrough_only"`
}

// patchJSON is the body of PATCH /api/v1/providers/{id}: absent or null
// fields stay as they are.
type patchJSON struct {
	readOnlyJSON
	Name                *string            `json:"name"`
	Type                *string            `json:"type"`
	BaseURL             *string            `json:"base_url"`
	APIVersion          *string            `json:"api_version"`
	Keys                *[]keyInputJSON    `json:"keys"`
	Models              *[]string          `json:"models"`
	ModelMapping        *map[string]string `json:"model_mapping"`
	Priority            *int               `json:"priority"`
	Weight              *int               `json:"weight"`
	Enabled             *bool              `json:"enabled"`
	Timeouts            *timeoutsPatchJSON `json:"timeouts"`
	Headers             *map[string]string `json:"headers"`
	AllowPrivateNetwork *bool              `json:"allow_private_network"`
	PassthroughOnly     *bool              `json:"passthrough_only"`
}

// keyInputJSON is one key in a request: a plain string (a new key,
// enabled, no limits), {"key": "...", "enabled": bool, "rpm_limit": n,
// "tpm_limit": n} (a new key) or {"id": "pk_...", "enabled": bool,
// "rpm_limit": n, "tpm_limit": n} (an existing key kept; an absent limit
// keeps its value; its masked/created_at may come along and are ignored).
type keyInputJSON struct {
	ID        string          `json:"id"`
	Key       string          `json:"key"`
	Enabled   *bool           `json:"enabled"`
	RPMLimit  *int64          `json:"rpm_limit"`
	TPMLimit  *int64          `json:"tpm_limit"`
	Masked    json.RawMessage `json:"masked"`
	CreatedAt json.RawMessage `json:"created_at"`
}

// UnmarshalJSON accepts a string or an object, strictly.
func (k *keyInputJSON) UnmarshalJSON(b []byte) error {
	if s := bytes.TrimSpace(b); len(s) > 0 && s[0] == '"' {
		*k = keyInputJSON{}
		return json.Unmarshal(s, &k.Key)
	}
	type plain keyInputJSON
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var p plain
	if err := dec.Decode(&p); err != nil {
		return err
	}
	*k = keyInputJSON(p)
	return nil
}

func (k keyInputJSON) toBiz() biz.KeyInput {
	enabled := k.Enabled == nil || *k.Enabled
	return biz.KeyInput{ID: k.ID, Secret: k.Key, Enabled: enabled, RPMLimit: k.RPMLimit, TPMLimit: k.TPMLimit}
}

// keysToBiz converts request keys; nil (the field was absent) stays nil,
// which Replace reads as "keep the current keys".
func keysToBiz(in []keyInputJSON) []biz.KeyInput {
	if in == nil {
		return nil
	}
	out := make([]biz.KeyInput, len(in))
	for i, k := range in {
		out[i] = k.toBiz()
	}
	return out
}

func (s specJSON) toBiz() biz.Spec {
	weight := biz.DefaultWeight
	if s.Weight != nil {
		weight = *s.Weight
	}
	return biz.Spec{
		Name: s.Name, Type: s.Type, BaseURL: s.BaseURL, APIVersion: s.APIVersion, Keys: keysToBiz(s.Keys),
		Models: s.Models, ModelMapping: s.ModelMapping, Priority: s.Priority, Weight: weight,
		Enabled: s.Enabled == nil || *s.Enabled, Timeouts: biz.Timeouts(s.Timeouts), Headers: s.Headers,
		AllowPrivateNetwork: s.AllowPrivateNetwork, PassthroughOnly: s.PassthroughOnly,
	}
}

func (p patchJSON) toBiz() biz.Patch {
	out := biz.Patch{
		Name: p.Name, Type: p.Type, BaseURL: p.BaseURL, APIVersion: p.APIVersion, Models: p.Models,
		ModelMapping: p.ModelMapping, Priority: p.Priority, Weight: p.Weight, Enabled: p.Enabled,
		Headers: p.Headers, AllowPrivateNetwork: p.AllowPrivateNetwork, PassthroughOnly: p.PassthroughOnly,
	}
	if p.Keys != nil {
		keys := keysToBiz(*p.Keys)
		out.Keys = &keys
	}
	if t := p.Timeouts; t != nil {
		out.Timeouts = &biz.TimeoutsPatch{ConnectMs: t.ConnectMs, FirstByteMs: t.FirstByteMs, IdleMs: t.IdleMs, TotalMs: t.TotalMs}
	}
	return out
}

func fromKey(k biz.Key) keyJSON {
	return keyJSON{ID: k.ID, Masked: k.Masked, Enabled: k.Enabled, RPMLimit: k.RPMLimit, TPMLimit: k.TPMLimit, CreatedAt: k.CreatedAt}
}

func fromProvider(p biz.Provider) providerJSON {
	keys := make([]keyJSON, len(p.Keys))
	for i, k := range p.Keys {
		keys[i] = fromKey(k)
	}
	return providerJSON{
		ID: p.ID, Name: p.Name, Type: p.Type, BaseURL: p.BaseURL, APIVersion: p.APIVersion, Keys: keys,
		Models: p.Models, ModelMapping: p.ModelMapping, Priority: p.Priority, Weight: p.Weight,
		Enabled: p.Enabled, Timeouts: timeoutsJSON(p.Timeouts), Headers: p.Headers,
		AllowPrivateNetwork: p.AllowPrivateNetwork, PassthroughOnly: p.PassthroughOnly,
		CreatedAt: p.CreatedAt, UpdatedAt: p.UpdatedAt,
	}
}

// listJSON is a page of providers (DESIGN.md §9 list shape).
type listJSON struct {
	Items      []providerJSON `json:"items"`
	NextCursor *string        `json:"next_cursor"`
}

// healthJSON is the body of POST .../test and GET .../health.
type healthJSON struct {
	ProviderID string          `json:"provider_id"`
	Status     string          `json:"status"`
	CheckedAt  *time.Time      `json:"checked_at"`
	Keys       []keyHealthJSON `json:"keys"`
}

type keyHealthJSON struct {
	KeyID      string `json:"key_id"`
	Masked     string `json:"masked"`
	Enabled    bool   `json:"enabled"`
	Reachable  bool   `json:"reachable"`
	AuthOK     bool   `json:"auth_ok"`
	StatusCode int    `json:"status_code"`
	LatencyMs  int64  `json:"latency_ms"`
	Error      string `json:"error,omitempty"`
}

func fromHealth(h biz.Health) healthJSON {
	out := healthJSON{ProviderID: h.ProviderID, Status: h.Status, Keys: make([]keyHealthJSON, len(h.Keys))}
	if !h.CheckedAt.IsZero() {
		t := h.CheckedAt
		out.CheckedAt = &t
	}
	for i, k := range h.Keys {
		out.Keys[i] = keyHealthJSON{KeyID: k.KeyID, Masked: k.Masked, Enabled: k.Enabled, Reachable: k.Reachable,
			AuthOK: k.AuthOK, StatusCode: k.StatusCode, LatencyMs: k.LatencyMs, Error: k.Error}
	}
	return out
}
