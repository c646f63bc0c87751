package biz

import (
	"strings"

	"github.com/lurus-switch/lurus-switch/lurus-common/apperr"
)

// OriginPolicy decides which browser origins may open a socket or ask for a
// ticket. Patterns are "scheme://host[:port]" (exact, case-insensitive) or
// "scheme://*.domain[:port]" (any subdomain of domain, not domain itself).
type OriginPolicy struct {
	exact  map[string]bool
	suffix []originSuffix
}

type originSuffix struct {
	scheme, suffix string // suffix is ".domain[:port]"
}

// NewOriginPolicy compiles patterns (already validated by conf).
func NewOriginPolicy(patterns []string) *OriginPolicy {
	p := &OriginPolicy{exact: map[string]bool{}}
	for _, pat := range patterns {
		pat = strings.ToLower(strings.TrimRight(pat, "/"))
		scheme, host, _ := strings.Cut(pat, "://")
		if rest, ok := strings.CutPrefix(host, "*."); ok {
			p.suffix = append(p.suffix, originSuffix{scheme: scheme, suffix: "." + rest})
			continue
		}
		p.exact[pat] = true
	}
	return p
}

// Check admits a request's Origin header. An empty origin (a client that
// is not a browser) is admitted only when allowEmpty is set: callers pass
// true when the client authenticated with a header, which a browser page
// cannot send on a WebSocket.
func (p *OriginPolicy) Check(origin string, allowEmpty bool) error {
	if origin == "" {
		if allowEmpty {
			return nil
		}
		return apperr.New(apperr.ReasonOriginForbidden, "an allowed Origin is required with a ticket")
	}
	if p.Allowed(origin) {
		return nil
	}
	return apperr.New(apperr.ReasonOriginForbidden, "origin not allowed")
}

// Allowed reports whether a non-empty origin matches a pattern.
func (p *OriginPolicy) Allowed(origin string) bool {
	o := strings.ToLower(origin)
	if p.exact[o] {
		return true
	}
	scheme, host, ok := strings.Cut(o, "://")
	if !ok || host == "" || strings.ContainsAny(host, "/?#@") {
		return false
	}
	for _, s := range p.suffix {
		if s.scheme == scheme && strings.HasSuffix(host, s.suffix) && len(host) > len(s.suffix) {
			return true
		}
	}
	return false
}
