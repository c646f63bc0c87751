package edge

import (
	"encoding/json"
	"net/http"

	"github.com/lurus-switch/lurus-switch/lurus-common/apperr"
)

// WriteError answers err as {"error":{"reason","message"}} with the status
// of its kind (apperr.Render: an internal cause is never shown), a
// Retry-After header when err carries one, and a WWW-Authenticate
// challenge on 401. It records err for the request's log line (SetError).
func WriteError(w http.ResponseWriter, r *http.Request, err error) {
	SetError(r.Context(), err)
	status, body := apperr.Render(err)
	if v := apperr.RetryAfterHeader(err); v != "" {
		w.Header().Set("Retry-After", v)
	}
	if status == http.StatusUnauthorized {
		w.Header().Set("WWW-Authenticate", `Bearer realm="lurus"`)
	}
	WriteJSON(w, status, body)
}

// WriteJSON answers v, encoded by encoding/json, with status. Edge answers
// are never cached (Cache-Control: no-store).
func WriteJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
