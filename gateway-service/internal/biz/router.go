package biz

import (
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"github.com/lurus-switch/lurus-switch/lurus-common/apperr"
	"github.com/lurus-switch/lurus-switch/lurus-common/modelglob"
	"github.com/lurus-switch/lurus-switch/lurus-common/ratelimit"
)

// Timeouts of calls to one provider, defaults applied.
type Timeouts struct {
	Connect   time.Duration
	FirstByte time.Duration
	Idle      time.Duration
	Total     time.Duration
}

// Provider is one upstream provider of a snapshot. The exported fields
// are what provider-service declares (data converts its internal API's
// snapshot into them); Router.Load applies the defaults and compiles the
// rest.
type Provider struct {
	ID         string
	Name       string
	Type       string // internalapi.TypeOpenAI, TypeAnthropic, ...
	BaseURL    string
	APIVersion string
	Priority   int
	Weight     int // Load makes ≤ 0 into 1
	// Models are the model names and globs served; ModelMapping maps an
	// alias or alias glob to the upstream model.
	Models       []string
	ModelMapping map[string]string
	// Timeouts: a zero field takes the router's default at Load.
	Timeouts            Timeouts
	Headers             map[string]string
	AllowPrivateNetwork bool
	// PassthroughOnly keeps the provider out of protocol translation.
	PassthroughOnly bool
	Keys            []*ProviderKey

	exact  map[string]bool
	globs  []string
	alias  map[string]string
	aliasG []aliasGlob
	// cur is the smooth weighted round-robin state (guarded by the
	// router's mutex).
	cur  int
	next atomic.Uint32 // key rotation
}

type aliasGlob struct{ pattern, target string }

// ProviderKey is one upstream credential with its breaker (set by
// Router.Load).
type ProviderKey struct {
	ID      string
	Secret  string
	Breaker *Breaker
	// Limits are the upstream account's RPM and TPM for this key (0:
	// none); the relay keeps under them across replicas (limits.go).
	Limits ratelimit.Limits
	// subject is the key's rate-limit subject, named once per snapshot
	// rather than once per attempt.
	subject string
}

// limitSubject is k's rate-limit subject.
func (k *ProviderKey) limitSubject() string {
	if k.subject == "" {
		return ratelimit.UpstreamKeySubject(k.ID)
	}
	return k.subject
}

// Resolve returns the upstream model name for model, the configured entry
// that matched it (an alias, an alias glob, an exact model or a model
// glob: a bounded value fit for a metric label), and whether the provider
// serves it: an exact alias, an alias glob (most specific first), an exact
// model or a model glob.
func (p *Provider) Resolve(model string) (upstream, matched string, ok bool) {
	if t, ok := p.alias[model]; ok {
		return t, model, true
	}
	for _, a := range p.aliasG {
		if modelglob.Match(a.pattern, model) {
			return a.target, a.pattern, true
		}
	}
	if p.exact[model] {
		return model, model, true
	}
	for _, g := range p.globs {
		if modelglob.Match(g, model) {
			return model, g, true
		}
	}
	return "", "", false
}

// ListedModels are the model names the provider names without wildcards
// (its exact models and aliases), for GET /v1/models.
func (p *Provider) ListedModels() []string {
	out := make([]string, 0, len(p.exact)+len(p.alias))
	for m := range p.exact {
		out = append(out, m)
	}
	for a := range p.alias {
		out = append(out, a)
	}
	return out
}

// Candidate is one attempt target: a provider, one of its keys and the
// upstream model name.
type Candidate struct {
	Provider      *Provider
	Key           *ProviderKey
	UpstreamModel string
	// Matched is the provider's configured model, glob or alias that
	// admitted the requested model: what metrics label the request with,
	// never the caller's own string.
	Matched string
	// Translate is set when the provider speaks another API family than
	// the client: the call is translated through the wire adapters instead
	// of relayed byte for byte.
	Translate bool
}

// Snapshot is a provider snapshot: what data hands Router.Load and, once
// loaded, what the router routes by (then Providers are compiled and by
// priority, highest first).
type Snapshot struct {
	Version   int64
	Providers []*Provider
}

