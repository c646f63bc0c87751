// Package biz is the gateway's domain: API formats and endpoints, request
// inspection and byte-level rewrites, usage extraction, error rendering in
// each caller's format, key verification and caching, the price estimate,
// routing, the circuit breaker, the retry budget and the relay use case
// that ties them together. It imports no transport or driver package; the
// interfaces it needs (Upstream, KeyVerifier, Admitter, EventSink, …) are
// declared here and implemented in internal/data and internal/publisher.
package biz

import "github.com/lurus-switch/lurus-switch/lurus-common/internalapi"

// Format is an API family as a client speaks it.
type Format uint8

// The formats.
const (
	FormatOpenAI Format = iota
	FormatAnthropic
	FormatGemini
)

// formats is what the gateway itself must know of each format: its name,
// and how its routes differ. Everything else about a format is its wire
// adapters' (adapters.go).
var formats = [...]struct {
	name string
	// routed: the route names the model (/v1beta/models/{model}:{action})
	// and decides whether the call streams, so a body has no model to read
	// or rewrite, and a stream's content type does not tell it is one.
	routed bool
	// arrays: a stream is a streamed JSON array unless the client asked for
	// SSE (alt=sse).
	arrays bool
}{
	FormatOpenAI:    {name: "openai"},
	FormatAnthropic: {name: "anthropic"},
	FormatGemini:    {name: "gemini", routed: true, arrays: true},
}

func (f Format) info() int {
	if int(f) < len(formats) {
		return int(f)
	}
	return int(FormatOpenAI)
}

// String is the name used in events (api_format) and metrics.
func (f Format) String() string { return formats[f.info()].name }

// routed reports whether the route, not the body, names the model and
// decides streaming.
func (f Format) routed() bool { return formats[f.info()].routed }

// providerFormat is the format a provider of type typ speaks; ok is false
// for an unknown type.
func providerFormat(typ string) (f Format, ok bool) {
	switch typ {
	case internalapi.TypeOpenAI, internalapi.TypeAzureOpenAI, internalapi.TypeOpenAICompatible:
		return FormatOpenAI, true
	case internalapi.TypeAnthropic:
		return FormatAnthropic, true
	case internalapi.TypeGemini:
		return FormatGemini, true
	}
	return FormatOpenAI, false
}

// Serves reports whether a provider of type typ speaks format f.
func (f Format) Serves(typ string) bool {
	g, ok := providerFormat(typ)
	return ok && g == f
}

// ProviderFormat is the API family a provider of type typ speaks.
func ProviderFormat(typ string) Format {
	f, _ := providerFormat(typ)
	return f
}

// FormatForPath is the format an unknown path implies, for its 404:
// /v1beta → Gemini, /v1/messages → Anthropic, anything else OpenAI.
func FormatForPath(path string) Format {
	switch {
	case hasPrefix(path, "/v1beta"):
		return FormatGemini
	case hasPrefix(path, "/v1/messages"):
		return FormatAnthropic
	}
	return FormatOpenAI
}

func hasPrefix(s, p string) bool { return len(s) >= len(p) && s[:len(p)] == p }

// Endpoint is one relayed operation.
type Endpoint uint8

// The endpoints of DESIGN.md §3.
const (
	EndpointNone Endpoint = iota
	EndpointChatCompletions
	EndpointCompletions
	EndpointEmbeddings
	EndpointResponses
	EndpointMessages
	EndpointCountTokens
	EndpointGenerateContent
	EndpointStreamGenerateContent
	EndpointGeminiCountTokens
	EndpointEmbedContent
	EndpointBatchEmbedContents
	EndpointModels
)

var endpointInfo = [...]struct {
	name   string
	format Format
	op     string // upstream path suffix (OpenAI/Anthropic) or Gemini action
}{
	EndpointNone:                  {"none", FormatOpenAI, ""},
	EndpointChatCompletions:       {"chat.completions", FormatOpenAI, "/chat/completions"},
	EndpointCompletions:           {"completions", FormatOpenAI, "/completions"},
	EndpointEmbeddings:            {"embeddings", FormatOpenAI, "/embeddings"},
	EndpointResponses:             {"responses", FormatOpenAI, "/responses"},
	EndpointMessages:              {"messages", FormatAnthropic, "/v1/messages"},
	EndpointCountTokens:           {"messages.count_tokens", FormatAnthropic, "/v1/messages/count_tokens"},
	EndpointGenerateContent:       {"generateContent", FormatGemini, "generateContent"},
	EndpointStreamGenerateContent: {"streamGenerateContent", FormatGemini, "streamGenerateContent"},
	EndpointGeminiCountTokens:     {"countTokens", FormatGemini, "countTokens"},
	EndpointEmbedContent:          {"embedContent", FormatGemini, "embedContent"},
	EndpointBatchEmbedContents:    {"batchEmbedContents", FormatGemini, "batchEmbedContents"},
	EndpointModels:                {"models", FormatOpenAI, ""},
}

// String is the endpoint's name in events, logs and metrics.
func (e Endpoint) String() string { return endpointInfo[e].name }

// Format is the API family of the endpoint.
func (e Endpoint) Format() Format { return endpointInfo[e].format }

// Billable reports whether the endpoint consumes tokens that are paid for
// (count-token calls are free upstream and here).
func (e Endpoint) Billable() bool {
	return e != EndpointCountTokens && e != EndpointGeminiCountTokens && e != EndpointModels && e != EndpointNone
}

// HasOutput reports whether the endpoint generates output tokens.
func (e Endpoint) HasOutput() bool {
	switch e {
	case EndpointChatCompletions, EndpointCompletions, EndpointResponses, EndpointMessages,
		EndpointGenerateContent, EndpointStreamGenerateContent:
		return true
	}
	return false
}

// GeminiAction maps the action after ':' in /v1beta/models/{model}:{action}
// to its endpoint (EndpointNone when unknown).
func GeminiAction(action string) Endpoint {
	switch action {
	case "generateContent":
		return EndpointGenerateContent
	case "streamGenerateContent":
		return EndpointStreamGenerateContent
	case "countTokens":
		return EndpointGeminiCountTokens
	case "embedContent":
		return EndpointEmbedContent
	case "batchEmbedContents":
		return EndpointBatchEmbedContents
	}
	return EndpointNone
}

// arrayStream reports whether the client's stream is a streamed JSON
// array rather than SSE events.
func (req *Request) arrayStream() bool {
	return formats[req.Endpoint.Format().info()].arrays && !req.GeminiSSE
}
