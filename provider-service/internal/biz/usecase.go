package biz

import (
	"context"
	"log/slog"
	"strings"

	"github.com/lurus-switch/lurus-switch/lurus-common/apperr"
	"github.com/lurus-switch/lurus-switch/lurus-common/modelglob"
)

// Changed is told about every committed change, with the snapshot version
// the change produced and the provider it touched. Implementations
// invalidate the snapshot cache and publish provider.changed. A failure
// is logged, not returned: the change is committed, and readers compare
// versions with PostgreSQL, so nothing stale is served.
type Changed interface {
	ProviderChanged(ctx context.Context, version int64, providerID string) error
}

// Providers is the provider administration use case: it validates specs,
// applies patches atomically and announces every change.
type Providers struct {
	Store     ProviderStore
	Keys      KeyStore
	Validator Validator
	// Notify receives every committed change, in order; each is told even
	// if an earlier one fails.
	Notify []Changed
	Log    *slog.Logger
}

// Create validates s and stores a new provider.
func (u *Providers) Create(ctx context.Context, s Spec) (Provider, error) {
	if err := u.Validator.Validate(ctx, &s); err != nil {
		return Provider{}, err
	}
	for _, k := range s.Keys {
		if k.ID != "" {
			return Provider{}, apperr.New(apperr.ReasonInvalidArgument, "a new provider's keys must be new secrets, not ids")
		}
	}
	p, v, err := u.Store.Create(ctx, s)
	if err != nil {
		return Provider{}, err
	}
	u.changed(ctx, v, p.ID)
	return p, nil
}

// Replace validates s and replaces provider id's configuration (PUT). A nil
// s.Keys keeps the current keys (they cannot be read back, so a client
// that does not mention them means to leave them); an empty one removes
// them all.
func (u *Providers) Replace(ctx context.Context, id string, s Spec) (Provider, error) {
	return u.update(ctx, id, func(cur Provider) Spec {
		if s.Keys == nil {
			s.Keys = SpecOf(cur).Keys
		}
		return s
	})
}

// Patch applies pt to provider id and validates the result (PATCH).
func (u *Providers) Patch(ctx context.Context, id string, pt Patch) (Provider, error) {
	return u.update(ctx, id, func(cur Provider) Spec { return pt.Apply(SpecOf(cur)) })
}

func (u *Providers) update(ctx context.Context, id string, next func(Provider) Spec) (Provider, error) {
	p, v, err := u.Store.Update(ctx, id, func(cur Provider) (Spec, error) {
		s := next(cur)
		if err := u.Validator.Validate(ctx, &s); err != nil {
			return Spec{}, err
		}
		return s, nil
	})
	if err != nil {
		return Provider{}, err
	}
	u.changed(ctx, v, p.ID)
	return p, nil
}

// Delete removes provider id and its keys.
func (u *Providers) Delete(ctx context.Context, id string) error {
	v, err := u.Store.Delete(ctx, id)
	if err != nil {
		return err
	}
	u.changed(ctx, v, id)
	return nil
}

// Get returns provider id.
func (u *Providers) Get(ctx context.Context, id string) (Provider, error) {
	return u.Store.Get(ctx, id)
}

// AddKey adds a new secret to provider id.
func (u *Providers) AddKey(ctx context.Context, providerID string, k KeyInput) (Key, error) {
	if k.ID != "" {
		return Key{}, apperr.New(apperr.ReasonInvalidArgument, "only a new key (key) can be added")
	}
	if err := ValidateKeyInput(&k); err != nil {
		return Key{}, err
	}
	key, v, err := u.Keys.AddKey(ctx, providerID, k)
	if err != nil {
		return Key{}, err
	}
	u.changed(ctx, v, providerID)
	return key, nil
}

// DeleteKey removes key keyID of provider providerID.
func (u *Providers) DeleteKey(ctx context.Context, providerID, keyID string) error {
	v, err := u.Keys.DeleteKey(ctx, providerID, keyID)
	if err != nil {
		return err
	}
	u.changed(ctx, v, providerID)
	return nil
}

func (u *Providers) changed(ctx context.Context, version int64, providerID string) {
	// The change is committed: finish announcing it even if the client
	// has gone away.
	ctx = context.WithoutCancel(ctx)
	for _, n := range u.Notify {
		if err := n.ProviderChanged(ctx, version, providerID); err != nil && u.Log != nil {
			u.Log.Warn("announcing provider change failed", "provider_id", providerID, "version", version, "err", err)
		}
	}
}

// Filter selects providers for List.
type Filter struct {
	Type    string
	Enabled *bool
	// Model keeps providers serving this model: an exact entry, a glob in
	// models matching it, or an alias (exact or glob) in model_mapping.
	Model string
	After string
	Limit int
}

// List limits.
const (
	DefaultListLimit = 50
	MaxListLimit     = 200
)

// List returns one page of providers in id order and the id to continue
// after ("" when there are no more).
func (u *Providers) List(ctx context.Context, f Filter) ([]Provider, string, error) {
	if f.Limit == 0 {
		f.Limit = DefaultListLimit
	}
	if f.Limit < 1 || f.Limit > MaxListLimit {
		return nil, "", apperr.Newf(apperr.ReasonInvalidArgument, "limit must be between 1 and %d", MaxListLimit)
	}
	f.Model = strings.TrimSpace(f.Model)
	// Fetch one more than asked to know whether a next page exists; with
	// a model filter, keep scanning batches (globs are matched here, not
	// in SQL) until the page is full or the table ends.
	batch := f.Limit + 1
	if f.Model != "" {
		batch = max(batch, 100)
	}
	var out []Provider
	after := f.After
	for {
		rows, err := u.Store.List(ctx, Page{Type: f.Type, Enabled: f.Enabled, After: after, Limit: batch})
		if err != nil {
			return nil, "", err
		}
		for _, p := range rows {
			if f.Model != "" && !Serves(p, f.Model) {
				continue
			}
			if len(out) == f.Limit {
				return out, out[len(out)-1].ID, nil
			}
			out = append(out, p)
		}
		if len(rows) < batch {
			return out, "", nil
		}
		after = rows[len(rows)-1].ID
	}
}

// Serves reports whether p serves model: listed exactly or by a glob in
// Models, or reachable through an alias in ModelMapping.
func Serves(p Provider, model string) bool {
	for _, m := range p.Models {
		if m == model || modelglob.IsGlob(m) && modelglob.Match(m, model) {
			return true
		}
	}
	for alias := range p.ModelMapping {
		if alias == model || modelglob.IsGlob(alias) && modelglob.Match(alias, model) {
			return true
		}
	}
	return false
}

// ChangedFunc adapts a function to Changed.
type ChangedFunc func(ctx context.Context, version int64, providerID string) error

// ProviderChanged implements Changed.
func (f ChangedFunc) ProviderChanged(ctx context.Context, version int64, providerID string) error {
	return f(ctx, version, providerID)
}
