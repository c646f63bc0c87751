package biz

import (
	"net/url"
	"strings"

	"github.com/lurus-switch/lurus-switch/lurus-common/apperr"
	"github.com/lurus-switch/lurus-switch/lurus-common/modelname"
)

// GeminiModelsPrefix is the path every Gemini model call starts with.
const GeminiModelsPrefix = "/v1beta/models/"

// ParseGeminiPath reads POST /v1beta/models/{model}:{action} from the
// request path exactly as the client sent it (percent-encoding intact,
// nothing decoded or normalized by the router).
//
// The part after the prefix must be one raw path segment; it is decoded
// exactly once, and must then hold exactly one ':' between a model that
// follows modelname.CheckSegment (no '/', ':', '?', '#', '%', …) and one
// of the five relayed actions. So no encoding (%2F, %3A, %3F, %23, %25,
// %252F..) can make the model carry a second action, a query, a fragment
// or another path: such a name is refused, never cleaned. The endpoint
// returned is the one that both prices the call and builds its upstream
// URL.
//
// Refusals are 400: INVALID_MODEL_NAME for the model (or a path that is
// not one segment under the prefix), INVALID_MODEL_ACTION for a missing
// or unknown action.
func ParseGeminiPath(rawPath string) (model string, ep Endpoint, err error) {
	tail, ok := strings.CutPrefix(rawPath, GeminiModelsPrefix)
	if !ok || strings.IndexByte(tail, '/') >= 0 {
		return "", EndpointNone, apperr.New(apperr.ReasonInvalidModelName,
			"the path must be /v1beta/models/{model}:{action} with the model as one path segment")
	}
	seg, uerr := url.PathUnescape(tail)
	if uerr != nil {
		return "", EndpointNone, apperr.New(apperr.ReasonInvalidModelName, "the model path segment is not validly percent-encoded")
	}
	model, action, found := strings.Cut(seg, ":")
	if !found {
		return "", EndpointNone, apperr.New(apperr.ReasonInvalidModelAction, "the path names no action: use {model}:{action}")
	}
	if ep = GeminiAction(action); ep == EndpointNone {
		return "", EndpointNone, apperr.New(apperr.ReasonInvalidModelAction,
			"the action must be one of generateContent, streamGenerateContent, countTokens, embedContent, batchEmbedContents")
	}
	if err := checkModel(model, true); err != nil {
		return "", EndpointNone, err
	}
	return model, ep, nil
}

// checkModel refuses a client's model name outside the grammar of
// lurus-common/modelname with 400 INVALID_MODEL_NAME; segment also
// requires one path segment without ':' (a Gemini path's model).
func checkModel(name string, segment bool) error {
	check := modelname.Check
	if segment {
		check = modelname.CheckSegment
	}
	if err := check(name); err != nil {
		return apperr.New(apperr.ReasonInvalidModelName, err.Error())
	}
	return nil
}
