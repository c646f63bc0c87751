package biz

import (
	"context"
	"errors"
	"fmt"
	"net/textproto"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode"

	"github.com/lurus-switch/lurus-switch/lurus-common/apperr"
	"github.com/lurus-switch/lurus-switch/lurus-common/internalapi"
	"github.com/lurus-switch/lurus-switch/lurus-common/modelglob"
	"github.com/lurus-switch/lurus-switch/lurus-common/modelname"
	"github.com/lurus-switch/lurus-switch/lurus-common/netguard"
	"github.com/lurus-switch/lurus-switch/lurus-common/ratelimit"
)

// Limits on a provider configuration.
const (
	MaxNameLen      = 100
	MaxWeight       = 10000
	MaxPriority     = 1_000_000
	MaxModels       = 1000
	MaxMappings     = 1000
	MaxKeys         = 100
	MaxKeyLen       = 4096
	MaxHeaders      = 50
	MaxHeaderValue  = 4096
	MaxTimeoutMs    = int64(time.Hour / time.Millisecond)
	DefaultWeight   = 1
	resolveDeadline = 3 * time.Second
)

// forbiddenHeaders may not be set as extra provider headers: credentials
// belong in keys (encrypted), the rest is the gateway's to set.
var forbiddenHeaders = map[string]bool{
	"Authorization": true, "Proxy-Authorization": true, "Api-Key": true, "X-Api-Key": true,
	"X-Goog-Api-Key": true, "Cookie": true, "Host": true, "Content-Length": true,
	"Transfer-Encoding": true, "Connection": true, "Keep-Alive": true, "Upgrade": true,
	"Te": true, "Trailer": true, "Proxy-Connection": true, "Forwarded": true,
}

// Validator checks and normalizes provider specs.
type Validator struct {
	// Resolver resolves base URL host names for the private-network check
	// (nil: the system resolver).
	Resolver netguard.Resolver
}

// Validate normalizes s in place (trims, deduplicates, canonicalizes header
// names, strips a trailing slash from the base URL) and returns the first
// rule it breaks as an *apperr.Error with a stable reason.
func (v Validator) Validate(ctx context.Context, s *Spec) error {
	for _, check := range []func(context.Context, *Spec) error{
		v.name, v.typ, v.baseURL, v.apiVersion, v.models, v.mapping, v.weights, v.timeouts, v.headers, v.keys,
	} {
		if err := check(ctx, s); err != nil {
			return err
		}
	}
	return nil
}

func (Validator) name(_ context.Context, s *Spec) error {
	s.Name = strings.TrimSpace(s.Name)
	if s.Name == "" || len(s.Name) > MaxNameLen || strings.ContainsFunc(s.Name, unicode.IsControl) {
		return apperr.Newf(apperr.ReasonInvalidArgument, "name is required: 1 to %d printable characters", MaxNameLen)
	}
	return nil
}

func (Validator) typ(_ context.Context, s *Spec) error {
	if !slices.Contains(internalapi.ProviderTypes, s.Type) {
		return apperr.Newf(apperr.ReasonUnknownType, "type %q is not one of %s", s.Type, strings.Join(internalapi.ProviderTypes, ", "))
	}
	return nil
}

