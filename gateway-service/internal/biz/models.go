package biz

import (
	"context"
	"encoding/json"
	"net/http"

	"github.com/lurus-switch/lurus-switch/lurus-common/apperr"
)

// ListModels serves GET /v1/models and GET /v1beta/models: the models
// this key may use that some provider of format f serves, in f's list
// format. It emits a log.write outcome like every request.
func (r *Relay) ListModels(ctx context.Context, req *Request, f Format, w ClientWriter) {
	o := &Outcome{RequestID: req.ID, ClientRequestID: req.ClientID, Format: f, Endpoint: EndpointModels, StartedAt: req.Started,
		ClientIP: req.ClientIP, UserAgent: req.UserAgent, UsageSource: SourceNone, Status: StatusOK}
	req.setIDHeaders(w)
	ki, err := r.authenticate(ctx, req)
	if err == nil {
		o.UserID, o.KeyID = ki.UserID, ki.KeyID
		// No model is named: the list is filtered by the allow-list instead.
		err = ki.Authorize(req.ClientIP, r.Now())
	}
	if err != nil {
		status, body := ErrorBody(f, err)
		o.StatusCode, o.ErrorReason, o.Status = status, string(apperr.ReasonOf(err)), StatusRejected
		if v := apperr.RetryAfterHeader(err); v != "" {
			w.SetHeader("Retry-After", v)
		}
		w.WriteBody(status, "application/json", body)
	} else {
		names := r.Router.Models(f, ki.AllowsModel)
		w.WriteBody(http.StatusOK, "application/json", ModelList(f, names))
		o.StatusCode = http.StatusOK
	}
	o.FinishedAt = r.Now()
	r.Metrics.Request(EndpointModels.String(), "", "", o.StatusCode, o.FinishedAt.Sub(o.StartedAt))
	r.Events.Emit(o)
}

// ModelList renders model names in format f's list shape.
func ModelList(f Format, names []string) []byte {
	type openAIModel struct {
		ID      string `json:"id"`
		Object  string `json:"object"`
		Created int64  `json:"created"`
		OwnedBy string `json:"owned_by"`
	}
	type anthropicModel struct {
		Type        string `json:"type"`
		ID          string `json:"id"`
		DisplayName string `json:"display_name"`
		CreatedAt   string `json:"created_at"`
	}
	type geminiModel struct {
		Name        string   `json:"name"`
		DisplayName string   `json:"displayName"`
		Methods     []string `json:"supportedGenerationMethods"`
	}
	var v any
	switch f {
	case FormatAnthropic:
		data := make([]anthropicModel, 0, len(names))
		for _, n := range names {
			data = append(data, anthropicModel{"model", n, n, "1970-01-01T00:00:00Z"})
		}
		first, last := "", ""
		if len(names) > 0 {
			first, last = names[0], names[len(names)-1]
		}
		v = map[string]any{"data": data, "has_more": false, "first_id": first, "last_id": last}
	case FormatGemini:
		data := make([]geminiModel, 0, len(names))
		for _, n := range names {
			data = append(data, geminiModel{"models/" + n, n,
				[]string{"generateContent", "streamGenerateContent", "countTokens", "embedContent", "batchEmbedContents"}})
		}
		v = map[string]any{"models": data}
	default:
		data := make([]openAIModel, 0, len(names))
		for _, n := range names {
			data = append(data, openAIModel{n, "model", 0, "lurus"})
		}
		v = map[string]any{"object": "list", "data": data}
	}
	b, _ := json.Marshal(v)
	return b
}
