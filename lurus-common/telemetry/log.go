// Package telemetry sets up the three signals every service emits: JSON logs
// through a handler that redacts secrets, Prometheus metrics on a private
// registry, and OpenTelemetry traces configured by the standard OTEL_*
// environment variables.
package telemetry

import (
	"context"
	"io"
	"log/slog"
	"net/http"
	"regexp"
	"strings"
)

// NewLogger returns a JSON slog logger for service at level, writing to w,
// with every record passed through the redacting handler.
func NewLogger(w io.Writer, service string, level slog.Leveler) *slog.Logger {
	h := slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level})
	return slog.New(NewRedactingHandler(h)).With("service", service)
}

// ParseLevel maps "debug", "info", "warn", "error" to a level (info when
// unknown).
func ParseLevel(s string) slog.Level {
	var l slog.Level
	if err := l.UnmarshalText([]byte(s)); err != nil {
		return slog.LevelInfo
	}
	return l
}

// Redacted replaces a secret value in logs.
const Redacted = "[REDACTED]"

// secretPatterns match secrets inside free text: API keys in the sk-… form
// (OpenAI, Anthropic, Lurus), Google API keys, bearer credentials.
var secretPatterns = []*regexp.Regexp{
	regexp.MustCompile(`sk-[A-Za-z0-9_\-]{6,}`),
	regexp.MustCompile(`AIza[0-9A-Za-z_\-]{20,}`),
	regexp.MustCompile(`(?i)(bearer|basic)\s+[A-Za-z0-9._~+/=\-]{6,}`),
}

// secretKeys are attribute names (compared case-insensitively, '-' and '_'
// ignored) whose values are always secrets.
var secretKeys = map[string]bool{
	"authorization": true, "apikey": true, "xapikey": true, "xgoogapikey": true,
	"key": true, "token": true, "secret": true, "password": true, "pepper": true,
	"cookie": true, "setcookie": true, "accesstoken": true, "refreshtoken": true,
	"ticket": true, "secretkey": true, "admintoken": true, "internaltoken": true,
}

// maxSecretKey is the length of the longest normalized secretKeys name.
const maxSecretKey = 16

// IsSecretKey reports whether an attribute or header name always holds a
// secret. It runs for every attribute of every log line, so it normalizes
// into a stack buffer instead of allocating.
func IsSecretKey(name string) bool {
	var buf [maxSecretKey]byte
	n := 0
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case c == '-' || c == '_':
			continue
		case 'A' <= c && c <= 'Z':
			c += 'a' - 'A'
		}
		if n == len(buf) {
			return false // longer than any secret name
		}
		buf[n] = c
		n++
	}
	return secretKeys[string(buf[:n])]
}

// mayHoldSecret is a cheap first look: every secret pattern contains one of
// these, so most strings (paths, ids, model names) skip the regexps.
func mayHoldSecret(s string) bool {
	if strings.Contains(s, "sk-") || strings.Contains(s, "AIza") {
		return true
	}
	for i := 0; i+5 <= len(s); i++ {
		switch s[i] | 0x20 { // "bearer", "basic", case-insensitive
		case 'b':
			if w := strings.ToLower(s[i:min(i+6, len(s))]); strings.HasPrefix(w, "bearer") || strings.HasPrefix(w, "basic") {
				return true
			}
		}
	}
	return false
}

// RedactString removes every secret pattern from s.
func RedactString(s string) string {
	if !mayHoldSecret(s) {
		return s
	}
	for _, re := range secretPatterns {
		if re.MatchString(s) {
			s = re.ReplaceAllStringFunc(s, func(m string) string {
				if i := strings.IndexByte(m, ' '); i > 0 && !strings.HasPrefix(m, "sk-") {
					return m[:i+1] + Redacted
				}
				return Redacted
			})
		}
	}
	return s
}

// RedactingHandler is a slog.Handler that redacts secrets before the wrapped
// handler sees them: values of secret-named attributes entirely, and secret
// patterns inside any string value or the message. It is the one place
// redaction happens, so no call site has to remember it.
type RedactingHandler struct {
	next slog.Handler
}

// NewRedactingHandler wraps next.
func NewRedactingHandler(next slog.Handler) *RedactingHandler {
	return &RedactingHandler{next: next}
}

// Enabled implements slog.Handler.
func (h *RedactingHandler) Enabled(ctx context.Context, l slog.Level) bool {
	return h.next.Enabled(ctx, l)
}

// Handle implements slog.Handler.
func (h *RedactingHandler) Handle(ctx context.Context, r slog.Record) error {
	// Most records hold nothing to redact: pass them on as they are.
	clean := RedactString(r.Message) == r.Message
	if clean {
		r.Attrs(func(a slog.Attr) bool {
			clean = attrClean(a)
			return clean
		})
	}
	if clean {
		return h.next.Handle(ctx, r)
	}
	nr := slog.NewRecord(r.Time, r.Level, RedactString(r.Message), r.PC)
	r.Attrs(func(a slog.Attr) bool {
		nr.AddAttrs(redactAttr(a))
		return true
	})
	return h.next.Handle(ctx, nr)
}

// WithAttrs implements slog.Handler.
func (h *RedactingHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	red := make([]slog.Attr, len(attrs))
	for i, a := range attrs {
		red[i] = redactAttr(a)
	}
	return &RedactingHandler{next: h.next.WithAttrs(red)}
}

// WithGroup implements slog.Handler.
func (h *RedactingHandler) WithGroup(name string) slog.Handler {
	return &RedactingHandler{next: h.next.WithGroup(name)}
}

// attrClean reports, cheaply, that redactAttr would leave a unchanged; any
// kind it does not know answers false (the slow path then decides).
func attrClean(a slog.Attr) bool {
	switch a.Value.Kind() {
	case slog.KindString:
		s := a.Value.String()
		return !IsSecretKey(a.Key) && !mayHoldSecret(s)
	case slog.KindInt64, slog.KindUint64, slog.KindFloat64, slog.KindBool, slog.KindDuration, slog.KindTime:
		return !IsSecretKey(a.Key)
	}
	return false
}

func redactAttr(a slog.Attr) slog.Attr {
	v := a.Value.Resolve()
	if IsSecretKey(a.Key) && v.Kind() != slog.KindGroup {
		return slog.String(a.Key, Redacted)
	}
	switch v.Kind() {
	case slog.KindString:
		return slog.String(a.Key, RedactString(v.String()))
	case slog.KindGroup:
		g := v.Group()
		red := make([]any, len(g))
		for i, ga := range g {
			red[i] = redactAttr(ga)
		}
		return slog.Group(a.Key, red...)
	case slog.KindAny:
		switch x := v.Any().(type) {
		case error:
			return slog.String(a.Key, RedactString(x.Error()))
		case []string:
			out := make([]string, len(x))
			for i, s := range x {
				out[i] = RedactString(s)
			}
			return slog.Any(a.Key, out)
		case http.Header:
			return slog.Any(a.Key, redactHeader(x))
		case map[string][]string:
			return slog.Any(a.Key, redactHeader(x))
		case interface{ String() string }:
			return slog.String(a.Key, RedactString(x.String()))
		}
	}
	return slog.Attr{Key: a.Key, Value: v}
}

func redactHeader(x map[string][]string) map[string][]string {
	out := make(map[string][]string, len(x))
	for k, vs := range x {
		if IsSecretKey(k) {
			out[k] = []string{Redacted}
			continue
		}
		rv := make([]string, len(vs))
		for i, s := range vs {
			rv[i] = RedactString(s)
		}
		out[k] = rv
	}
	return out
}