func (v Validator) baseURL(ctx context.Context, s *Spec) error {
	raw := strings.TrimSpace(s.BaseURL)
	u, err := url.Parse(raw)
	if err != nil || raw == "" {
		return apperr.Newf(apperr.ReasonInvalidURL, "base_url %q is not a URL", raw)
	}
	switch {
	case u.Scheme != "http" && u.Scheme != "https":
		return apperr.Newf(apperr.ReasonInvalidURL, "base_url must start with http:// or https://, got %q", raw)
	case u.Hostname() == "":
		return apperr.New(apperr.ReasonInvalidURL, "base_url has no host")
	case u.User != nil:
		return apperr.New(apperr.ReasonInvalidURL, "base_url must not carry credentials; put API keys in keys")
	case u.RawQuery != "" || u.Fragment != "" || strings.HasSuffix(raw, "?"):
		return apperr.New(apperr.ReasonInvalidURL, "base_url must not have a query or fragment")
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > 65535 {
			return apperr.Newf(apperr.ReasonInvalidURL, "base_url port %q is out of range", p)
		}
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	if err := vendorConvention(s.Type, u); err != nil {
		return err
	}
	s.BaseURL = u.String()
	if s.AllowPrivateNetwork {
		return nil
	}
	rctx, cancel := context.WithTimeout(ctx, resolveDeadline)
	defer cancel()
	err = netguard.Check(rctx, v.Resolver, u.Hostname())
	switch {
	case errors.Is(err, netguard.ErrPrivate):
		return apperr.Wrap(err, apperr.ReasonPrivateNetwork,
			fmt.Sprintf("base_url host %s is (or resolves to) a private, loopback or link-local address; set allow_private_network to allow it", u.Hostname()))
	case err != nil:
		// Unresolvable now: accepted. The gateway and the prober check the
		// address actually dialed (netguard.Control), which is the real
		// guard; the save-time check only catches mistakes early.
		return nil
	}
	return nil
}

// vendorConvention enforces the base URL forms of DESIGN.md §9 where a
// mistake would double a path segment.
func vendorConvention(typ string, u *url.URL) error {
	last := u.Path[strings.LastIndexByte(u.Path, '/')+1:]
	switch typ {
	case internalapi.TypeAnthropic, internalapi.TypeGemini:
		if last == "v1" || last == "v1beta" || last == "v1alpha" {
			return apperr.Newf(apperr.ReasonInvalidURL,
				"base_url for %s excludes the API version (e.g. https://api.anthropic.com or https://generativelanguage.googleapis.com); drop /%s", typ, last)
		}
	case internalapi.TypeAzureOpenAI:
		if strings.Contains(u.Path, "/openai") {
			return apperr.New(apperr.ReasonInvalidURL, "base_url for azure-openai is the resource endpoint (https://NAME.openai.azure.com), without /openai/...")
		}
	case internalapi.TypeOpenAI:
		if u.Path == "" {
			return apperr.New(apperr.ReasonInvalidURL, "base_url for openai includes the API version, e.g. https://api.openai.com/v1")
		}
	}
	return nil
}

func (Validator) apiVersion(_ context.Context, s *Spec) error {
	s.APIVersion = strings.TrimSpace(s.APIVersion)
	switch s.Type {
	case internalapi.TypeAzureOpenAI:
		if s.APIVersion == "" {
			return apperr.New(apperr.ReasonInvalidArgument, "api_version is required for azure-openai (e.g. 2024-10-21)")
		}
	case internalapi.TypeAnthropic:
		// optional: the anthropic-version header (default 2023-06-01)
	default:
		if s.APIVersion != "" {
			return apperr.Newf(apperr.ReasonInvalidArgument, "api_version applies to azure-openai and anthropic only, not %s", s.Type)
		}
	}
	for _, c := range s.APIVersion {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_') || len(s.APIVersion) > 64 {
			return apperr.Newf(apperr.ReasonInvalidArgument, "api_version %q is malformed", s.APIVersion)
		}
	}
	return nil
}

func (Validator) models(_ context.Context, s *Spec) error {
	if len(s.Models) == 0 {
		return apperr.New(apperr.ReasonEmptyModels, "models must list at least one model name or glob")
	}
	if len(s.Models) > MaxModels {
		return apperr.Newf(apperr.ReasonInvalidArgument, "models has more than %d entries", MaxModels)
	}
	out := make([]string, 0, len(s.Models))
	for _, m := range s.Models {
		m = strings.TrimSpace(m)
		if err := modelglob.Validate(m); err != nil {
			return apperr.Wrap(err, apperr.ReasonInvalidGlob, "models: "+err.Error())
		}
		if !modelglob.IsGlob(m) {
			if err := checkModelName(s.Type, m, "models"); err != nil {
				return err
			}
		}
		if !slices.Contains(out, m) {
			out = append(out, m)
		}
	}
	s.Models = out
	return nil
}

