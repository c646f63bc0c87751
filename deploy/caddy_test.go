package deploy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"unicode"
)

const caddyFile = "deploy/caddy/Caddyfile"

// caddyNode is one directive of a Caddyfile with its arguments and block.
type caddyNode struct {
	Name     string
	Args     []string
	Children []*caddyNode
	Parent   *caddyNode
}

// parseCaddyfile tokenizes and nests a Caddyfile: one directive per line,
// "{" at the end of a line opens its block, "}" alone closes it, "#" starts
// a comment outside quotes.
func parseCaddyfile(text string) (*caddyNode, error) {
	top := &caddyNode{Name: "<file>"}
	cur := top
	for i, line := range strings.Split(text, "\n") {
		toks, err := caddyTokens(line)
		if err != nil {
			return nil, fmt.Errorf("line %d: %v", i+1, err)
		}
		if len(toks) == 0 {
			continue
		}
		if len(toks) == 1 && toks[0] == "}" {
			if cur.Parent == nil {
				return nil, fmt.Errorf("line %d: unbalanced }", i+1)
			}
			cur = cur.Parent
			continue
		}
		opens := toks[len(toks)-1] == "{"
		if opens {
			toks = toks[:len(toks)-1]
		}
		if len(toks) == 0 {
			toks = []string{"<global>"}
		}
		n := &caddyNode{Name: toks[0], Args: toks[1:], Parent: cur}
		cur.Children = append(cur.Children, n)
		if opens {
			cur = n
		}
	}
	if cur != top {
		return nil, fmt.Errorf("block %s is not closed", cur.Name)
	}
	return top, nil
}

func caddyTokens(line string) ([]string, error) {
	var toks []string
	var b strings.Builder
	inQuote := false
	flush := func() {
		if b.Len() > 0 {
			toks = append(toks, b.String())
			b.Reset()
		}
	}
	for _, r := range line {
		switch {
		case inQuote && r == '"':
			inQuote = false
			toks = append(toks, b.String())
			b.Reset()
		case inQuote:
			b.WriteRune(r)
		case r == '"':
			flush()
			inQuote = true
		case r == '#' && b.Len() == 0:
			flush()
			return toks, nil
		case unicode.IsSpace(r):
			flush()
		default:
			b.WriteRune(r)
		}
	}
	if inQuote {
		return nil, fmt.Errorf("unterminated quote")
	}
	flush()
	return toks, nil
}

func (n *caddyNode) walk(fn func(*caddyNode)) {
	for _, c := range n.Children {
		fn(c)
		c.walk(fn)
	}
}

func TestParseCaddyfile(t *testing.T) {
	n, err := parseCaddyfile("{\n\tadmin off\n}\na.b {\n\thandle /x/* { # c\n\t\treverse_proxy \"h:1\"\n\t}\n}\n")
	if err != nil {
		t.Fatal(err)
	}
	if len(n.Children) != 2 || n.Children[1].Name != "a.b" || n.Children[1].Children[0].Children[0].Args[0] != "h:1" {
		t.Errorf("parsed %+v", n.Children)
	}
	for _, bad := range []string{"a {\n", "}\n", "a \"b\n"} {
		if _, err := parseCaddyfile(bad); err == nil {
			t.Errorf("parseCaddyfile(%q) accepted", bad)
		}
	}
}

