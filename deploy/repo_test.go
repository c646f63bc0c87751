package deploy

import (
	"flag"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"

	"gopkg.in/yaml.v3"
)

var update = flag.Bool("update", false, "refresh the copies kept in deploy/k3s from their sources")

// binary is one program the deployment runs, as the repository defines it.
type binary struct {
	Name   string // image, Compose service, Deployment and Service name
	Module string // workspace module holding <Module>/cmd/<Name>
	Port   int    // DESIGN.md §1
	// Config is false for tools without configs/config.yaml (mock-upstream).
	Config bool
	// Migrate is true for services with a `migrate` subcommand.
	Migrate bool
	// Prefix is the prefix of the metric names the binary exports.
	Prefix string
}

// binaries is the fixed list of DESIGN.md §1 and §8. Everything else (the
// listen variable, the env a config reads, the metrics) is read from the
// repository.
var binaries = []binary{
	{Name: "gateway-service", Module: "gateway-service", Port: 18100, Config: true, Prefix: "lurus_gateway_"},
	{Name: "provider-service", Module: "provider-service", Port: 18101, Config: true, Migrate: true, Prefix: "lurus_provider_"},
	{Name: "log-service", Module: "log-service", Port: 18102, Config: true, Migrate: true, Prefix: "lurus_log_"},
	{Name: "billing-service", Module: "billing-service", Port: 18103, Config: true, Migrate: true, Prefix: "billing_"},
	{Name: "sync-service", Module: "sync-service", Port: 18104, Config: true, Prefix: "lurus_sync_"},
	{Name: "mock-upstream", Module: "gateway-service", Port: 18190},
}

// services are the binaries with a config file: the five services.
func services() []binary {
	var out []binary
	for _, b := range binaries {
		if b.Config {
			out = append(out, b)
		}
	}
	return out
}

func binaryByName(t *testing.T, name string) binary {
	t.Helper()
	for _, b := range binaries {
		if b.Name == name {
			return b
		}
	}
	t.Fatalf("unknown binary %q", name)
	return binary{}
}

// root is the repository root (this package lives in <root>/deploy).
func root(t testing.TB) string {
	t.Helper()
	wd, err := os.Getwd()
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Dir(wd)
}

func readFile(t testing.TB, rel string) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root(t), rel))
	if err != nil {
		t.Fatalf("read %s: %v", rel, err)
	}
	return b
}

func exists(t testing.TB, rel string) bool {
	t.Helper()
	_, err := os.Stat(filepath.Join(root(t), rel))
	return err == nil
}

// envRef is one ${NAME} or ${NAME:-default} reference in a config file.
type envRef struct {
	Name       string
	Default    string
	HasDefault bool
}

var envRefRE = regexp.MustCompile(`\$\{([A-Za-z_][A-Za-z0-9_]*)(:-([^}]*))?\}`)

// envRefs lists the environment references of a config text, in order,
// with the syntax lurus-common/config expands ("$$" is a literal "$").
// References in YAML comments do not count.
func envRefs(text string) []envRef {
	text = strings.ReplaceAll(stripComments(text), "$$", "")
	var out []envRef
	for _, m := range envRefRE.FindAllStringSubmatch(text, -1) {
		out = append(out, envRef{Name: m[1], Default: m[3], HasDefault: m[2] != ""})
	}
	return out
}

// stripComments drops YAML comments: "#" at the start of a line or after
// white space.
func stripComments(text string) string {
	lines := strings.Split(text, "\n")
	for i, l := range lines {
		for j := 0; j < len(l); j++ {
			if l[j] == '#' && (j == 0 || l[j-1] == ' ' || l[j-1] == '\t') {
				lines[i] = l[:j]
				break
			}
		}
	}
	return strings.Join(lines, "\n")
}

// expandWith substitutes env into a config's text ("x" stands in for an
// unset variable without default). config.Load expands the parsed values
// instead, where no value can change the structure: expanding the text is
// the stricter check of the key paths, and each service's conf test loads
// its file through config.Load itself.
func expandWith(text string, env map[string]string) string {
	text = strings.ReplaceAll(text, "$$", "$")
	return envRefRE.ReplaceAllStringFunc(text, func(m string) string {
		sm := envRefRE.FindStringSubmatch(m)
		if v, ok := env[sm[1]]; ok && (v != "" || sm[2] == "") {
			return v
		}
		if sm[2] != "" {
			return sm[3]
		}
		return "x"
	})
}

