package mockupstream

import (
	"net/http"
	"strings"
)

// presentedKeys returns every upstream key the request carries, in the
// places the vendors' SDKs put them: Authorization: Bearer (OpenAI, Azure
// with Entra tokens), api-key (Azure), x-api-key (Anthropic),
// x-goog-api-key and ?key= (Gemini). The common case of one key does not
// allocate beyond the returned slice.
func presentedKeys(r *http.Request) []string {
	var keys []string
	if v := r.Header.Get("Authorization"); v != "" {
		if len(v) >= 6 && strings.EqualFold(v[:6], "bearer") {
			v = strings.TrimSpace(v[6:])
		}
		if v != "" {
			keys = append(keys, v)
		}
	}
	for _, name := range [...]string{"Api-Key", "X-Api-Key", "X-Goog-Api-Key"} {
		if v := r.Header.Get(name); v != "" {
			keys = append(keys, v)
		}
	}
	if r.URL.RawQuery != "" {
		if v := r.URL.Query().Get("key"); v != "" {
			keys = append(keys, v)
		}
	}
	return keys
}

// checkKeys returns the reason a request is not authenticated, or "".
// Without a required key any non-empty key passes; with one, every key the
// request presents must equal it, so a gateway that leaks a client key
// alongside the right upstream key is caught too.
func checkKeys(r *http.Request, required string) string {
	keys := presentedKeys(r)
	if len(keys) == 0 {
		return "no API key: send Authorization: Bearer, api-key, x-api-key, x-goog-api-key or ?key="
	}
	if required == "" {
		return ""
	}
	for _, k := range keys {
		if k != required {
			return "incorrect API key provided"
		}
	}
	return ""
}
