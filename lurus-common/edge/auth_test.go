package edge

import (
	"net/http"
	"testing"

	"github.com/lurus-switch/lurus-switch/lurus-common/apperr"
)

func TestCheckToken(t *testing.T) {
	for _, tt := range []struct {
		name, header, token string
		want                apperr.Reason // "" admits
	}{
		{"match", "Bearer tok", "tok", ""},
		{"absent", "", "tok", apperr.ReasonMissingCredentials},
		{"other token", "Bearer tok2", "tok", apperr.ReasonInvalidCredentials},
		{"other scheme", "Basic tok", "tok", apperr.ReasonInvalidCredentials},
		{"no scheme", "tok", "tok", apperr.ReasonInvalidCredentials},
		{"empty token admits nobody", "Bearer ", "", apperr.ReasonInvalidCredentials},
	} {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckToken(tt.header, tt.token)
			if tt.want == "" {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if apperr.ReasonOf(err) != tt.want || apperr.KindOf(err).HTTPStatus() != http.StatusUnauthorized {
				t.Fatalf("got %v, want %s (401)", err, tt.want)
			}
		})
	}
}

func TestAPIKey(t *testing.T) {
	for _, tt := range []struct {
		name    string
		headers map[string]string
		want    string
	}{
		{"bearer", map[string]string{"Authorization": "Bearer sk-a"}, "sk-a"},
		{"scheme in any case, space trimmed", map[string]string{"Authorization": "bEARER  sk-a "}, "sk-a"},
		{"anthropic", map[string]string{"X-Api-Key": "sk-b"}, "sk-b"},
		{"gemini", map[string]string{"X-Goog-Api-Key": "sk-c"}, "sk-c"},
		{"bearer first", map[string]string{"Authorization": "Bearer sk-a", "X-Api-Key": "sk-b"}, "sk-a"},
		{"basic is no key, the next header is", map[string]string{"Authorization": "Basic x", "X-Api-Key": "sk-b"}, "sk-b"},
		{"none", map[string]string{"Cookie": "k=v"}, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			h := http.Header{}
			for k, v := range tt.headers {
				h.Set(k, v)
			}
			if got := APIKey(h.Get); got != tt.want {
				t.Fatalf("APIKey = %q, want %q", got, tt.want)
			}
		})
	}
}
