package probe

import (
	"context"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lurus-switch/lurus-switch/provider-service/internal/biz"
)

const goodKey = "sk-good-0123456789abcdef"

// upstream speaks chat completions (OpenAI and compatible, Azure
// deployments), Anthropic Messages and Gemini generateContent, accepting
// only goodKey where each vendor expects it, and records what it saw.
type upstream struct {
	mu     sync.Mutex
	seen   []*http.Request
	bodies [][]byte
}

func (u *upstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(r.Body)
	u.mu.Lock()
	u.seen = append(u.seen, r.Clone(context.Background()))
	u.bodies = append(u.bodies, body)
	u.mu.Unlock()
	var key string
	switch r.URL.Path {
	case "/v1/chat/completions":
		key = strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
	case "/openai/deployments/gpt-4o-prod/chat/completions":
		if r.URL.Query().Get("api-version") == "" {
			http.Error(w, "no api-version", http.StatusNotFound)
			return
		}
		key = r.Header.Get("api-key")
	case "/v1/messages":
		key = r.Header.Get("x-api-key")
		if r.Header.Get("anthropic-version") == "" {
			http.Error(w, `{"type":"error","error":{"type":"invalid_request_error","message":"anthropic-version missing"}}`, http.StatusBadRequest)
			return
		}
	case "/v1beta/models/gemini-2.5-flash:generateContent":
		key = r.Header.Get("x-goog-api-key")
	case "/hang/chat/completions":
		<-r.Context().Done()
		return
	default:
		http.NotFound(w, r)
		return
	}
	if key != goodKey {
		w.WriteHeader(http.StatusUnauthorized)
		_, _ = w.Write([]byte(`{"error":{"message":"Incorrect API key provided: ` + key + `"}}`))
		return
	}
	_, _ = w.Write([]byte(`{"data":[]}`))
}

func TestProbeVendors(t *testing.T) {
	up := &upstream{}
	srv := httptest.NewServer(up)
	defer srv.Close()
	p := New(2 * time.Second)
	tests := []struct {
		name       string
		target     biz.ProbeTarget
		authOK     bool
		status     int
		wantMethod string
		wantPath   string
	}{
		{"openai", biz.ProbeTarget{Type: "openai", BaseURL: srv.URL + "/v1"}, true, 200, "POST", "/v1/chat/completions"},
		{"compatible", biz.ProbeTarget{Type: "openai-compatible", BaseURL: srv.URL + "/v1"}, true, 200, "POST", "/v1/chat/completions"},
		{"azure", biz.ProbeTarget{Type: "azure-openai", BaseURL: srv.URL, APIVersion: "2024-10-21", Model: "gpt-4o-prod"}, true, 200, "POST", "/openai/deployments/gpt-4o-prod/chat/completions"},
		{"azure without api_version", biz.ProbeTarget{Type: "azure-openai", BaseURL: srv.URL, Model: "gpt-4o-prod"}, true, 200, "POST", "/openai/deployments/gpt-4o-prod/chat/completions"},
		{"anthropic", biz.ProbeTarget{Type: "anthropic", BaseURL: srv.URL, Model: "claude-3-5-haiku"}, true, 200, "POST", "/v1/messages"},
		{"gemini", biz.ProbeTarget{Type: "gemini", BaseURL: srv.URL, Model: "gemini-2.5-flash"}, true, 200, "POST", "/v1beta/models/gemini-2.5-flash:generateContent"},
		{"wrong key", biz.ProbeTarget{Type: "openai", BaseURL: srv.URL + "/v1", Secret: "sk-wrong-0123456789"}, false, 401, "POST", "/v1/chat/completions"},
		{"wrong path", biz.ProbeTarget{Type: "openai", BaseURL: srv.URL + "/nope"}, false, 404, "POST", "/nope/chat/completions"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.target.AllowPrivateNetwork = true
			if tt.target.Secret == "" {
				tt.target.Secret = goodKey
			}
			if tt.target.Model == "" {
				tt.target.Model = "gpt-4o"
			}
			r := p.Probe(context.Background(), tt.target)
			if !r.Reachable || r.AuthOK != tt.authOK || r.StatusCode != tt.status {
				t.Fatalf("result %+v", r)
			}
			up.mu.Lock()
			last := up.seen[len(up.seen)-1]
			up.mu.Unlock()
			if last.URL.Path != tt.wantPath || last.Method != tt.wantMethod {
				t.Fatalf("upstream saw %s %s", last.Method, last.URL.Path)
			}
			if strings.Contains(r.Error, tt.target.Secret) {
				t.Fatalf("error leaks the key: %s", r.Error)
			}
			if !tt.authOK && r.Error == "" {
				t.Fatal("failure without an error message")
			}
			if tt.status == 401 && !strings.Contains(r.Error, "upstream answered 401 Unauthorized: Incorrect API key provided") {
				t.Fatalf("the upstream's message is not in the error: %s", r.Error)
			}
		})
	}
}

func TestProbeRefusesPrivateAddressWithoutFlag(t *testing.T) {
	up := &upstream{}
	srv := httptest.NewServer(up)
	defer srv.Close()
	r := New(2*time.Second).Probe(context.Background(), biz.ProbeTarget{Type: "openai", BaseURL: srv.URL + "/v1", Secret: goodKey, Model: "m"})
	if r.Reachable || !strings.Contains(r.Error, "private") {
		t.Fatalf("result %+v", r)
	}
	if len(up.seen) != 0 {
		t.Fatal("the guarded probe reached a loopback upstream")
	}
}

func TestProbeTimeoutAndUnreachable(t *testing.T) {
	srv := httptest.NewServer(&upstream{})
	defer srv.Close()
	p := New(200 * time.Millisecond)
	r := p.Probe(context.Background(), biz.ProbeTarget{Type: "openai", BaseURL: srv.URL + "/hang", Secret: goodKey, Model: "m", AllowPrivateNetwork: true})
	if r.Reachable || !strings.Contains(r.Error, "no answer within") {
		t.Fatalf("hang: %+v", r)
	}
	closed := httptest.NewServer(http.NotFoundHandler())
	url := closed.URL
	closed.Close()
	r = p.Probe(context.Background(), biz.ProbeTarget{Type: "gemini", BaseURL: url, Secret: goodKey, AllowPrivateNetwork: true})
	if r.Reachable || r.Error == "" {
		t.Fatalf("closed: %+v", r)
	}
}

func TestProbeDoesNotFollowRedirects(t *testing.T) {
	var hits int
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits++
		http.Redirect(w, r, "/elsewhere", http.StatusFound)
	}))
	defer srv.Close()
	r := New(time.Second).Probe(context.Background(), biz.ProbeTarget{Type: "openai", BaseURL: srv.URL + "/v1", Secret: goodKey, Model: "m", AllowPrivateNetwork: true})
	if r.StatusCode != http.StatusFound || r.AuthOK || hits != 1 {
		t.Fatalf("result %+v after %d hits", r, hits)
	}
}
