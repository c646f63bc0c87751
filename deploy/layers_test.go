package deploy

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// drivers are the transport and driver packages a use case must not reach
// (STYLE.md, "Dependencies point inward"): biz holds use cases and the
// interfaces they need; data implements them, service and server speak the
// transports. A package matches when its import path is one of these or
// below it.
var drivers = []struct{ path, name string }{
	{"github.com/cloudwego/hertz", "Hertz"},
	{"github.com/gin-gonic/gin", "Gin"},
	{"github.com/go-kratos/kratos/v2/transport", "Kratos transport"},
	{"github.com/jackc/pgx", "pgx"},
	{"github.com/redis/go-redis", "go-redis"},
	{"github.com/nats-io/nats.go", "nats.go"},
	{"github.com/ClickHouse/clickhouse-go", "clickhouse-go"},
}

// contracts are the lurus-common packages that hold only types and names
// shared between services; their runtimes live beside them (events/natsbus,
// admission/redisstore, ratelimit/redisstore). They import the standard
// library alone, so importing a contract never drags anything in.
var contracts = []string{"events", "admission", "ratelimit"}

// pkgGraph is what `go list -deps -json` says of a set of packages: each
// package's direct imports, and which packages are the standard library.
type pkgGraph struct {
	imports  map[string][]string
	standard map[string]bool
}

// goList lists pattern and everything it imports (test files left out: a
// biz test may talk to a real database) in module dir.
func goList(t *testing.T, dir string, pattern string) pkgGraph {
	t.Helper()
	cmd := exec.Command("go", "list", "-deps", "-json=ImportPath,Imports,Standard", pattern)
	cmd.Dir = dir
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go list -deps %s in %s: %v\n%s", pattern, dir, err, stderr.String())
	}
	g := pkgGraph{imports: map[string][]string{}, standard: map[string]bool{}}
	dec := json.NewDecoder(bytes.NewReader(out))
	for {
		var p struct {
			ImportPath string
			Imports    []string
			Standard   bool
		}
		if err := dec.Decode(&p); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			t.Fatalf("go list output: %v", err)
		}
		g.imports[p.ImportPath] = p.Imports
		g.standard[p.ImportPath] = p.Standard
	}
	return g
}

// chainTo returns the shortest import chain from root to a package bad
// accepts, or nil when root reaches none.
func (g pkgGraph) chainTo(root string, bad func(string) bool) []string {
	prev := map[string]string{root: ""}
	queue := []string{root}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		if bad(p) {
			var chain []string
			for ; p != ""; p = prev[p] {
				chain = append(chain, p)
			}
			slices.Reverse(chain)
			return chain
		}
		for _, q := range g.imports[p] {
			if _, seen := prev[q]; !seen {
				prev[q] = p
				queue = append(queue, q)
			}
		}
	}
	return nil
}

// isDriver names the driver a package belongs to ("" for none).
func isDriver(pkg string) string {
	for _, d := range drivers {
		if pkg == d.path || strings.HasPrefix(pkg, d.path+"/") {
			return d.name
		}
	}
	return ""
}

// short drops the repository's module prefix from the packages of chain.
func short(chain []string) string {
	return strings.ReplaceAll(strings.Join(chain, " -> "), "github.com/lurus-switch/lurus-switch/", "")
}

// bizViolations returns one line per package of roots that reaches a
// driver, naming the import chain that does.
func bizViolations(g pkgGraph, roots []string) []string {
	var out []string
	for _, r := range roots {
		for _, d := range drivers {
			chain := g.chainTo(r, func(p string) bool { return isDriver(p) == d.name })
			if chain != nil {
				out = append(out, fmt.Sprintf("%s reaches %s: %s", short([]string{r}), d.name, short(chain)))
			}
		}
	}
	return out
}

// contractViolations returns one line per package of roots that imports
// anything outside the standard library but other contracts.
func contractViolations(g pkgGraph, roots []string, isContract func(string) bool) []string {
	var out []string
	for _, r := range roots {
		chain := g.chainTo(r, func(p string) bool { return !g.standard[p] && !isContract(p) })
		if chain != nil {
			out = append(out, fmt.Sprintf("%s is a contract but imports beyond the standard library: %s", short([]string{r}), short(chain)))
		}
	}
	return out
}

// TestBizImportsNoDriver: for every service, `go list -deps ./internal/biz/...`
// shows no Hertz, Gin, Kratos transport, pgx, go-redis, nats.go or
// clickhouse-go package.
func TestBizImportsNoDriver(t *testing.T) {
	for _, b := range services() {
		t.Run(b.Module, func(t *testing.T) {
			g := goList(t, filepath.Join(root(t), b.Module), "./internal/biz/...")
			var roots []string
			for p := range g.imports {
				if strings.Contains(p, "/"+b.Module+"/internal/biz") {
					roots = append(roots, p)
				}
			}
			if len(roots) == 0 {
				t.Fatalf("no biz packages found in %s", b.Module)
			}
			slices.Sort(roots)
			for _, v := range bizViolations(g, roots) {
				t.Errorf("biz must import no transport or driver package (move the code to data/service, or split the package it comes through):\n    %s", v)
			}
		})
	}
}

// TestContractsImportOnlyStandardLibrary: the lurus-common contracts import
// nothing but the standard library (and each other).
func TestContractsImportOnlyStandardLibrary(t *testing.T) {
	const mod = "github.com/lurus-switch/lurus-switch/lurus-common/"
	isContract := func(p string) bool { return slices.Contains(contracts, strings.TrimPrefix(p, mod)) }
	for _, c := range contracts {
		g := goList(t, filepath.Join(root(t), "lurus-common"), "./"+c)
		for _, v := range contractViolations(g, []string{mod + c}, isContract) {
			t.Errorf("%s", v)
		}
	}
}

// TestLayerCheckFindsChains checks the checker on made-up graphs: a driver
// reached through a contract is reported with the whole chain, and a clean
// graph reports nothing.
func TestLayerCheckFindsChains(t *testing.T) {
	g := pkgGraph{
		imports: map[string][]string{
			"svc/internal/biz":           {"fmt", "common/events"},
			"svc/internal/biz/rules":     {"common/money"},
			"common/events":              {"encoding/json", "github.com/nats-io/nats.go"},
			"common/money":               {"math"},
			"github.com/nats-io/nats.go": {"github.com/nats-io/nats.go/encoders"},
		},
		standard: map[string]bool{"fmt": true, "encoding/json": true, "math": true},
	}
	got := bizViolations(g, []string{"svc/internal/biz", "svc/internal/biz/rules"})
	want := []string{"svc/internal/biz reaches nats.go: svc/internal/biz -> common/events -> github.com/nats-io/nats.go"}
	if !slices.Equal(got, want) {
		t.Fatalf("bizViolations = %q\nwant %q", got, want)
	}
	isContract := func(p string) bool { return p == "common/events" || p == "common/money" }
	got = contractViolations(g, []string{"common/money", "common/events"}, isContract)
	want = []string{"common/events is a contract but imports beyond the standard library: common/events -> github.com/nats-io/nats.go"}
	if !slices.Equal(got, want) {
		t.Fatalf("contractViolations = %q\nwant %q", got, want)
	}
}