func (Validator) mapping(_ context.Context, s *Spec) error {
	if len(s.ModelMapping) > MaxMappings {
		return apperr.Newf(apperr.ReasonInvalidArgument, "model_mapping has more than %d entries", MaxMappings)
	}
	out := make(map[string]string, len(s.ModelMapping))
	for alias, upstream := range s.ModelMapping {
		alias, upstream = strings.TrimSpace(alias), strings.TrimSpace(upstream)
		if err := modelglob.Validate(alias); err != nil {
			return apperr.Wrap(err, apperr.ReasonInvalidGlob, "model_mapping alias: "+err.Error())
		}
		if err := modelglob.Validate(upstream); err != nil || modelglob.IsGlob(upstream) {
			return apperr.Newf(apperr.ReasonInvalidGlob, "model_mapping[%q]: the upstream model must be one exact name, got %q", alias, upstream)
		}
		if !modelglob.IsGlob(alias) {
			if err := checkModelName("", alias, "model_mapping alias"); err != nil {
				return err
			}
		}
		if err := checkModelName(s.Type, upstream, fmt.Sprintf("model_mapping[%q]", alias)); err != nil {
			return err
		}
		out[alias] = upstream
	}
	s.ModelMapping = out
	return nil
}

// checkModelName refuses an exact model name (a served model, an alias,
// a mapping target) outside the lurus-common/modelname grammar that the
// gateway applies to every client's model: such a name could never be
// requested, or could not be put into an upstream URL safely. For
// providers whose model is a URL path segment (Gemini's model, Azure's
// deployment) it must also be one segment without ':'.
func checkModelName(typ, name, field string) error {
	check := modelname.Check
	if typ == internalapi.TypeGemini || typ == internalapi.TypeAzureOpenAI {
		check = modelname.CheckSegment
	}
	if err := check(name); err != nil {
		return apperr.New(apperr.ReasonInvalidModelName, field+": "+err.Error())
	}
	return nil
}

func (Validator) weights(_ context.Context, s *Spec) error {
	if s.Weight < 0 || s.Weight > MaxWeight {
		return apperr.Newf(apperr.ReasonInvalidWeight, "weight must be between 0 and %d, got %d", MaxWeight, s.Weight)
	}
	if s.Priority < -MaxPriority || s.Priority > MaxPriority {
		return apperr.Newf(apperr.ReasonInvalidArgument, "priority must be between %d and %d", -MaxPriority, MaxPriority)
	}
	return nil
}

func (Validator) timeouts(_ context.Context, s *Spec) error {
	t := s.Timeouts
	for name, v := range map[string]int64{"connect_ms": t.ConnectMs, "first_byte_ms": t.FirstByteMs, "idle_ms": t.IdleMs, "total_ms": t.TotalMs} {
		if v < 0 || v > MaxTimeoutMs {
			return apperr.Newf(apperr.ReasonInvalidArgument, "timeouts.%s must be between 0 (gateway default) and %d", name, MaxTimeoutMs)
		}
	}
	if t.TotalMs > 0 && (t.FirstByteMs > t.TotalMs || t.ConnectMs > t.TotalMs) {
		return apperr.New(apperr.ReasonInvalidArgument, "timeouts: connect_ms and first_byte_ms cannot exceed total_ms")
	}
	return nil
}

