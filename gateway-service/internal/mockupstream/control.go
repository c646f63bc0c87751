package mockupstream

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultChunks is the number of reply chunks when nothing else is set.
const DefaultChunks = 5

// Limits on control values, so a typo cannot make the mock allocate or sleep
// without bound.
const (
	maxChunks     = 100_000
	maxDurationMs = 3_600_000
)

// Hang modes for Settings.Hang and the X-Mock-Hang header.
const (
	// HangFirstByte never answers: no status line, no byte, until the client goes.
	HangFirstByte = "first_byte"
	// HangMid sends the status, the headers and the first chunk (half the body
	// for a JSON reply), then sends nothing more until the client goes.
	HangMid = "mid"
	// HangNone turns a hang set by a lower layer off.
	HangNone = "none"
)

// Settings are the control knobs of one request. The same settings come from
// three layers, each overriding the one before: the command-line defaults
// (Options.Defaults), a named scenario (PUT /__scenarios/<name>, picked with
// the X-Mock-Scenario header) and the X-Mock-* request headers. A nil field
// leaves the lower layer's value alone. The JSON form is the body of
// PUT /__scenarios/<name>.
type Settings struct {
	// LatencyMs delays the first byte (X-Mock-Latency-Ms).
	LatencyMs *int `json:"latency_ms,omitempty"`
	// Chunks is the number of reply chunks (X-Mock-Chunks); 0 to 100000.
	Chunks *int `json:"chunks,omitempty"`
	// GapMs is the pause between two reply chunks of a stream (X-Mock-Gap-Ms).
	GapMs *int `json:"gap_ms,omitempty"`
	// Status fails the request before the first byte with this HTTP status,
	// in the caller's error format (X-Mock-Status). A value below 400 means
	// "do not fail" and so turns off a failure set by a lower layer.
	Status *int `json:"status,omitempty"`
	// CutAfter drops a streaming connection abruptly after that many content
	// chunks, before any finish, usage or [DONE] event (X-Mock-Cut-After).
	// A negative value turns a cut set by a lower layer off.
	CutAfter *int `json:"cut_after,omitempty"`
	// Hang is HangFirstByte, HangMid or HangNone (X-Mock-Hang).
	Hang *string `json:"hang,omitempty"`
	// NoUsage omits every usage field from the reply (X-Mock-No-Usage).
	NoUsage *bool `json:"no_usage,omitempty"`
	// Usage fixes some or all token counts (X-Mock-Usage).
	Usage *UsageOverride `json:"usage,omitempty"`
	// FailRate answers 500 with this probability, 0 to 1 (X-Mock-Fail-Rate).
	FailRate *float64 `json:"fail_rate,omitempty"`
	// RequireKey, when not empty, is the only upstream key accepted; every key
	// the request presents must equal it (X-Mock-Require-Key).
	RequireKey *string `json:"require_key,omitempty"`
	// ToolCall, when not empty, makes every chat, Responses, Messages and
	// Gemini generate reply a call of the function of this name with the
	// arguments FixedToolArguments, whatever tools the request declares
	// (X-Mock-Tool-Call). Tests of tool-call translation can then drive a
	// call through the gateway and know exactly what must come out. The
	// value ToolCallNone turns a call set by a lower layer off.
	ToolCall *string `json:"tool_call,omitempty"`
}

// ToolCallNone as Settings.ToolCall or the X-Mock-Tool-Call header turns a
// forced tool call set by a lower layer off.
const ToolCallNone = "none"

// UsageOverride fixes token counts that are otherwise derived from the
// request and the chunk count. Its JSON form is either an object
// {"prompt":12,"completion":34,"cached":5,"cache_write":2,"reasoning":7} or
// the header string "prompt=12,completion=34,cached=5,cache_write=2,reasoning=7";
// any subset of the keys may be given.
type UsageOverride struct {
	Prompt     *int `json:"prompt,omitempty"`
	Completion *int `json:"completion,omitempty"`
	Cached     *int `json:"cached,omitempty"`
	CacheWrite *int `json:"cache_write,omitempty"`
	Reasoning  *int `json:"reasoning,omitempty"`
}

// UnmarshalJSON accepts the object form and the header string form.
func (u *UsageOverride) UnmarshalJSON(data []byte) error {
	if len(data) > 0 && data[0] == '"' {
		var s string
		if err := json.Unmarshal(data, &s); err != nil {
			return err
		}
		parsed, err := ParseUsageOverride(s)
		if err != nil {
			return err
		}
		*u = parsed
		return nil
	}
	type plain UsageOverride
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	var p plain
	if err := dec.Decode(&p); err != nil {
		return fmt.Errorf("usage: %w", err)
	}
	for _, v := range []*int{p.Prompt, p.Completion, p.Cached, p.CacheWrite, p.Reasoning} {
		if v != nil && *v < 0 {
			return errors.New("usage: token counts must not be negative")
		}
	}
	*u = UsageOverride(p)
	return nil
}

