package biz

import (
	"context"
	"log/slog"
	"slices"
	"sync"
	"time"

	"github.com/lurus-switch/lurus-switch/lurus-common/apperr"
	"github.com/lurus-switch/lurus-switch/lurus-common/modelglob"
)

// ProbeTarget is everything a probe needs to call one provider with one
// key.
type ProbeTarget struct {
	Type                string
	BaseURL             string
	APIVersion          string
	Headers             map[string]string
	AllowPrivateNetwork bool
	Secret              string
	// Model is the upstream's name of the model the probe asks for (see
	// ProbeModel).
	Model string
}

// ProbeResult is the outcome of probing one key.
type ProbeResult struct {
	// Reachable: an HTTP response came back (any status).
	Reachable bool
	// AuthOK: the upstream answered 2xx to the authenticated request.
	AuthOK     bool
	StatusCode int
	LatencyMs  int64
	// Error explains a failure in a few words; never holds a secret.
	Error string
}

// Prober calls an upstream with one key: a one-token generate request
// for Model, written by the provider type's wire adapter.
type Prober interface {
	Probe(ctx context.Context, t ProbeTarget) ProbeResult
}

// KeyHealth is the probe result of one key.
type KeyHealth struct {
	KeyID   string
	Masked  string
	Enabled bool
	ProbeResult
}

// Health statuses.
const (
	HealthUnknown  = "unknown"  // never probed (or the result expired)
	HealthHealthy  = "healthy"  // every enabled key answered 2xx
	HealthDegraded = "degraded" // some enabled keys did
	HealthDown     = "down"     // no enabled key did (or there is none)
)

// Health is the last probe of a provider.
type Health struct {
	ProviderID string
	Status     string
	CheckedAt  time.Time
	Keys       []KeyHealth
}

// HealthStore keeps the last probe result per provider. Load reports a
// missing result as ok=false with a nil error.
type HealthStore interface {
	Save(ctx context.Context, h Health) error
	Load(ctx context.Context, providerID string) (h Health, ok bool, err error)
}

// Probes tests providers' keys against their upstreams and remembers the
// result.
type Probes struct {
	Keys        KeyStore
	Prober      Prober
	Store       HealthStore
	Concurrency int
	// Observe, if set, is told the outcome class of every key probed.
	Observe func(result string)
	Log     *slog.Logger
	Now     func() time.Time
}

// Probe outcome classes, the label of lurus_provider_probe_total.
const (
	ProbeOK          = "ok"
	ProbeAuthFailed  = "auth_failed"
	ProbeBadStatus   = "bad_status"
	ProbeUnreachable = "unreachable"
)

// Test probes every key of provider id (disabled ones too, so an admin can
// check a key before enabling it), stores and returns the result. model is
// the client-side model name to probe with; "" lets ProbeModel choose. A
// provider that cannot name an exact model (only globs) is refused with
// INVALID_ARGUMENT: the probe is a real generate call and needs one.
func (u *Probes) Test(ctx context.Context, id, model string) (Health, error) {
	p, secrets, err := u.Keys.Secrets(ctx, id)
	if err != nil {
		return Health{}, err
	}
	var upstream string
	if model == "" {
		upstream = ProbeModel(p)
	} else if modelglob.IsGlob(model) || modelglob.Validate(model) != nil {
		return Health{}, apperr.New(apperr.ReasonInvalidArgument, "model must be one exact model name")
	} else if upstream = resolve(p, model); upstream == "" {
		return Health{}, apperr.Newf(apperr.ReasonInvalidArgument, "provider %s does not serve model %s", p.ID, model)
	}
	if upstream == "" {
		return Health{}, apperr.New(apperr.ReasonInvalidArgument,
			"the provider lists only model globs; the probe needs an exact model name: pass ?model= or list one in models or model_mapping")
	}
	h := Health{ProviderID: p.ID, CheckedAt: u.now(), Keys: make([]KeyHealth, len(secrets))}
	sem := make(chan struct{}, max(1, u.Concurrency))
	var wg sync.WaitGroup
	for i, k := range secrets {
		wg.Add(1)
		go func() {
			defer wg.Done()
			select {
			case sem <- struct{}{}:
				defer func() { <-sem }()
			case <-ctx.Done():
				h.Keys[i] = KeyHealth{KeyID: k.ID, Masked: k.Masked, Enabled: k.Enabled, ProbeResult: ProbeResult{Error: "cancelled"}}
				return
			}
			r := u.Prober.Probe(ctx, ProbeTarget{
				Type: p.Type, BaseURL: p.BaseURL, APIVersion: p.APIVersion, Headers: p.Headers,
				AllowPrivateNetwork: p.AllowPrivateNetwork, Secret: k.Secret, Model: upstream,
			})
			if u.Observe != nil {
				u.Observe(Classify(r))
			}
			h.Keys[i] = KeyHealth{KeyID: k.ID, Masked: k.Masked, Enabled: k.Enabled, ProbeResult: r}
		}()
	}
	wg.Wait()
	h.Status = status(h.Keys)
	if err := u.Store.Save(context.WithoutCancel(ctx), h); err != nil && u.Log != nil {
		u.Log.Warn("saving probe result failed", "provider_id", id, "err", err)
	}
	return h, nil
}