func (Validator) headers(_ context.Context, s *Spec) error {
	if len(s.Headers) > MaxHeaders {
		return apperr.Newf(apperr.ReasonInvalidArgument, "headers has more than %d entries", MaxHeaders)
	}
	out := make(map[string]string, len(s.Headers))
	for name, value := range s.Headers {
		if !validHeaderName(name) {
			return apperr.Newf(apperr.ReasonInvalidArgument, "headers: %q is not a valid header name", name)
		}
		canon := textproto.CanonicalMIMEHeaderKey(name)
		if forbiddenHeaders[canon] || strings.HasPrefix(canon, "X-Forwarded-") {
			return apperr.Newf(apperr.ReasonInvalidArgument, "headers: %s may not be set here (credentials go in keys; the gateway sets the rest)", canon)
		}
		if _, dup := out[canon]; dup {
			return apperr.Newf(apperr.ReasonInvalidArgument, "headers: %s given twice", canon)
		}
		if len(value) > MaxHeaderValue || strings.ContainsAny(value, "\r\n\x00") {
			return apperr.Newf(apperr.ReasonInvalidArgument, "headers: value of %s is too long or has a line break", canon)
		}
		out[canon] = value
	}
	s.Headers = out
	return nil
}

func validHeaderName(n string) bool {
	if n == "" || len(n) > 128 {
		return false
	}
	for i := 0; i < len(n); i++ {
		c := n[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0) {
			return false
		}
	}
	return true
}

func (Validator) keys(_ context.Context, s *Spec) error {
	if len(s.Keys) > MaxKeys {
		return apperr.Newf(apperr.ReasonInvalidArgument, "keys has more than %d entries", MaxKeys)
	}
	seen := map[string]bool{}
	for i, k := range s.Keys {
		if err := ValidateKeyInput(&k); err != nil {
			return err
		}
		ref := "id:" + k.ID
		if k.Secret != "" {
			ref = "secret:" + k.Secret
		}
		if seen[ref] {
			return apperr.Newf(apperr.ReasonInvalidArgument, "keys[%d] repeats an earlier key", i)
		}
		seen[ref] = true
		s.Keys[i] = k
	}
	return nil
}

// ValidateKeyInput checks one key of a request: a new secret (printable, no
// whitespace, at most MaxKeyLen) or a reference by id, not both, and its
// limits (0..ratelimit.MaxLimit).
func ValidateKeyInput(k *KeyInput) error {
	k.Secret = strings.TrimSpace(k.Secret)
	k.ID = strings.TrimSpace(k.ID)
	switch {
	case k.Secret == "" && k.ID == "":
		return apperr.New(apperr.ReasonInvalidArgument, "a key needs a non-empty key (new) or id (existing)")
	case k.Secret != "" && k.ID != "":
		return apperr.New(apperr.ReasonInvalidArgument, "a key is either new (key) or existing (id), not both")
	case len(k.Secret) > MaxKeyLen || strings.ContainsFunc(k.Secret, func(r rune) bool { return unicode.IsSpace(r) || unicode.IsControl(r) }):
		return apperr.Newf(apperr.ReasonInvalidArgument, "a key must be at most %d characters without whitespace", MaxKeyLen)
	}
	for _, f := range []struct {
		name string
		v    *int64
	}{{"rpm_limit", k.RPMLimit}, {"tpm_limit", k.TPMLimit}} {
		if f.v == nil {
			continue
		}
		if err := ratelimit.CheckLimit(f.name, *f.v); err != nil {
			return apperr.Wrap(err, apperr.ReasonInvalidArgument, "keys: "+err.Error())
		}
	}
	return nil
}

// Mask returns the display form of an upstream key: its vendor prefix (up
// to the first '-', if short) or first characters, an ellipsis, and the
// last four characters, e.g. "sk-…abcd". Short keys show less.
func Mask(secret string) string {
	switch {
	case len(secret) < 8:
		return "…"
	case len(secret) < 12:
		return "…" + secret[len(secret)-2:]
	}
	prefix := secret[:4]
	if i := strings.IndexByte(secret, '-'); i > 0 && i < 4 {
		prefix = secret[:i+1]
	}
	return prefix + "…" + secret[len(secret)-4:]
}
