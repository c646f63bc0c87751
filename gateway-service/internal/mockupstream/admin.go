package mockupstream

import (
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"strings"
)

// serveControl answers /health and the /__ control routes listed in the
// package documentation.
func (s *Server) serveControl(w http.ResponseWriter, r *http.Request) {
	p := r.URL.Path
	switch {
	case p == "/health":
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			controlError(w, http.StatusMethodNotAllowed, "METHOD_NOT_ALLOWED", "use GET")
			return
		}
		writeControlJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	case p == "/__requests":
		switch r.Method {
		case http.MethodGet:
			limit := 0
			if v := r.URL.Query().Get("limit"); v != "" {
				n, err := strconv.Atoi(v)
				if err != nil || n < 0 {
					controlError(w, http.StatusBadRequest, "INVALID_LIMIT", "limit must be a non-negative integer")
					return
				}
				limit = n
			}
			writeControlJSON(w, http.StatusOK, map[string]any{"items": s.Requests(limit)})
		case http.MethodDelete:
			s.ResetRequests()
			w.WriteHeader(http.StatusNoContent)
		default:
			controlError(w, http.StatusMethodNotAllowed, "METHOD_NOT_ALLOWED", "use GET or DELETE")
		}
	case p == "/__stats":
		switch r.Method {
		case http.MethodGet:
			writeControlJSON(w, http.StatusOK, s.Stats())
		case http.MethodDelete:
			s.ResetStats()
			w.WriteHeader(http.StatusNoContent)
		default:
			controlError(w, http.StatusMethodNotAllowed, "METHOD_NOT_ALLOWED", "use GET or DELETE")
		}
	case p == "/__scenarios" || p == "/__scenarios/":
		if r.Method != http.MethodGet {
			controlError(w, http.StatusMethodNotAllowed, "METHOD_NOT_ALLOWED", "use GET")
			return
		}
		writeControlJSON(w, http.StatusOK, map[string]any{"items": s.scenarios.all()})
	case strings.HasPrefix(p, "/__scenarios/"):
		s.serveScenario(w, r, p[len("/__scenarios/"):])
	default:
		controlError(w, http.StatusNotFound, "NOT_FOUND", "no such control route: "+p)
	}
}

func (s *Server) serveScenario(w http.ResponseWriter, r *http.Request, name string) {
	if !validName(name) {
		controlError(w, http.StatusBadRequest, "INVALID_SCENARIO_NAME", "scenario names are 1-128 of [A-Za-z0-9._-]")
		return
	}
	switch r.Method {
	case http.MethodGet:
		st, ok := s.scenarios.get(name)
		if !ok {
			controlError(w, http.StatusNotFound, "SCENARIO_NOT_FOUND", "no scenario "+name)
			return
		}
		writeControlJSON(w, http.StatusOK, st)
	case http.MethodPut:
		data, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<20))
		if err != nil {
			controlError(w, http.StatusBadRequest, "INVALID_SCENARIO", err.Error())
			return
		}
		st, err := DecodeSettings(data)
		if err == nil {
			err = s.SetScenario(name, st)
		}
		if err != nil {
			controlError(w, http.StatusBadRequest, "INVALID_SCENARIO", err.Error())
			return
		}
		w.WriteHeader(http.StatusNoContent)
	case http.MethodDelete:
		s.DeleteScenario(name)
		w.WriteHeader(http.StatusNoContent)
	default:
		controlError(w, http.StatusMethodNotAllowed, "METHOD_NOT_ALLOWED", "use GET, PUT or DELETE")
	}
}

func writeControlJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", contentTypeJSON)
	w.WriteHeader(status)
	enc := json.NewEncoder(w)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(v)
}

func controlError(w http.ResponseWriter, status int, reason, message string) {
	writeControlJSON(w, status, map[string]any{"error": map[string]string{"reason": reason, "message": message}})
}
