// Package config loads a service's YAML configuration: ${ENV} references are
// expanded, unknown keys are errors, defaults are applied before decoding and
// Validate runs after. Secrets never live in YAML; they come from the
// environment through Secret.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strings"

	"gopkg.in/yaml.v3"
)

// Defaulter is implemented by config structs that set their defaults. It is
// called before decoding, so values in the file override defaults.
type Defaulter interface {
	SetDefaults()
}

// Validator is implemented by config structs that check themselves after
// loading.
type Validator interface {
	Validate() error
}

// Load reads the YAML file at path into dst (a pointer to a struct).
func Load(path string, dst any) error {
	raw, err := os.ReadFile(path)
	if err != nil {
		return fmt.Errorf("config: %w", err)
	}
	if err := Decode(raw, dst); err != nil {
		return fmt.Errorf("config %s: %w", path, err)
	}
	return nil
}

// Decode is Load for bytes already read.
func Decode(raw []byte, dst any) error {
	if d, ok := dst.(Defaulter); ok {
		d.SetDefaults()
	}
	expanded, err := Expand(string(raw))
	if err != nil {
		return err
	}
	dec := yaml.NewDecoder(bytes.NewReader([]byte(expanded)))
	dec.KnownFields(true)
	if err := dec.Decode(dst); err != nil && !errors.Is(err, io.EOF) {
		return err
	}
	if v, ok := dst.(Validator); ok {
		if err := v.Validate(); err != nil {
			return fmt.Errorf("invalid: %w", err)
		}
	}
	return nil
}

// Expand replaces ${NAME} and ${NAME:-default} with environment values. A
// ${NAME} without default whose variable is unset is an error, so a missing
// setting fails at start instead of silently becoming empty. "$$" is a
// literal "$".
func Expand(s string) (string, error) {
	var out strings.Builder
	var missing []string
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c != '$' || i+1 >= len(s) {
			out.WriteByte(c)
			continue
		}
		switch s[i+1] {
		case '$':
			out.WriteByte('$')
			i++
			continue
		case '{':
		default:
			out.WriteByte(c)
			continue
		}
		end := strings.IndexByte(s[i+2:], '}')
		if end < 0 {
			return "", fmt.Errorf("unterminated ${ at offset %d", i)
		}
		expr := s[i+2 : i+2+end]
		name, def, hasDef := strings.Cut(expr, ":-")
		if v, ok := os.LookupEnv(name); ok && (v != "" || !hasDef) {
			out.WriteString(v)
		} else if hasDef {
			out.WriteString(def)
		} else {
			missing = append(missing, name)
		}
		i += 2 + end
	}
	if len(missing) > 0 {
		return "", fmt.Errorf("environment variables not set: %s", strings.Join(missing, ", "))
	}
	return out.String(), nil
}

// DevMarker is contained in every development-only secret in dev.env.
const DevMarker = "dev-only"

// IsDev reports whether LURUS_ENV=dev, the only mode that accepts the
// development secrets.
func IsDev() bool { return os.Getenv("LURUS_ENV") == "dev" }

// Secret returns the environment variable name, which must be set. A value
// containing DevMarker is refused unless IsDev, so a production deployment
// cannot start with the committed development secrets.
func Secret(name string) (string, error) {
	v := os.Getenv(name)
	if v == "" {
		return "", fmt.Errorf("config: secret %s is not set", name)
	}
	if strings.Contains(v, DevMarker) && !IsDev() {
		return "", fmt.Errorf("config: %s holds a development-only value; set LURUS_ENV=dev or a real secret", name)
	}
	return v, nil
}

// Secrets returns the named secrets, failing on the first that Secret
// refuses.
func Secrets(names ...string) (map[string]string, error) {
	out := make(map[string]string, len(names))
	for _, n := range names {
		v, err := Secret(n)
		if err != nil {
			return nil, err
		}
		out[n] = v
	}
	return out, nil
}

// ApplyGCPercent sets the garbage collector's target from a service's
// config (its runtime.gc_percent), unless the operator set GOGC in the
// environment, which always wins. 0 leaves the Go default. It reports
// whether it changed the setting.
func ApplyGCPercent(percent int) bool {
	if percent == 0 || os.Getenv("GOGC") != "" {
		return false
	}
	debug.SetGCPercent(percent)
	return true
}

// Default sets *p to v when *p holds its zero value: the one line each
// field of a SetDefaults method needs.
func Default[T comparable](p *T, v T) {
	var zero T
	if *p == zero {
		*p = v
	}
}