// ParseUsageOverride parses the X-Mock-Usage header form
// "prompt=12,completion=34,cached=5,cache_write=2,reasoning=7".
func ParseUsageOverride(s string) (UsageOverride, error) {
	var u UsageOverride
	for part := range strings.SplitSeq(s, ",") {
		part = strings.TrimSpace(part)
		if part == "" {
			continue
		}
		key, val, ok := strings.Cut(part, "=")
		if !ok {
			return u, fmt.Errorf("usage: %q is not key=value", part)
		}
		n, err := strconv.Atoi(strings.TrimSpace(val))
		if err != nil || n < 0 {
			return u, fmt.Errorf("usage: %q is not a count", part)
		}
		switch strings.TrimSpace(key) {
		case "prompt":
			u.Prompt = &n
		case "completion":
			u.Completion = &n
		case "cached":
			u.Cached = &n
		case "cache_write":
			u.CacheWrite = &n
		case "reasoning":
			u.Reasoning = &n
		default:
			return u, fmt.Errorf("usage: unknown key %q", key)
		}
	}
	return u, nil
}

// DecodeSettings decodes and checks the JSON form of Settings; unknown
// fields are an error so that a misspelt knob is not silently ignored.
func DecodeSettings(data []byte) (Settings, error) {
	var s Settings
	dec := json.NewDecoder(strings.NewReader(string(data)))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return s, err
	}
	var p plan
	if err := p.apply(&s); err != nil {
		return s, err
	}
	return s, nil
}

// plan is the resolved control of one request.
type plan struct {
	latency    time.Duration
	gap        time.Duration
	chunks     int
	status     int  // >= 400: fail with it
	cutAfter   int  // < 0: no cut
	hang       byte // 0, hangFirstByte or hangMid
	noUsage    bool
	usage      UsageOverride
	failRate   float64
	requireKey string
	toolCall   string // forced tool call, "" for none
}

const (
	hangFirstByte byte = 1 + iota
	hangMid
)

// basePlan is the plan before any layer is applied.
func basePlan() plan { return plan{chunks: DefaultChunks, cutAfter: -1} }

// apply overlays the non-nil fields of s onto p, checking each value.
func (p *plan) apply(s *Settings) error {
	if s.LatencyMs != nil {
		d, err := checkMs("latency_ms", *s.LatencyMs)
		if err != nil {
			return err
		}
		p.latency = d
	}
	if s.GapMs != nil {
		d, err := checkMs("gap_ms", *s.GapMs)
		if err != nil {
			return err
		}
		p.gap = d
	}
	if s.Chunks != nil {
		if *s.Chunks < 0 || *s.Chunks > maxChunks {
			return fmt.Errorf("chunks must be 0..%d", maxChunks)
		}
		p.chunks = *s.Chunks
	}
	if s.Status != nil {
		if *s.Status < 0 || *s.Status > 599 {
			return errors.New("status must be an HTTP status")
		}
		p.status = *s.Status
	}
	if s.CutAfter != nil {
		p.cutAfter = *s.CutAfter
	}
	if s.Hang != nil {
		switch *s.Hang {
		case HangFirstByte:
			p.hang = hangFirstByte
		case HangMid:
			p.hang = hangMid
		case HangNone, "":
			p.hang = 0
		default:
			return fmt.Errorf("hang must be %q, %q or %q", HangFirstByte, HangMid, HangNone)
		}
	}
	if s.NoUsage != nil {
		p.noUsage = *s.NoUsage
	}
	if s.Usage != nil {
		p.usage.merge(s.Usage)
	}
	if s.FailRate != nil {
		if *s.FailRate < 0 || *s.FailRate > 1 {
			return errors.New("fail_rate must be 0..1")
		}
		p.failRate = *s.FailRate
	}
	if s.RequireKey != nil {
		p.requireKey = *s.RequireKey
	}
	if s.ToolCall != nil {
		switch name := *s.ToolCall; {
		case name == "" || name == ToolCallNone:
			p.toolCall = ""
		case validName(name):
			p.toolCall = name
		default:
			return errors.New("tool_call must be 1-128 of [A-Za-z0-9._-]")
		}
	}
	return nil
}

func (u *UsageOverride) merge(o *UsageOverride) {
	if o.Prompt != nil {
		u.Prompt = o.Prompt
	}
	if o.Completion != nil {
		u.Completion = o.Completion
	}
	if o.Cached != nil {
		u.Cached = o.Cached
	}
	if o.CacheWrite != nil {
		u.CacheWrite = o.CacheWrite
	}
	if o.Reasoning != nil {
		u.Reasoning = o.Reasoning
	}
}

func checkMs(name string, ms int) (time.Duration, error) {
	if ms < 0 || ms > maxDurationMs {
		return 0, fmt.Errorf("%s must be 0..%d", name, maxDurationMs)
	}
	return time.Duration(ms) * time.Millisecond, nil
}