// TestCaddyRoutesOnlyPublicPaths: every reverse_proxy sits in a handle
// block of a public prefix and proxies to the port of the service that
// serves it; /internal is answered first with 404; the fallback is a 404,
// not a proxy.
func TestCaddyRoutesOnlyPublicPaths(t *testing.T) {
	top, err := parseCaddyfile(string(readFile(t, caddyFile)))
	if err != nil {
		t.Fatalf("%s: %v", caddyFile, err)
	}
	var site *caddyNode
	for _, c := range top.Children {
		if c.Name == "ai.lurus.cn" {
			site = c
		}
	}
	if site == nil {
		t.Fatal("no ai.lurus.cn site")
	}
	port := func(name string) string { return fmt.Sprint(binaryByName(t, name).Port) }
	allowed := map[string]string{
		"/v1/*": port("gateway-service"), "/v1beta/*": port("gateway-service"),
		"/api/v1/billing/*": port("billing-service"),
		"/ws/sync":          port("sync-service"), "/api/v1/sync/*": port("sync-service"),
	}
	routed := map[string]bool{}
	site.walk(func(n *caddyNode) {
		if n.Name != "reverse_proxy" {
			return
		}
		h := n.Parent
		if h.Name != "handle" || len(h.Args) != 1 {
			t.Errorf("reverse_proxy %v is not inside a handle block with one path", n.Args)
			return
		}
		want, ok := allowed[h.Args[0]]
		if !ok {
			t.Errorf("handle %s proxies, which is no public prefix", h.Args[0])
			return
		}
		if internalReachable(strings.TrimSuffix(h.Args[0], "*")) {
			t.Errorf("handle %s can reach /internal", h.Args[0])
		}
		routed[h.Args[0]] = true
		if len(n.Args) != 1 || !strings.HasSuffix(n.Args[0], ":"+want) {
			t.Errorf("handle %s proxies to %v, want port %s", h.Args[0], n.Args, want)
		}
	})
	for p := range allowed {
		if !routed[p] {
			t.Errorf("public path %s is not routed", p)
		}
	}

	// /internal: a named path matcher, used by the first handle of the
	// route, which answers 404.
	var internal []string
	for _, c := range site.Children {
		if c.Name == "@internal" && len(c.Args) > 1 && c.Args[0] == "path" {
			internal = c.Args[1:]
		}
	}
	for _, p := range []string{"/internal", "/internal/*"} {
		if !slices.Contains(internal, p) {
			t.Errorf("@internal does not match %s", p)
		}
	}
	var route *caddyNode
	for _, c := range site.Children {
		if c.Name == "route" {
			route = c
		}
		if c.Name == "reverse_proxy" || c.Name == "handle" {
			t.Errorf("%s %v outside the ordered route block", c.Name, c.Args)
		}
	}
	if route == nil || len(route.Children) == 0 {
		t.Fatal("no route block")
	}
	first, last := route.Children[0], route.Children[len(route.Children)-1]
	if first.Name != "handle" || !slices.Equal(first.Args, []string{"@internal"}) || len(first.Children) != 1 ||
		first.Children[0].Name != "respond" || !slices.Equal(first.Children[0].Args, []string{"404"}) {
		t.Errorf("the route does not start with handle @internal { respond 404 }")
	}
	if last.Name != "handle" || len(last.Args) != 0 || len(last.Children) != 1 || last.Children[0].Name != "respond" {
		t.Errorf("the route does not end with a 404 fallback")
	}
}

// TestCaddyAdapts runs `caddy adapt` when Caddy is installed (Debian
// package caddy): the Caddyfile must be one Caddy accepts, and the JSON it
// becomes must answer /internal before anything else.
func TestCaddyAdapts(t *testing.T) {
	caddy, err := exec.LookPath("caddy")
	if err != nil {
		t.Skip("caddy not installed (apt-get install caddy); TestCaddyRoutesOnlyPublicPaths covers the routes")
	}
	var out, stderr bytes.Buffer
	cmd := exec.Command(caddy, "adapt", "--adapter", "caddyfile", "--config", filepath.Join(root(t), caddyFile))
	cmd.Stdout, cmd.Stderr = &out, &stderr
	if err := cmd.Run(); err != nil {
		t.Fatalf("caddy adapt: %v\n%s", err, stderr.String())
	}
	if !json.Valid(out.Bytes()) {
		t.Fatal("caddy adapt printed no JSON")
	}
	s := out.String()
	i, j := strings.Index(s, `"/internal/*"`), strings.Index(s, `"/v1/*"`)
	if i < 0 || j < 0 || i > j {
		t.Errorf("adapted config does not match /internal before /v1/*")
	}
}
