// Package config loads a service's YAML configuration: ${ENV} references in
// its values are expanded, unknown keys are errors, defaults are applied before decoding and
// Validate runs after. Secrets never live in YAML; they come from the
// environment through Secret.
package config

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"reflect"
	"runtime/debug"
	"slices"
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

// Renamer is implemented by config structs some of whose keys or
// environment variables were renamed. Renamed maps each old name to its
// replacement: a dotted key path ("http.listen": "server.addr") or, with
// a leading "$", an environment variable ("$LURUS_LOG_LISTEN":
// "$LURUS_LOG_ADDR"). A file or environment that still uses an old name
// fails to load with an error naming the new one, instead of "field not
// found" or a setting silently ignored.
type Renamer interface {
	Renamed() map[string]string
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

// Decode is Load for bytes already read. The YAML is parsed first and
// environment references are expanded in the parsed scalar values (see
// ExpandNode), so a comment is never expanded and no value, whatever it
// holds, can change the document's structure.
func Decode(raw []byte, dst any) error {
	if d, ok := dst.(Defaulter); ok {
		d.SetDefaults()
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(raw, &doc); err != nil {
		return err
	}
	if err := checkRenamed(&doc, dst); err != nil {
		return err
	}
	if doc.Kind != 0 {
		if err := unknownKeys(raw, dst); err != nil {
			return err
		}
		if err := ExpandNode(&doc); err != nil {
			return err
		}
		if err := doc.Decode(dst); err != nil {
			return err
		}
	}
	if v, ok := dst.(Validator); ok {
		if err := v.Validate(); err != nil {
			return fmt.Errorf("invalid: %w", err)
		}
	}
	return nil
}

// checkRenamed fails on every old name of dst's Renamed still in use.
func checkRenamed(doc *yaml.Node, dst any) error {
	r, ok := dst.(Renamer)
	if !ok {
		return nil
	}
	var used []string
	for old, repl := range r.Renamed() {
		if env, ok := strings.CutPrefix(old, "$"); ok {
			if _, set := os.LookupEnv(env); set {
				used = append(used, fmt.Sprintf("environment variable %s is now %s", env, strings.TrimPrefix(repl, "$")))
			}
		} else if n := lookup(doc, strings.Split(old, ".")); n != nil {
			used = append(used, fmt.Sprintf("line %d: key %s is now %s", n.Line, old, repl))
		}
	}
	if len(used) == 0 {
		return nil
	}
	slices.Sort(used)
	return fmt.Errorf("renamed settings: %s", strings.Join(used, "; "))
}

// lookup returns the key node at path below n, or nil.
func lookup(n *yaml.Node, path []string) *yaml.Node {
	if n.Kind == yaml.DocumentNode && len(n.Content) == 1 {
		n = n.Content[0]
	}
	if n.Kind != yaml.MappingNode {
		return nil
	}
	for i := 0; i+1 < len(n.Content); i += 2 {
		if n.Content[i].Value != path[0] {
			continue
		}
		if len(path) == 1 {
			return n.Content[i]
		}
		return lookup(n.Content[i+1], path[1:])
	}
	return nil
}

// unknownKeys reports the keys of raw that no field of dst's type takes.
// yaml.v3 checks keys only when decoding from text (Node.Decode has no
// KnownFields), so the unexpanded text is decoded once more into a
// throwaway value of dst's type and only its unknown-field errors are
// kept: the expanded values are checked by the real decode, with the
// lines of the file.
func unknownKeys(raw []byte, dst any) error {
	t := reflect.TypeOf(dst)
	if t == nil || t.Kind() != reflect.Pointer {
		return nil
	}
	dec := yaml.NewDecoder(bytes.NewReader(raw))
	dec.KnownFields(true)
	var te *yaml.TypeError
	if err := dec.Decode(reflect.New(t.Elem()).Interface()); !errors.As(err, &te) {
		return nil
	}
	var unknown []string
	for _, e := range te.Errors {
		if strings.Contains(e, " not found in type ") {
			unknown = append(unknown, e)
		}
	}
	if len(unknown) == 0 {
		return nil
	}
	return &yaml.TypeError{Errors: unknown}
}

// ExpandNode replaces ${NAME} and ${NAME:-default} references (see Expand)
// in the scalar values of a parsed YAML tree, in place. Keys and comments
// are left as written. A plain (unquoted) scalar's type is inferred again
// from its expanded text, as if that text had been written there
// (`port: ${PORT}` with PORT=8080 is an integer); a quoted one stays a
// string. An item of a sequence whose whole text is one reference stands
// for a comma-separated list: `[${ORIGINS}]` with ORIGINS="a, b" is the two
// items "a" and "b", and with ORIGINS empty no item. Every missing
// variable is named in one error.
func ExpandNode(n *yaml.Node) error {
	var missing []string
	if err := expandNode(n, &missing); err != nil {
		return err
	}
	if len(missing) > 0 {
		return fmt.Errorf("environment variables not set: %s", strings.Join(missing, ", "))
	}
	return nil
}

func expandNode(n *yaml.Node, missing *[]string) error {
	switch n.Kind {
	case yaml.ScalarNode:
		return expandScalar(n, missing)
	case yaml.MappingNode:
		for i := 1; i < len(n.Content); i += 2 { // values only
			if err := expandNode(n.Content[i], missing); err != nil {
				return err
			}
		}
	case yaml.SequenceNode:
		var items []*yaml.Node
		for _, c := range n.Content {
			list, err := expandListItem(c, missing)
			if err != nil {
				return err
			}
			items = append(items, list...)
		}
		n.Content = items
	case yaml.DocumentNode:
		for _, c := range n.Content {
			if err := expandNode(c, missing); err != nil {
				return err
			}
		}
	}
	// An alias points at its anchor, which is expanded where it stands.
	return nil
}

// expandListItem expands one sequence item: a scalar that is exactly one
// reference becomes one item per comma-separated element of its value.
func expandListItem(n *yaml.Node, missing *[]string) ([]*yaml.Node, error) {
	if n.Kind != yaml.ScalarNode || !isOneReference(n.Value) {
		return []*yaml.Node{n}, expandNode(n, missing)
	}
	if err := expandScalar(n, missing); err != nil {
		return nil, err
	}
	var items []*yaml.Node
	for _, part := range strings.Split(n.Value, ",") {
		if part = strings.TrimSpace(part); part != "" {
			item := *n
			item.Value = part
			items = append(items, &item)
		}
	}
	return items, nil
}

// isOneReference reports whether s is a single ${...} reference and
// nothing else.
func isOneReference(s string) bool {
	return strings.HasPrefix(s, "${") && strings.IndexByte(s, '}') == len(s)-1
}

func expandScalar(n *yaml.Node, missing *[]string) error {
	if !strings.Contains(n.Value, "$") {
		return nil
	}
	v, miss, err := expand(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: %w", n.Line, err)
	}
	*missing = append(*missing, miss...)
	n.Value = v
	if n.Style&(yaml.TaggedStyle|yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle|yaml.LiteralStyle|yaml.FoldedStyle) == 0 {
		n.Tag = "" // inferred from the new text when decoded
	}
	return nil
}

// Expand replaces ${NAME} and ${NAME:-default} in s with environment
// values. A ${NAME} without default whose variable is unset is an error,
// so a missing setting fails at start instead of silently becoming empty;
// ${NAME:-default} takes the default when NAME is unset or empty. "$$" is
// a literal "$". Decode applies it to each scalar value of the parsed YAML
// (ExpandNode), never to the file's text.
func Expand(s string) (string, error) {
	out, missing, err := expand(s)
	if err != nil {
		return "", err
	}
	if len(missing) > 0 {
		return "", fmt.Errorf("environment variables not set: %s", strings.Join(missing, ", "))
	}
	return out, nil
}

// expand is Expand returning the unset variables instead of failing on
// them, so a whole file's can be named at once.
func expand(s string) (string, []string, error) {
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
			return "", nil, fmt.Errorf("unterminated ${ at offset %d", i)
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
	return out.String(), missing, nil
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
