// Package biz holds provider-service's domain: what a provider is, the rules
// a provider configuration must follow, and the use cases that change,
// list, snapshot and probe providers. It declares the small interfaces it
// needs (stores, cache, notifier, prober) and imports no transport or
// driver package; internal/data and internal/probe implement them.
package biz

import (
	"context"
	"time"
)

// Provider is one upstream as configured by an admin. Keys never carry
// their secret here: only the masked form leaves the data layer, except
// through KeySecret for the probe and the gateway snapshot.
type Provider struct {
	ID                  string
	Name                string
	Type                string
	BaseURL             string
	APIVersion          string
	Keys                []Key
	Models              []string
	ModelMapping        map[string]string
	Priority            int
	Weight              int
	Enabled             bool
	Timeouts            Timeouts
	Headers             map[string]string
	AllowPrivateNetwork bool
	// PassthroughOnly: only clients of the provider's own API family reach
	// it; the gateway never translates another format for it.
	PassthroughOnly bool
	CreatedAt       time.Time
	UpdatedAt       time.Time
}

// Key is an upstream API key as the admin API shows it.
type Key struct {
	ID      string
	Masked  string
	Enabled bool
	// RPMLimit and TPMLimit are the upstream account's tier: requests and
	// tokens per minute the gateway keeps this key under (0: none).
	RPMLimit  int64
	TPMLimit  int64
	CreatedAt time.Time
}

// KeySecret is a key with its decrypted secret.
type KeySecret struct {
	Key
	Secret string
}

// Timeouts of calls to the provider in milliseconds; 0 means the gateway's
// default.
type Timeouts struct {
	ConnectMs   int64
	FirstByteMs int64
	IdleMs      int64
	TotalMs     int64
}

// KeyInput is one key in a create or replace request: a new secret (Secret
// set) or an existing key of the provider kept by ID (Secret empty).
type KeyInput struct {
	ID      string
	Secret  string
	Enabled bool
	// RPMLimit and TPMLimit, when nil, keep an existing key's limit (a new
	// key gets none); 0 clears it.
	RPMLimit *int64
	TPMLimit *int64
}

// Spec is the writable configuration of a provider: what create and
// replace take, after validation and normalization. Keys lists the whole
// key set: ids keep existing keys, secrets add new ones, and keys not
// listed are deleted.
type Spec struct {
	Name                string
	Type                string
	BaseURL             string
	APIVersion          string
	Keys                []KeyInput
	Models              []string
	ModelMapping        map[string]string
	Priority            int
	Weight              int
	Enabled             bool
	Timeouts            Timeouts
	Headers             map[string]string
	AllowPrivateNetwork bool
	PassthroughOnly     bool
}

// SpecOf returns the spec that reproduces p, keeping its keys by id.
func SpecOf(p Provider) Spec {
	keys := make([]KeyInput, len(p.Keys))
	for i, k := range p.Keys {
		keys[i] = KeyInput{ID: k.ID, Enabled: k.Enabled, RPMLimit: &k.RPMLimit, TPMLimit: &k.TPMLimit}
	}
	return Spec{
		Name: p.Name, Type: p.Type, BaseURL: p.BaseURL, APIVersion: p.APIVersion, Keys: keys,
		Models: p.Models, ModelMapping: p.ModelMapping, Priority: p.Priority, Weight: p.Weight,
		Enabled: p.Enabled, Timeouts: p.Timeouts, Headers: p.Headers, AllowPrivateNetwork: p.AllowPrivateNetwork,
		PassthroughOnly: p.PassthroughOnly,
	}
}

// Patch is a partial update: nil fields stay as they are. Keys, when set,
// replaces the key set the way Spec.Keys does.
type Patch struct {
	Name                *string
	Type                *string
	BaseURL             *string
	APIVersion          *string
	Keys                *[]KeyInput
	Models              *[]string
	ModelMapping        *map[string]string
	Priority            *int
	Weight              *int
	Enabled             *bool
	Timeouts            *TimeoutsPatch
	Headers             *map[string]string
	AllowPrivateNetwork *bool
	PassthroughOnly     *bool
}

// TimeoutsPatch is the timeouts part of a Patch.
type TimeoutsPatch struct {
	ConnectMs   *int64
	FirstByteMs *int64
	IdleMs      *int64
	TotalMs     *int64
}

// Apply returns s with the patch's fields replaced.
func (pt Patch) Apply(s Spec) Spec {
	set(&s.Name, pt.Name)
	set(&s.Type, pt.Type)
	set(&s.BaseURL, pt.BaseURL)
	set(&s.APIVersion, pt.APIVersion)
	set(&s.Keys, pt.Keys)
	set(&s.Models, pt.Models)
	set(&s.ModelMapping, pt.ModelMapping)
	set(&s.Priority, pt.Priority)
	set(&s.Weight, pt.Weight)
	set(&s.Enabled, pt.Enabled)
	set(&s.Headers, pt.Headers)
	set(&s.AllowPrivateNetwork, pt.AllowPrivateNetwork)
	set(&s.PassthroughOnly, pt.PassthroughOnly)
	if t := pt.Timeouts; t != nil {
		set(&s.Timeouts.ConnectMs, t.ConnectMs)
		set(&s.Timeouts.FirstByteMs, t.FirstByteMs)
		set(&s.Timeouts.IdleMs, t.IdleMs)
		set(&s.Timeouts.TotalMs, t.TotalMs)
	}
	return s
}

func set[T any](dst *T, v *T) {
	if v != nil {
		*dst = *v
	}
}

// Page selects one page of providers in id order (ids are ULIDs, so this
// is creation order).
type Page struct {
	Type    string // "" for any
	Enabled *bool  // nil for any
	After   string // return ids greater than this ("" from the start)
	Limit   int
}

// ProviderStore persists providers. Every method that changes something
// bumps the snapshot version in the same transaction and returns the new
// version. Not-found and duplicate-name cases come back as apperr errors.
type ProviderStore interface {
	Create(ctx context.Context, s Spec) (Provider, int64, error)
	// Update loads the provider, locks it, asks change for the new spec and
	// stores it, all in one transaction.
	Update(ctx context.Context, id string, change func(Provider) (Spec, error)) (Provider, int64, error)
	Delete(ctx context.Context, id string) (int64, error)
	Get(ctx context.Context, id string) (Provider, error)
	List(ctx context.Context, p Page) ([]Provider, error)
}

// KeyStore adds, removes and decrypts a provider's keys.
type KeyStore interface {
	AddKey(ctx context.Context, providerID string, k KeyInput) (Key, int64, error)
	DeleteKey(ctx context.Context, providerID, keyID string) (int64, error)
	// Secrets returns the provider and all its keys, decrypted.
	Secrets(ctx context.Context, providerID string) (Provider, []KeySecret, error)
}