// RouterConfig holds the default timeouts.
type RouterConfig struct {
	Defaults Timeouts
}

// Router picks candidates from the current snapshot.
type Router struct {
	cfg      RouterConfig
	breakers *Breakers
	snap     atomic.Pointer[Snapshot]
	mu       sync.Mutex // smooth WRR state
}

// NewRouter returns a router with an empty snapshot.
func NewRouter(cfg RouterConfig, breakers *Breakers) *Router {
	r := &Router{cfg: cfg, breakers: breakers}
	r.snap.Store(&Snapshot{})
	return r
}

// Snapshot returns the snapshot in use.
func (r *Router) Snapshot() *Snapshot { return r.snap.Load() }

// Load compiles s and makes it current: it applies the default timeouts
// and weight, indexes each provider's models and aliases, and gives every
// key its breaker. Load takes s's providers over; the caller must not use
// them after. Providers keep their round-robin state across reloads when
// their id is unchanged.
func (r *Router) Load(s Snapshot) {
	old := map[string]*Provider{}
	for _, p := range r.snap.Load().Providers {
		old[p.ID] = p
	}
	out := &Snapshot{Version: s.Version}
	for _, p := range s.Providers {
		p.exact, p.alias = map[string]bool{}, map[string]string{}
		p.Timeouts = Timeouts{
			Connect:   durOr(p.Timeouts.Connect, r.cfg.Defaults.Connect),
			FirstByte: durOr(p.Timeouts.FirstByte, r.cfg.Defaults.FirstByte),
			Idle:      durOr(p.Timeouts.Idle, r.cfg.Defaults.Idle),
			Total:     durOr(p.Timeouts.Total, r.cfg.Defaults.Total),
		}
		if p.Weight <= 0 {
			p.Weight = 1
		}
		for _, m := range p.Models {
			if modelglob.IsGlob(m) {
				p.globs = append(p.globs, m)
			} else {
				p.exact[m] = true
			}
		}
		for a, t := range p.ModelMapping {
			if modelglob.IsGlob(a) {
				p.aliasG = append(p.aliasG, aliasGlob{a, t})
			} else {
				p.alias[a] = t
			}
		}
		sort.Slice(p.aliasG, func(i, j int) bool {
			return modelglob.Specificity(p.aliasG[i].pattern) > modelglob.Specificity(p.aliasG[j].pattern)
		})
		for _, k := range p.Keys {
			k.Breaker = r.breakers.Get(p.ID, k.ID)
			k.subject = ratelimit.UpstreamKeySubject(k.ID)
		}
		if o := old[p.ID]; o != nil {
			p.cur = o.cur
			p.next.Store(o.next.Load())
		}
		out.Providers = append(out.Providers, p)
	}
	sort.SliceStable(out.Providers, func(i, j int) bool { return out.Providers[i].Priority > out.Providers[j].Priority })
	r.snap.Store(out)
}

// durOr is d, or def when d is not positive.
func durOr(d, def time.Duration) time.Duration {
	if d > 0 {
		return d
	}
	return def
}

// Candidates returns the attempt order for model among the providers of
// format f's own family only (Route without translation).
func (r *Router) Candidates(f Format, model string, dst []Candidate) ([]Candidate, error) {
	return r.Route(f, model, nil, dst)
}