// serviceConfig is a service's configs/config.yaml.
type serviceConfig struct {
	Path string
	Text string
	Refs []envRef
	// Listen is the variable whose default is the service's listen address.
	Listen envRef
}

// loadServiceConfig reads <module>/configs/config.yaml and finds the
// listen variable: the one reference whose default ends in :<port>.
func loadServiceConfig(t testing.TB, b binary) serviceConfig {
	t.Helper()
	rel := filepath.Join(b.Module, "configs", "config.yaml")
	text := string(readFile(t, rel))
	c := serviceConfig{Path: rel, Text: text, Refs: envRefs(text)}
	var listen []envRef
	for _, r := range c.Refs {
		if r.HasDefault && strings.HasSuffix(r.Default, ":"+strconv.Itoa(b.Port)) && !strings.Contains(r.Default, "://") {
			listen = append(listen, r)
		}
	}
	if len(listen) != 1 {
		t.Fatalf("%s: want exactly one ${VAR:-host:%d} listen address (DESIGN.md port of %s), found %v", rel, b.Port, b.Name, listen)
	}
	c.Listen = listen[0]
	return c
}

// mustOverride lists the variables a container must set for this config:
// those without a default (config.Load fails without them) and those whose
// default points at loopback (nothing listens there inside a container).
func (c serviceConfig) mustOverride() []string {
	var out []string
	for _, r := range c.Refs {
		if !r.HasDefault || isLoopback(r.Default) {
			if !slices.Contains(out, r.Name) {
				out = append(out, r.Name)
			}
		}
	}
	return out
}

// isLoopback reports whether v is one address (URL or host:port) on the
// loopback interface. Lists (browser origins, say) are not addresses.
func isLoopback(v string) bool {
	if strings.ContainsAny(v, ", ") {
		return false
	}
	switch addressHost(v) {
	case "127.0.0.1", "localhost", "::1":
		return true
	}
	return false
}

// yamlKeys returns the set of key paths of a config ("a.b.c") once
// expanded with env, the shape that config.Load decodes with unknown keys
// refused.
func yamlKeys(t testing.TB, what string, doc []byte, env map[string]string) []string {
	t.Helper()
	var n yaml.Node
	if err := yaml.Unmarshal([]byte(expandWith(string(doc), env)), &n); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	var keys []string
	var walk func(prefix string, n *yaml.Node)
	walk = func(prefix string, n *yaml.Node) {
		switch n.Kind {
		case yaml.DocumentNode:
			for _, c := range n.Content {
				walk(prefix, c)
			}
		case yaml.MappingNode:
			for i := 0; i+1 < len(n.Content); i += 2 {
				k := prefix + n.Content[i].Value
				keys = append(keys, k)
				walk(k+".", n.Content[i+1])
			}
		case yaml.AliasNode:
			walk(prefix, n.Alias)
		}
	}
	walk("", &n)
	slices.Sort(keys)
	return keys
}

// goSource is what the Go files of one module (tests excluded) say.
type goSource struct {
	// Strings holds every string literal, and every metric name built from
	// Namespace/Subsystem/Name fields of a composite literal.
	Strings map[string]bool
	// Labels maps a metric name to the label names of its definition,
	// when both are literals of one call: NewCounterVec(CounterOpts{Name:
	// "x"}, []string{"a", "b"}).
	Labels map[string][]string
	// Secrets are the names passed to config.Secret / config.Secrets and
	// never to os.Getenv: a secret the code first looks up with Getenv is
	// optional.
	Secrets []string
	getenv  []string
	// consts maps string constant names to their values, to resolve
	// config.Secrets(EnvAdminToken, ...).
	consts map[string]string
	// pending are Secret/Getenv arguments naming a constant.
	pendingSecrets, pendingGetenv []string
}

