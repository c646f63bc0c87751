package edge

import (
	"strings"

	"github.com/lurus-switch/lurus-switch/lurus-common/apperr"
	"github.com/lurus-switch/lurus-switch/lurus-common/internalapi"
)

// CheckToken is the check of an admin or internal route: authorization
// (an Authorization header value) must be exactly "Bearer <token>",
// compared in constant time. An absent header is MISSING_CREDENTIALS, any
// other mismatch INVALID_CREDENTIALS (both 401). An empty token admits
// nobody.
func CheckToken(authorization, token string) error {
	if authorization == "" {
		return apperr.New(apperr.ReasonMissingCredentials, "send Authorization: Bearer <token>")
	}
	if !internalapi.CheckBearer(authorization, token) {
		return apperr.New(apperr.ReasonInvalidCredentials, "the bearer token is not valid for this route")
	}
	return nil
}

// BearerToken returns the credential of an Authorization value of the
// Bearer scheme (the scheme name in any case, RFC 9110 §11.1) with
// surrounding space trimmed; false for any other value.
func BearerToken(authorization string) (string, bool) {
	if len(authorization) < 7 || !strings.EqualFold(authorization[:7], "bearer ") {
		return "", false
	}
	return strings.TrimSpace(authorization[7:]), true
}

// APIKey returns the user's API key from the headers the vendors' SDKs
// send it in: Authorization: Bearer (OpenAI), X-Api-Key (Anthropic),
// X-Goog-Api-Key (Gemini), the first one present; "" when none is. header
// reads one request header ("" when absent): http.Header.Get, or the
// framework's own lookup. A key in the query string is the caller's
// business: only the gateway's Gemini routes read one.
func APIKey(header func(name string) string) string {
	if v, ok := BearerToken(header("Authorization")); ok {
		return v
	}
	for _, h := range [...]string{"X-Api-Key", "X-Goog-Api-Key"} {
		if v := strings.TrimSpace(header(h)); v != "" {
			return v
		}
	}
	return ""
}
