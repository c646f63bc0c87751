package deploy

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
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

// expandImports replaces every `import <snippet>` under n by the children
// of the top-level snippet `(<snippet>)`, as Caddy does before it reads
// the directives.
func expandImports(t *testing.T, top *caddyNode) {
	t.Helper()
	snippets := map[string]*caddyNode{}
	for _, c := range top.Children {
		if strings.HasPrefix(c.Name, "(") && strings.HasSuffix(c.Name, ")") {
			snippets[strings.Trim(c.Name, "()")] = c
		}
	}
	var expand func(n *caddyNode)
	expand = func(n *caddyNode) {
		var out []*caddyNode
		for _, c := range n.Children {
			if c.Name != "import" {
				expand(c)
				out = append(out, c)
				continue
			}
			if len(c.Args) != 1 || snippets[c.Args[0]] == nil {
				t.Fatalf("import %v: no such snippet", c.Args)
			}
			for _, sc := range snippets[c.Args[0]].Children {
				cp := *sc
				cp.Parent = n
				out = append(out, &cp)
			}
		}
		n.Children = out
	}
	for _, c := range top.Children {
		if _, ok := snippets[strings.Trim(c.Name, "()")]; !ok {
			expand(c)
		}
	}
}

// child returns the first child of n named name whose arguments start
// with args.
func (n *caddyNode) child(name string, args ...string) *caddyNode {
	for _, c := range n.Children {
		if c.Name == name && len(c.Args) >= len(args) && slices.Equal(c.Args[:len(args)], args) {
			return c
		}
	}
	return nil
}

// credentialHeaders carry a user's API key (OpenAI/Anthropic/Gemini
// clients) or a session; no log keeps them.
var credentialHeaders = []string{"Authorization", "X-Api-Key", "X-Goog-Api-Key", "Cookie"}

// TestCaddyLogsKeepNoCredential: the access log and the default log (which
// prints the request with Caddy's own errors) both go through a filter
// that deletes the key and ticket query parameters from request>uri and
// the headers that carry keys. Gemini clients send ?key=<API key>.
func TestCaddyLogsKeepNoCredential(t *testing.T) {
	top, err := parseCaddyfile(string(readFile(t, caddyFile)))
	if err != nil {
		t.Fatalf("%s: %v", caddyFile, err)
	}
	expandImports(t, top)
	var global, site *caddyNode
	for _, c := range top.Children {
		switch c.Name {
		case "<global>":
			global = c
		case "ai.lurus.cn":
			site = c
		}
	}
	if global == nil || site == nil {
		t.Fatal("want a global options block and the ai.lurus.cn site")
	}
	logs := map[string]*caddyNode{"global log default": global.child("log", "default"), "site log": site.child("log")}
	for what, l := range logs {
		if l == nil {
			t.Errorf("no %s block", what)
			continue
		}
		f := l.child("format", "filter")
		if f == nil {
			t.Errorf("%s: no format filter", what)
			continue
		}
		if w := f.child("wrap"); w == nil || !slices.Equal(w.Args, []string{"json"}) {
			t.Errorf("%s: the filter does not wrap json", what)
		}
		fields := f.child("fields")
		if fields == nil {
			t.Errorf("%s: the filter has no fields", what)
			continue
		}
		q := fields.child("request>uri", "query")
		for _, p := range []string{"key", "ticket"} {
			if q == nil || q.child("delete", p) == nil {
				t.Errorf("%s: request>uri keeps the %s query parameter", what, p)
			}
		}
		for _, h := range credentialHeaders {
			if fields.child("request>headers>"+h, "delete") == nil {
				t.Errorf("%s: request>headers>%s is not deleted", what, h)
			}
		}
	}
	// A log block elsewhere (a new site, a handle) would log unfiltered.
	n := 0
	top.walk(func(c *caddyNode) {
		if c.Name == "log" && !strings.HasPrefix(c.Parent.Name, "(") {
			n++
		}
	})
	if n != len(logs) {
		t.Errorf("%d log blocks, want exactly the %d checked here", n, len(logs))
	}
}