var (
	sourceMu    sync.Mutex
	sourceCache = map[string]*goSource{}
)

// moduleSource parses the non-test Go files of a module once per run.
func moduleSource(t testing.TB, module string) *goSource {
	t.Helper()
	sourceMu.Lock()
	defer sourceMu.Unlock()
	if s, ok := sourceCache[module]; ok {
		return s
	}
	s := &goSource{Strings: map[string]bool{}, Labels: map[string][]string{}, consts: map[string]string{}}
	dir := filepath.Join(root(t), module)
	fset := token.NewFileSet()
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && (d.Name() == "testdata" || d.Name() == "vendor") {
			return filepath.SkipDir
		}
		if d.IsDir() || !strings.HasSuffix(path, ".go") || strings.HasSuffix(path, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		collectStrings(f, s)
		return nil
	})
	if err != nil {
		t.Fatalf("parse %s: %v", module, err)
	}
	for _, p := range []struct {
		names []string
		into  *[]string
	}{{s.pendingSecrets, &s.Secrets}, {s.pendingGetenv, &s.getenv}} {
		for _, n := range p.names {
			if v, ok := s.consts[n]; ok && !slices.Contains(*p.into, v) {
				*p.into = append(*p.into, v)
			}
		}
	}
	s.Secrets = slices.DeleteFunc(s.Secrets, func(name string) bool { return slices.Contains(s.getenv, name) })
	sourceCache[module] = s
	return s
}

func stringLit(e ast.Expr) (string, bool) {
	lit, ok := e.(*ast.BasicLit)
	if !ok || lit.Kind != token.STRING {
		return "", false
	}
	v, err := strconv.Unquote(lit.Value)
	return v, err == nil
}

func collectStrings(f *ast.File, s *goSource) {
	ast.Inspect(f, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.BasicLit:
			if v, ok := stringLit(n); ok {
				s.Strings[v] = true
			}
		case *ast.CompositeLit:
			// prometheus.CounterOpts{Namespace: "lurus", Subsystem: "x", Name: "y_total"}
			if name, ok := metricName(n); ok {
				s.Strings[name] = true
			}
		case *ast.CallExpr:
			collectMetricLabels(n, s)
			sel, ok := n.Fun.(*ast.SelectorExpr)
			if !ok {
				return true
			}
			pkg, ok := sel.X.(*ast.Ident)
			if !ok {
				return true
			}
			var into, pending *[]string
			switch {
			case pkg.Name == "config" && (sel.Sel.Name == "Secret" || sel.Sel.Name == "Secrets"):
				into, pending = &s.Secrets, &s.pendingSecrets
			case pkg.Name == "os" && (sel.Sel.Name == "Getenv" || sel.Sel.Name == "LookupEnv"):
				into, pending = &s.getenv, &s.pendingGetenv
			default:
				return true
			}
			for _, a := range n.Args {
				switch a := a.(type) {
				case *ast.Ident:
					*pending = append(*pending, a.Name)
				case *ast.SelectorExpr:
					*pending = append(*pending, a.Sel.Name)
				default:
					if v, ok := stringLit(a); ok && !slices.Contains(*into, v) {
						*into = append(*into, v)
					}
				}
			}
		case *ast.ValueSpec:
			for i, name := range n.Names {
				if i < len(n.Values) {
					if v, ok := stringLit(n.Values[i]); ok {
						s.consts[name.Name] = v
					}
				}
			}
		}
		return true
	})
}

// metricName returns the full name a prometheus *Opts literal defines.
func metricName(cl *ast.CompositeLit) (string, bool) {
	parts := map[string]string{}
	for _, el := range cl.Elts {
		kv, ok := el.(*ast.KeyValueExpr)
		if !ok {
			continue
		}
		if key, ok := kv.Key.(*ast.Ident); ok {
			if v, ok := stringLit(kv.Value); ok {
				parts[key.Name] = v
			}
		}
	}
	name, ok := parts["Name"]
	if !ok {
		return "", false
	}
	var segs []string
	for _, p := range []string{parts["Namespace"], parts["Subsystem"], name} {
		if p != "" {
			segs = append(segs, p)
		}
	}
	return strings.Join(segs, "_"), true
}

