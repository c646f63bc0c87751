package testenv

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"
)

// RepoRoot is the repository root: the nearest directory at or above the
// working directory that holds go.work. A test runs in its module's
// directory, so this finds the root from every module of the workspace.
func RepoRoot() (string, error) {
	dir, err := os.Getwd()
	if err != nil {
		return "", err
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.work")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("testenv: no go.work at or above the working directory")
		}
		dir = parent
	}
}

// Programs are binaries built once for a whole test binary, so that end to
// end suites run the services as real processes. Build them in TestMain and
// call Remove after m.Run.
type Programs struct {
	// Root is the repository root the packages were built from.
	Root string
	// Path maps each program's name to its binary.
	Path map[string]string

	dir string
}

// BuildPrograms runs `go build` in the repository root for every name →
// package ("./gateway-service/cmd/gateway-service") into a temporary
// directory. The first failing build ends it with that build's output.
func BuildPrograms(pkgs map[string]string) (*Programs, error) {
	root, err := RepoRoot()
	if err != nil {
		return nil, err
	}
	dir, err := os.MkdirTemp("", "lurus-test-bin-")
	if err != nil {
		return nil, err
	}
	p := &Programs{Root: root, Path: map[string]string{}, dir: dir}
	for name, pkg := range pkgs {
		out := filepath.Join(dir, name)
		cmd := exec.Command("go", "build", "-o", out, pkg)
		cmd.Dir = root
		if b, err := cmd.CombinedOutput(); err != nil {
			p.Remove()
			return nil, fmt.Errorf("build %s: %v\n%s", name, err, b)
		}
		p.Path[name] = out
	}
	return p, nil
}

// Remove deletes the built binaries.
func (p *Programs) Remove() { _ = os.RemoveAll(p.dir) }

// RunWithPrograms is the body of a TestMain that needs programs: it builds
// pkgs (see BuildPrograms), hands them to use, runs the tests and removes
// the binaries. It returns the code for os.Exit: m.Run's, or 1 with the
// build's output on stderr when a build fails.
func RunWithPrograms(m *testing.M, pkgs map[string]string, use func(*Programs)) int {
	p, err := BuildPrograms(pkgs)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer p.Remove()
	use(p)
	return m.Run()
}

// FreeAddr returns a loopback address (host:port) with a port nobody
// listens on right now.
func FreeAddr(t testing.TB) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	return ln.Addr().String()
}

// WaitReady polls url until it answers 200, and fails t with the last
// answer when that has not happened within 30 s.
func WaitReady(t testing.TB, url string) {
	t.Helper()
	var last string
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(25 * time.Millisecond) {
		resp, err := http.Get(url)
		if err == nil {
			b, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return
			}
			last = fmt.Sprintf("%d %s", resp.StatusCode, b)
		} else {
			last = err.Error()
		}
	}
	t.Fatalf("%s not ready: %s", url, last)
}

// SendJSON sends in (as JSON, when not nil) to url with the header pairs
// hdr and returns the answer's status and body. It fails t only when no
// answer arrives.
func SendJSON(t testing.TB, method, url string, in any, hdr ...string) (int, []byte) {
	t.Helper()
	var body io.Reader
	if in != nil {
		raw, _ := json.Marshal(in)
		body = bytes.NewReader(raw)
	}
	req, err := http.NewRequest(method, url, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(hdr); i += 2 {
		req.Header.Set(hdr[i], hdr[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, raw
}

// CallJSON is SendJSON with a bearer token that also decodes the JSON
// answer into out (when not nil) and fails t on a status other than want.
func CallJSON(t testing.TB, method, url, token string, in, out any, want int, hdr ...string) {
	t.Helper()
	status, raw := SendJSON(t, method, url, in, append([]string{"Authorization", "Bearer " + token}, hdr...)...)
	if status != want {
		t.Fatalf("%s %s: %d %s", method, url, status, raw)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("%s %s: %v: %s", method, url, err, raw)
		}
	}
}