// Route returns the attempt order for model asked in format f: priority
// groups highest first; inside a group the providers of f's own family
// first (pass-through is preferred: nothing is re-encoded), then those
// that cross (a family for which cross is true, and not PassthroughOnly),
// each part ordered by smooth weighted round-robin (the pick first, then
// the others by weight); for each provider the next key in rotation whose
// breaker lets requests through. cross nil: no translation. It fails with
// MODEL_NOT_FOUND when no provider this call may reach lists the model
// (none lists it, or only another family that opted out of translation or
// that the call cannot be translated to), NO_PROVIDER_AVAILABLE when there
// is no provider at all, CIRCUIT_OPEN
// when every one that can is cooling down.
func (r *Router) Route(f Format, model string, cross func(providerType string) bool, dst []Candidate) ([]Candidate, error) {
	snap := r.snap.Load()
	dst = dst[:0]
	anyModel, anyReachable := false, false
	own := make([]Candidate, 0, 4)
	var other []Candidate // allocated only when another family serves the model
	for i := 0; i < len(snap.Providers); {
		prio := snap.Providers[i].Priority
		own, other = own[:0], other[:0]
		for ; i < len(snap.Providers) && snap.Providers[i].Priority == prio; i++ {
			p := snap.Providers[i]
			if len(p.Keys) == 0 {
				continue
			}
			um, matched, ok := p.Resolve(model)
			if !ok {
				continue
			}
			anyModel = true
			translate := !f.Serves(p.Type)
			if translate && (cross == nil || p.PassthroughOnly || !cross(p.Type)) {
				continue
			}
			anyReachable = true
			if k := p.pickKey(); k != nil {
				c := Candidate{Provider: p, Key: k, UpstreamModel: um, Matched: matched, Translate: translate}
				if translate {
					other = append(other, c)
				} else {
					own = append(own, c)
				}
			}
		}
		dst = append(dst, r.order(own)...)
		dst = append(dst, r.order(other)...)
	}
	switch {
	case len(dst) > 0:
		return dst, nil
	case len(snap.Providers) == 0:
		return nil, apperr.New(apperr.ReasonNoProvider, "no provider is available for this API")
	case !anyModel:
		return nil, apperr.Newf(apperr.ReasonModelNotFound, "no provider serves model %q", model)
	case !anyReachable:
		// Listed, but not for this caller: 404 like a model nobody lists,
		// since the model lists of this format leave it out too, and a 503
		// would make the SDKs retry a call that can never succeed.
		return nil, apperr.Newf(apperr.ReasonModelNotFound, "model %q is not available through this API", model)
	default:
		return nil, apperr.New(apperr.ReasonCircuitOpen, "every provider of this model is failing; retry later")
	}
}

// Lists reports whether some provider that a client of format f may reach
// (its own family, or another that allows translation) lists model,
// breakers aside.
func (r *Router) Lists(f Format, model string) bool {
	for _, p := range r.snap.Load().Providers {
		if len(p.Keys) == 0 || (!f.Serves(p.Type) && p.PassthroughOnly) {
			continue
		}
		if _, _, ok := p.Resolve(model); ok {
			return true
		}
	}
	return false
}

// pickKey returns the next key in rotation that is available.
func (p *Provider) pickKey() *ProviderKey {
	n := len(p.Keys)
	start := int(p.next.Add(1) - 1)
	for j := 0; j < n; j++ {
		k := p.Keys[(start+j)%n]
		if k.Breaker.Available() {
			return k
		}
	}
	return nil
}

// order puts the smooth weighted round-robin pick of group first and the
// rest by descending weight.
func (r *Router) order(group []Candidate) []Candidate {
	if len(group) <= 1 {
		return group
	}
	r.mu.Lock()
	total, best := 0, 0
	for j := range group {
		p := group[j].Provider
		p.cur += p.Weight
		total += p.Weight
		if p.cur > group[best].Provider.cur {
			best = j
		}
	}
	group[best].Provider.cur -= total
	r.mu.Unlock()
	group[0], group[best] = group[best], group[0]
	rest := group[1:]
	sort.SliceStable(rest, func(a, b int) bool { return rest[a].Provider.Weight > rest[b].Provider.Weight })
	return group
}

// Models lists the model names that a client of format f can reach and
// allowed admits, sorted: those of every provider of f's family and of
// every other provider that allows translation (a model is served across
// families).
func (r *Router) Models(f Format, allowed func(string) bool) []string {
	seen := map[string]bool{}
	for _, p := range r.snap.Load().Providers {
		if !f.Serves(p.Type) && p.PassthroughOnly {
			continue
		}
		for _, m := range p.ListedModels() {
			if !seen[m] && allowed(m) {
				seen[m] = true
			}
		}
	}
	out := make([]string, 0, len(seen))
	for m := range seen {
		out = append(out, m)
	}
	sort.Strings(out)
	return out
}
