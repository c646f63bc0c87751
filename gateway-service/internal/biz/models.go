package biz

import (
	"context"
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

// ModelList renders model names in format f's list shape (the format's
// adapter's wire.ModelLister).
func ModelList(f Format, names []string) []byte { return f.family().models.EncodeModelList(names) }