// Control request headers.
const (
	HeaderScenario   = "X-Mock-Scenario"
	HeaderLatencyMs  = "X-Mock-Latency-Ms"
	HeaderChunks     = "X-Mock-Chunks"
	HeaderGapMs      = "X-Mock-Gap-Ms"
	HeaderStatus     = "X-Mock-Status"
	HeaderCutAfter   = "X-Mock-Cut-After"
	HeaderHang       = "X-Mock-Hang"
	HeaderNoUsage    = "X-Mock-No-Usage"
	HeaderUsage      = "X-Mock-Usage"
	HeaderFailRate   = "X-Mock-Fail-Rate"
	HeaderRequireKey = "X-Mock-Require-Key"
	HeaderToolCall   = "X-Mock-Tool-Call"
)

// settingsFromHeaders reads the X-Mock-* headers. Most requests carry none,
// so the common path is a handful of map misses and no allocation.
func settingsFromHeaders(h http.Header) (Settings, error) {
	var s Settings
	intHeader := func(name string, dst **int) error {
		v := h.Get(name)
		if v == "" {
			return nil
		}
		n, err := strconv.Atoi(strings.TrimSpace(v))
		if err != nil {
			return fmt.Errorf("%s: %q is not an integer", name, v)
		}
		*dst = &n
		return nil
	}
	for _, f := range []struct {
		name string
		dst  **int
	}{
		{HeaderLatencyMs, &s.LatencyMs},
		{HeaderChunks, &s.Chunks},
		{HeaderGapMs, &s.GapMs},
		{HeaderStatus, &s.Status},
	} {
		if err := intHeader(f.name, f.dst); err != nil {
			return s, err
		}
	}
	if v := h.Get(HeaderCutAfter); v != "" {
		n := -1
		if v != "off" {
			var err error
			if n, err = strconv.Atoi(strings.TrimSpace(v)); err != nil {
				return s, fmt.Errorf("%s: %q is not an integer or \"off\"", HeaderCutAfter, v)
			}
		}
		s.CutAfter = &n
	}
	if v := h.Get(HeaderHang); v != "" {
		s.Hang = &v
	}
	if v := h.Get(HeaderNoUsage); v != "" {
		b, err := strconv.ParseBool(strings.TrimSpace(v))
		if err != nil {
			return s, fmt.Errorf("%s: %q is not a boolean", HeaderNoUsage, v)
		}
		s.NoUsage = &b
	}
	if v := h.Get(HeaderUsage); v != "" {
		u, err := ParseUsageOverride(v)
		if err != nil {
			return s, fmt.Errorf("%s: %w", HeaderUsage, err)
		}
		s.Usage = &u
	}
	if v := h.Get(HeaderFailRate); v != "" {
		f, err := strconv.ParseFloat(strings.TrimSpace(v), 64)
		if err != nil {
			return s, fmt.Errorf("%s: %q is not a number", HeaderFailRate, v)
		}
		s.FailRate = &f
	}
	if v := h.Get(HeaderRequireKey); v != "" {
		s.RequireKey = &v
	}
	if v := h.Get(HeaderToolCall); v != "" {
		v = strings.TrimSpace(v)
		s.ToolCall = &v
	}
	return s, nil
}

// hasControlHeaders reports whether any X-Mock-* header is present, so the
// request path can skip header parsing entirely when there is none.
func hasControlHeaders(h http.Header) bool {
	for k := range h {
		if len(k) > 7 && k[:7] == "X-Mock-" {
			return true
		}
	}
	return false
}

// failNow reports the status to fail with before the first byte, or 0.
func (p *plan) failNow() int {
	if p.status >= 400 {
		return p.status
	}
	if p.failRate > 0 && rand.Float64() < p.failRate {
		return http.StatusInternalServerError
	}
	return 0
}

// scenarioStore holds the named scenarios. Reads are lock-free (an atomic
// pointer to an immutable map); writes copy the map under a mutex, which is
// fine for a table changed a few times per test.
type scenarioStore struct {
	mu sync.Mutex
	m  atomic.Pointer[map[string]Settings]
}

func (st *scenarioStore) get(name string) (Settings, bool) {
	m := st.m.Load()
	if m == nil {
		return Settings{}, false
	}
	s, ok := (*m)[name]
	return s, ok
}

func (st *scenarioStore) all() map[string]Settings {
	if m := st.m.Load(); m != nil {
		return *m
	}
	return map[string]Settings{}
}

func (st *scenarioStore) update(name string, s *Settings) {
	st.mu.Lock()
	defer st.mu.Unlock()
	next := make(map[string]Settings)
	if m := st.m.Load(); m != nil {
		for k, v := range *m {
			next[k] = v
		}
	}
	if s == nil {
		delete(next, name)
	} else {
		next[name] = *s
	}
	st.m.Store(&next)
}

// validName keeps scenario names usable in a URL path segment and forced
// tool names plain identifiers (a test needing a name one vendor refuses,
// such as one with a dot for OpenAI, can still pick it).
func validName(name string) bool {
	if name == "" || len(name) > 128 {
		return false
	}
	for i := 0; i < len(name); i++ {
		c := name[i]
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}
