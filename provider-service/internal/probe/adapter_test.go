package probe

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/lurus-switch/lurus-switch/lurus-common/wire"
	"github.com/lurus-switch/lurus-switch/lurus-common/wire/openaichat"
	"github.com/lurus-switch/lurus-switch/provider-service/internal/biz"
)

// recorder answers every request with status and body and keeps the last
// request as the upstream saw it.
type recorder struct {
	status int
	body   string
	uri    string
	method string
	header http.Header
	sent   []byte
}

func (rc *recorder) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	rc.uri, rc.method, rc.header = r.RequestURI, r.Method, r.Header.Clone()
	rc.sent, _ = io.ReadAll(r.Body)
	w.WriteHeader(rc.status)
	_, _ = w.Write([]byte(rc.body))
}

// TestProbeSendsWhatTheAdapterWrites: the request the upstream receives is
// exactly the chat completions call the OpenAI adapter writes for the
// provider — the relay's own URL rules (Azure's default api-version, the
// deployment path-escaped), its credential header winning over the
// provider's extra headers, and the one-token ping body.
func TestProbeSendsWhatTheAdapterWrites(t *testing.T) {
	rc := &recorder{status: 200, body: `{"choices":[]}`}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	p := New(2 * time.Second)
	for _, tt := range []struct {
		name    string
		target  biz.ProbeTarget
		wantURI string
	}{
		{"openai", biz.ProbeTarget{Type: "openai", BaseURL: srv.URL + "/v1/", Model: "gpt-4o"}, "/v1/chat/completions"},
		{"compatible", biz.ProbeTarget{Type: "openai-compatible", BaseURL: srv.URL + "/v1", Model: "deepseek-chat"}, "/v1/chat/completions"},
		{"azure default api-version, escaped deployment", biz.ProbeTarget{Type: "azure-openai", BaseURL: srv.URL, Model: "my dep/1?x"},
			"/openai/deployments/my%20dep%2F1%3Fx/chat/completions?api-version=" + openaichat.AzureAPIVersion},
		{"azure api-version", biz.ProbeTarget{Type: "azure-openai", BaseURL: srv.URL, APIVersion: "2025-01-01-preview", Model: "prod"},
			"/openai/deployments/prod/chat/completions?api-version=2025-01-01-preview"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			tt.target.Secret, tt.target.AllowPrivateNetwork = goodKey, true
			// An extra header naming a credential cannot replace the key.
			tt.target.Headers = map[string]string{"Authorization": "Bearer sk-other", "Api-Key": "sk-other", "X-Extra": "1"}
			r := p.Probe(context.Background(), tt.target)
			if !r.AuthOK || r.StatusCode != 200 || r.Error != "" {
				t.Fatalf("result %+v", r)
			}
			want, err := openaichat.Adapter{}.WriteRequest(ping(), wire.Upstream{Type: tt.target.Type, BaseURL: tt.target.BaseURL,
				APIVersion: tt.target.APIVersion, Secret: tt.target.Secret, Model: tt.target.Model})
			if err != nil {
				t.Fatal(err)
			}
			if rc.method != http.MethodPost || srv.URL+rc.uri != want.URL || rc.uri != tt.wantURI {
				t.Fatalf("upstream saw %s %s, adapter wrote %s", rc.method, rc.uri, want.URL)
			}
			for _, h := range want.Headers {
				if got := rc.header.Values(h.Key); len(got) != 1 || got[0] != h.Value {
					t.Errorf("header %s = %q, adapter wrote %q", h.Key, got, h.Value)
				}
			}
			if rc.header.Get("X-Extra") != "1" {
				t.Error("the provider's extra header is missing")
			}
			if !bytes.Equal(rc.sent, want.Body) {
				t.Fatalf("body %s, adapter wrote %s", rc.sent, want.Body)
			}
			var body struct {
				Model    string `json:"model"`
				Messages []struct {
					Role, Content string
				} `json:"messages"`
				MaxCompletionTokens int64 `json:"max_completion_tokens"`
				MaxTokens           int64 `json:"max_tokens"`
				Stream              bool  `json:"stream"`
			}
			if err := json.Unmarshal(rc.sent, &body); err != nil {
				t.Fatal(err)
			}
			if body.Model != tt.target.Model || len(body.Messages) != 1 || body.Messages[0].Content != "ping" ||
				body.MaxCompletionTokens+body.MaxTokens != 1 || body.Stream {
				t.Fatalf("ping body %s", rc.sent)
			}
		})
	}
}

// TestProbeReadsErrorsWithTheAdapter: the upstream's message comes from
// the adapter's ErrorDecoder (which also knows the {"error": "..."} shape
// of compatible servers), is cut and redacted, and an auth failure is
// classified as such.
func TestProbeReadsErrorsWithTheAdapter(t *testing.T) {
	rc := &recorder{}
	srv := httptest.NewServer(rc)
	defer srv.Close()
	target := biz.ProbeTarget{Type: "openai-compatible", BaseURL: srv.URL + "/v1", Model: "m", Secret: goodKey, AllowPrivateNetwork: true}
	for _, c := range []struct {
		status int
		body   string
		class  string
		want   string
	}{
		{401, `{"error":"invalid api key"}`, biz.ProbeAuthFailed, "upstream answered 401 Unauthorized: invalid api key"},
		{403, `{"message":"key ` + goodKey + ` is suspended"}`, biz.ProbeAuthFailed, "upstream answered 403 Forbidden: key "},
		{404, `{"error":{"message":"The model m does not exist"}}`, biz.ProbeBadStatus, "upstream answered 404 Not Found: The model m does not exist"},
		{500, `<html>oops</html>`, biz.ProbeBadStatus, "upstream answered 500 Internal Server Error"},
		{400, `{"error":{"message":"` + strings.Repeat("x", 300) + `"}}`, biz.ProbeBadStatus, "upstream answered 400 Bad Request: " + strings.Repeat("x", 200) + "…"},
	} {
		rc.status, rc.body = c.status, c.body
		r := New(2*time.Second).Probe(context.Background(), target)
		if biz.Classify(r) != c.class || !strings.HasPrefix(r.Error, c.want) || strings.Contains(r.Error, goodKey) {
			t.Errorf("%d %s: class %s, error %q", c.status, c.body, biz.Classify(r), r.Error)
		}
		if c.status == 500 && r.Error != c.want {
			t.Errorf("a body without a message added text: %q", r.Error)
		}
	}
}

// TestProbeRefusesUnknownType: no adapter and no legacy path, no request.
func TestProbeRefusesUnknownType(t *testing.T) {
	r := New(time.Second).Probe(context.Background(), biz.ProbeTarget{Type: "cohere", BaseURL: "https://example.com", Secret: goodKey})
	if r.Reachable || !strings.Contains(r.Error, "unknown provider type") {
		t.Fatalf("result %+v", r)
	}
}