// TestCaddyLogFilterRuns runs the shipped Caddyfile in a real Caddy (when
// installed), on a loopback port with plain HTTP and the upstreams pointed
// at a closed port, sends requests carrying keys in the query and in
// headers, and reads both logs: the access log records the request without
// them, and the error log of the 502 does too.
func TestCaddyLogFilterRuns(t *testing.T) {
	caddy, err := exec.LookPath("caddy")
	if err != nil {
		t.Skip("caddy not installed (apt-get install caddy); TestCaddyLogsKeepNoCredential checks the Caddyfile")
	}
	out, err := exec.Command(caddy, "adapt", "--adapter", "caddyfile", "--config", filepath.Join(root(t), caddyFile)).Output()
	if err != nil {
		t.Fatalf("caddy adapt: %v", err)
	}
	var cfg map[string]any
	if err := json.Unmarshal(out, &cfg); err != nil {
		t.Fatal(err)
	}
	cfg["admin"] = map[string]any{"disabled": true}
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	servers := cfg["apps"].(map[string]any)["http"].(map[string]any)["servers"].(map[string]any)
	for _, s := range servers {
		s := s.(map[string]any)
		s["listen"] = []string{addr}
		s["automatic_https"] = map[string]any{"disable": true}
	}
	raw, err := json.Marshal(cfg)
	if err != nil {
		t.Fatal(err)
	}
	closed := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	for _, b := range services() {
		raw = bytes.ReplaceAll(raw, []byte(fmt.Sprintf(`"127.0.0.1:%d"`, b.Port)), []byte(`"`+closed+`"`))
	}
	dir := t.TempDir()
	conf := filepath.Join(dir, "caddy.json")
	if err := os.WriteFile(conf, raw, 0o600); err != nil {
		t.Fatal(err)
	}
	var stdout, stderr lockedBuffer
	cmd := exec.Command(caddy, "run", "--config", conf)
	cmd.Env = []string{"HOME=" + dir, "XDG_DATA_HOME=" + dir, "XDG_CONFIG_HOME=" + dir, "PATH=/usr/bin:/bin"}
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })

	const secret = "sk-lurus-logtest"
	send := func(method, path string) int {
		req, _ := http.NewRequest(method, "http://"+addr+path, strings.NewReader("{}"))
		req.Host = "ai.lurus.cn"
		req.Header.Set("Authorization", "Bearer "+secret+"-authz")
		req.Header.Set("X-Api-Key", secret+"-xapi")
		req.Header.Set("X-Goog-Api-Key", secret+"-goog")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	deadline := time.Now().Add(20 * time.Second)
	for send(http.MethodGet, "/nope?probe=1") != http.StatusNotFound {
		if time.Now().After(deadline) {
			t.Fatalf("caddy did not answer on %s\n%s", addr, stderr.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
	if code := send(http.MethodGet, "/nope?a=1&key="+secret+"-q1&ticket="+secret+"-t"); code != http.StatusNotFound {
		t.Errorf("GET /nope: %d, want 404", code)
	}
	if code := send(http.MethodPost, "/v1beta/models/m:generateContent?key="+secret+"-q2&alt=sse"); code != http.StatusBadGateway {
		t.Errorf("POST to a closed upstream: %d, want 502", code)
	}
	wantAccess, wantError := `"uri":"/nope?a=1"`, `"uri":"/v1beta/models/m:generateContent?alt=sse"`
	for !strings.Contains(stdout.String(), wantAccess) || !strings.Contains(stderr.String(), wantError) {
		if time.Now().After(deadline) {
			t.Fatalf("want %s in the access log and %s in the error log\naccess:\n%s\ndefault:\n%s", wantAccess, wantError, stdout.String(), stderr.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	for name, log := range map[string]string{"access log": stdout.String(), "default log": stderr.String()} {
		if strings.Contains(log, secret) {
			t.Errorf("the %s keeps a credential:\n%s", name, log)
		}
	}
}

// lockedBuffer is a bytes.Buffer a process writes while the test reads it.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *lockedBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *lockedBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