// collectMetricLabels records the label names of a metric vector defined
// with literals in one call.
func collectMetricLabels(call *ast.CallExpr, s *goSource) {
	var name string
	var labels []string
	var haveLabels bool
	for _, a := range call.Args {
		if u, ok := a.(*ast.UnaryExpr); ok {
			a = u.X
		}
		cl, ok := a.(*ast.CompositeLit)
		if !ok {
			continue
		}
		if at, ok := cl.Type.(*ast.ArrayType); ok {
			if id, ok := at.Elt.(*ast.Ident); ok && id.Name == "string" {
				haveLabels = true
				for _, el := range cl.Elts {
					if v, ok := stringLit(el); ok {
						labels = append(labels, v)
					}
				}
			}
			continue
		}
		if n, ok := metricName(cl); ok {
			name = n
		}
	}
	if name != "" && haveLabels {
		s.Labels[name] = labels
	}
}

// requiredEnv is everything a container of b must have in its environment.
func requiredEnv(t testing.TB, b binary) []string {
	t.Helper()
	var out []string
	if b.Config {
		out = append(out, loadServiceConfig(t, b).mustOverride()...)
	}
	for _, s := range moduleSource(t, b.Module).Secrets {
		if !slices.Contains(out, s) {
			out = append(out, s)
		}
	}
	return out
}

// parseEnvFile reads KEY=VALUE lines (comments and blank lines skipped).
func parseEnvFile(t testing.TB, rel string) map[string]string {
	t.Helper()
	out := map[string]string{}
	for i, line := range strings.Split(string(readFile(t, rel)), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			t.Fatalf("%s:%d: not KEY=VALUE: %q", rel, i+1, line)
		}
		out[k] = v
	}
	return out
}

func TestEnvRefs(t *testing.T) {
	cases := []struct {
		in   string
		want []envRef
	}{
		{"a: ${X}", []envRef{{Name: "X"}}},
		{"a: ${X:-1.2.3.4:5}", []envRef{{Name: "X", Default: "1.2.3.4:5", HasDefault: true}}},
		{"a: ${X:-}", []envRef{{Name: "X", HasDefault: true}}},
		{"a: $${X} b: ${Y}", []envRef{{Name: "Y"}}},
		{"a: $X", nil},
		{"# ${NAME:-default}\na: ${X} # ${Y}", []envRef{{Name: "X"}}},
	}
	for _, c := range cases {
		got := envRefs(c.in)
		if !slices.Equal(got, c.want) {
			t.Errorf("envRefs(%q) = %v, want %v", c.in, got, c.want)
		}
	}
}

// TestServiceConfigsParseWithDefaults: with no variable set (every default
// taken, as `make run` does for most), each service config is valid YAML.
// A default ending in ":" in an unquoted value, for one, is not.
func TestServiceConfigsParseWithDefaults(t *testing.T) {
	for _, b := range services() {
		c := loadServiceConfig(t, b)
		if keys := yamlKeys(t, c.Path+" with defaults", []byte(c.Text), nil); len(keys) == 0 {
			t.Errorf("%s: no keys", c.Path)
		}
	}
}

func TestServiceConfigsHaveListenAddress(t *testing.T) {
	for _, b := range services() {
		t.Run(b.Name, func(t *testing.T) {
			c := loadServiceConfig(t, b)
			if !strings.HasPrefix(c.Listen.Name, "LURUS_") {
				t.Errorf("%s: listen variable %s is not LURUS_*", c.Path, c.Listen.Name)
			}
		})
	}
	// mock-upstream has no config file: its default address is a constant
	// and MOCK_UPSTREAM_ADDR overrides it.
	src := moduleSource(t, "gateway-service")
	if !src.Strings["127.0.0.1:18190"] || !src.Strings["MOCK_UPSTREAM_ADDR"] {
		t.Errorf("gateway-service sources lack mock-upstream's 127.0.0.1:18190 default or MOCK_UPSTREAM_ADDR")
	}
}

// freePort returns a loopback TCP port nobody listens on right now.
func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}
