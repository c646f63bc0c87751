package server

import (
	"net/http"

	"github.com/gorilla/mux"

	"github.com/lurus-switch/lurus-switch/lurus-common/edge"
)

// routeLabel records the matched route template (a low-cardinality label
// for metrics and logs). It runs inside the router, where the match is
// known.
func routeLabel(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if route := mux.CurrentRoute(r); route != nil {
			if t, err := route.GetPathTemplate(); err == nil {
				edge.SetRoute(r.Context(), t)
			}
		}
		next.ServeHTTP(w, r)
	})
}
