package biz

import (
	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"

	"github.com/lurus-switch/lurus-switch/lurus-common/apperr"
)

// RequestInfo is what the gateway reads from a request body: only the
// fields it needs, found by gjson without decoding the rest.
type RequestInfo struct {
	Model string
	// Stream is the body's "stream" (OpenAI, Anthropic) or the
	// streamGenerateContent action (Gemini).
	Stream bool
	// IncludeUsage is stream_options.include_usage as the client sent it.
	IncludeUsage bool
	// MaxOutput is the request's output cap (0 when it sets none).
	MaxOutput int64
}

// maxOutputPaths are the fields that cap output, per format.
var maxOutputPaths = [...][]string{
	FormatOpenAI:    {"max_completion_tokens", "max_tokens", "max_output_tokens"},
	FormatAnthropic: {"max_tokens"},
	FormatGemini:    {"generationConfig.maxOutputTokens", "generation_config.max_output_tokens"},
}

// ParseRequest validates body as a JSON object and reads its fields.
// pathModel is the model of a Gemini path ("" otherwise). It refuses
// malformed JSON, a missing model and a model name outside the grammar of
// lurus-common/modelname (INVALID_MODEL_NAME) with 400 reasons; a Gemini
// path model must also be one path segment.
func ParseRequest(ep Endpoint, pathModel string, body []byte) (RequestInfo, error) {
	var info RequestInfo
	if !gjson.ValidBytes(body) {
		return info, apperr.New(apperr.ReasonMalformedJSON, "request body is not valid JSON")
	}
	root := gjson.ParseBytes(body)
	if !root.IsObject() {
		return info, apperr.New(apperr.ReasonMalformedJSON, "request body must be a JSON object")
	}
	f := ep.Format()
	if f == FormatGemini {
		info.Model = pathModel
		if err := checkModel(info.Model, true); err != nil {
			return info, err
		}
		info.Stream = ep == EndpointStreamGenerateContent
	} else {
		m := root.Get("model")
		if m.Type != gjson.String || m.Str == "" {
			return info, apperr.New(apperr.ReasonMissingModel, "request has no model")
		}
		info.Model = m.Str
		if err := checkModel(info.Model, false); err != nil {
			return info, err
		}
		info.Stream = root.Get("stream").Type == gjson.True
		info.IncludeUsage = root.Get("stream_options.include_usage").Type == gjson.True
	}
	for _, p := range maxOutputPaths[f] {
		if v := root.Get(p); v.Type == gjson.Number && v.Int() > 0 {
			info.MaxOutput = v.Int()
			break
		}
	}
	return info, nil
}

// InjectsUsage reports whether the upstream request must get
// stream_options.include_usage=true (OpenAI chat and completions streams
// the client did not ask usage for).
func (info RequestInfo) InjectsUsage(ep Endpoint) bool {
	return info.Stream && !info.IncludeUsage && (ep == EndpointChatCompletions || ep == EndpointCompletions)
}

// RewriteRequest edits body for upstream, in place where possible: the
// model alias becomes the upstream name (OpenAI and Anthropic bodies; a
// Gemini model lives in the path) and usage is requested on OpenAI
// streams. Nothing else of the body is touched.
func RewriteRequest(ep Endpoint, info RequestInfo, upstreamModel string, body []byte) ([]byte, error) {
	var err error
	if ep.Format() != FormatGemini && upstreamModel != info.Model {
		body, err = sjson.SetBytesOptions(body, "model", upstreamModel, &sjson.Options{ReplaceInPlace: true})
		if err != nil {
			return nil, apperr.Wrap(err, apperr.ReasonMalformedJSON, "cannot rewrite model")
		}
	}
	if info.InjectsUsage(ep) {
		body, err = sjson.SetBytesOptions(body, "stream_options.include_usage", true, &sjson.Options{ReplaceInPlace: true})
		if err != nil {
			return nil, apperr.Wrap(err, apperr.ReasonMalformedJSON, "cannot request usage")
		}
	}
	return body, nil
}

// RenameModel rewrites the model field at path of a response document
// from the upstream name back to the one the client asked for. doc is
// returned unchanged when the field is absent or holds another name.
func RenameModel(doc []byte, path, from, to string) []byte {
	v := gjson.GetBytes(doc, path)
	if v.Type != gjson.String || v.Str != from {
		return doc
	}
	out, err := sjson.SetBytes(doc, path, to)
	if err != nil {
		return doc
	}
	return out
}
