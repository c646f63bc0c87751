package probe

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lurus-switch/lurus-switch/provider-service/internal/biz"
)

const goodKey = "sk-good-0123456789abcdef"

// upstream speaks the model-list endpoints of the four vendors, accepting
// only goodKey where each vendor expects it, and records what it saw.
type upstream struct {
	mu   sync.Mutex
	seen []*http.Request
}

func (u *upstream) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	u.mu.Lock()
	u.seen = append(u.seen, r.Clone(context.Background()))
	u.mu.Unlock()
	var key string
	switch r.URL.Path {
	case "/v1/models":
		if r.Header.Get("x-api-key") != "" {
			key = r.Header.Get("x-api-key")
			if r.Header.Get("anthropic-version") == "" {
				http.Error(w, `{"error":{"message":"anthropic-version missing"}}`, http.StatusBadRequest)
				return
			}
		} else {
			key = strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
		}
	case "/openai/models":
		if r.URL.Query().Get("api-version") == "" {
			http.Error(w, "no api-version", http.StatusNotFound)
			return
		}
		key = r.Header.Get("api-key")
	case "/v1beta/models":
		key = r.Header.Get("x-goog-api-key")
	case "/hang/models":
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
		name     string
		target   biz.ProbeTarget
		authOK   bool
		status   int
		wantPath string
	}{
		{"openai", biz.ProbeTarget{Type: "openai", BaseURL: srv.URL + "/v1"}, true, 200, "/v1/models"},
		{"compatible", biz.ProbeTarget{Type: "openai-compatible", BaseURL: srv.URL + "/v1"}, true, 200, "/v1/models"},
		{"azure", biz.ProbeTarget{Type: "azure-openai", BaseURL: srv.URL, APIVersion: "2024-10-21"}, true, 200, "/openai/models"},
		{"anthropic", biz.ProbeTarget{Type: "anthropic", BaseURL: srv.URL}, true, 200, "/v1/models"},
		{"gemini", biz.ProbeTarget{Type: "gemini", BaseURL: srv.URL}, true, 200, "/v1beta/models"},
		{"wrong key", biz.ProbeTarget{Type: "openai", BaseURL: srv.URL + "/v1", Secret: "sk-wrong-0123456789"}, false, 401, "/v1/models"},
		{"wrong path", biz.ProbeTarget{Type: "openai", BaseURL: srv.URL + "/nope"}, false, 404, "/nope/models"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.target.AllowPrivateNetwork = true
			if tt.target.Secret == "" {
				tt.target.Secret = goodKey
			}
			r := p.Probe(context.Background(), tt.target)
			if !r.Reachable || r.AuthOK != tt.authOK || r.StatusCode != tt.status {
				t.Fatalf("result %+v", r)
			}
			up.mu.Lock()
			last := up.seen[len(up.seen)-1]
			up.mu.Unlock()
			if last.URL.Path != tt.wantPath || last.Method != http.MethodGet {
				t.Fatalf("upstream saw %s %s", last.Method, last.URL.Path)
			}
			if strings.Contains(r.Error, tt.target.Secret) {
				t.Fatalf("error leaks the key: %s", r.Error)
			}
			if !tt.authOK && r.Error == "" {
				t.Fatal("failure without an error message")
			}
		})
	}
}

func TestProbeRefusesPrivateAddressWithoutFlag(t *testing.T) {
	up := &upstream{}
	srv := httptest.NewServer(up)
	defer srv.Close()
	r := New(2*time.Second).Probe(context.Background(), biz.ProbeTarget{Type: "openai", BaseURL: srv.URL + "/v1", Secret: goodKey})
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
	r := p.Probe(context.Background(), biz.ProbeTarget{Type: "openai", BaseURL: srv.URL + "/hang", Secret: goodKey, AllowPrivateNetwork: true})
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
	r := New(time.Second).Probe(context.Background(), biz.ProbeTarget{Type: "openai", BaseURL: srv.URL + "/v1", Secret: goodKey, AllowPrivateNetwork: true})
	if r.StatusCode != http.StatusFound || r.AuthOK || hits != 1 {
		t.Fatalf("result %+v after %d hits", r, hits)
	}
}