// ProbeModel chooses the upstream model a probe of p asks for: the first
// exact name in Models, resolved through ModelMapping as the gateway
// resolves it; else the first mapping target (aliases in sorted order).
// It returns "" when p lists only globs and maps nothing.
func ProbeModel(p Provider) string {
	for _, m := range p.Models {
		if !modelglob.IsGlob(m) {
			return resolve(p, m)
		}
	}
	aliases := make([]string, 0, len(p.ModelMapping))
	for a := range p.ModelMapping {
		aliases = append(aliases, a)
	}
	slices.Sort(aliases)
	if len(aliases) > 0 {
		return p.ModelMapping[aliases[0]]
	}
	return ""
}

// resolve is the upstream name of client model name m at p, in the
// gateway router's order: an exact alias, the most specific matching
// glob alias, then m itself when Models serves it; "" when p does not
// serve m.
func resolve(p Provider, m string) string {
	if t, ok := p.ModelMapping[m]; ok {
		return t
	}
	best, target := -1, ""
	for a, t := range p.ModelMapping {
		if modelglob.IsGlob(a) && modelglob.Match(a, m) {
			if s := modelglob.Specificity(a); s > best || s == best && t < target {
				best, target = s, t
			}
		}
	}
	if target != "" {
		return target
	}
	if Serves(Provider{Models: p.Models}, m) {
		return m
	}
	return ""
}

// Last returns the last stored probe of provider id, restricted to the keys
// it still has; Status is HealthUnknown when there is none.
func (u *Probes) Last(ctx context.Context, id string) (Health, error) {
	p, _, err := u.Keys.Secrets(ctx, id)
	if err != nil {
		return Health{}, err
	}
	h, ok, err := u.Store.Load(ctx, id)
	if err != nil {
		return Health{}, err
	}
	if !ok {
		return Health{ProviderID: id, Status: HealthUnknown, Keys: []KeyHealth{}}, nil
	}
	current := map[string]Key{}
	for _, k := range p.Keys {
		current[k.ID] = k
	}
	kept := h.Keys[:0]
	for _, kh := range h.Keys {
		if k, ok := current[kh.KeyID]; ok {
			kh.Enabled = k.Enabled
			kept = append(kept, kh)
		}
	}
	h.Keys = kept
	h.Status = status(kept)
	return h, nil
}

// Classify names the outcome class of a probe result.
func Classify(r ProbeResult) string {
	switch {
	case r.AuthOK:
		return ProbeOK
	case !r.Reachable:
		return ProbeUnreachable
	case r.StatusCode == 401 || r.StatusCode == 403:
		return ProbeAuthFailed
	default:
		return ProbeBadStatus
	}
}

func status(keys []KeyHealth) string {
	enabled, ok := 0, 0
	for _, k := range keys {
		if k.Enabled {
			enabled++
			if k.AuthOK {
				ok++
			}
		}
	}
	switch {
	case enabled > 0 && ok == enabled:
		return HealthHealthy
	case ok > 0:
		return HealthDegraded
	default:
		return HealthDown
	}
}

func (u *Probes) now() time.Time {
	if u.Now != nil {
		return u.Now()
	}
	return time.Now().UTC()
}
