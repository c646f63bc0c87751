// Package openairesponses is the adapter of OpenAI's Responses API
// (POST /v1/responses): it reads a Responses request into the canonical
// wire.Request, writes a canonical request for an OpenAI or Azure OpenAI
// upstream's Responses endpoint, decodes that endpoint's answers and
// streams, and encodes canonical answers and streams the way the official
// SDKs expect them.
//
// The Responses API is stateful where other formats are not: a request may
// point at a stored earlier answer (previous_response_id, conversation,
// item_reference) or ask for stored state (background). Those cannot be
// carried to another vendor and are refused, as are built-in tools
// (web_search, file_search, …), which only OpenAI runs. Storage and
// accounting hints (store, metadata, user, service_tier, …) are dropped.
// A request written by this adapter always says store:false, so a
// translated call leaves nothing stored at the upstream.
package openairesponses

import (
	"bytes"
	"encoding/json"
	"time"

	"github.com/lurus-switch/lurus-switch/lurus-common/wire"
	"github.com/lurus-switch/lurus-switch/lurus-common/wire/openaichat"
)

// Adapter implements the wire adapter interfaces for the Responses API.
// The zero value is ready to use.
type Adapter struct {
	// Now stamps created_at on encoded answers; nil means time.Now. Tests
	// set it so that encoded answers are reproducible.
	Now func() time.Time
}

var (
	_ wire.RequestReader   = Adapter{}
	_ wire.RequestWriter   = Adapter{}
	_ wire.ResponseDecoder = Adapter{}
	_ wire.ResponseEncoder = Adapter{}
	_ wire.StreamDecoder   = Adapter{}
	_ wire.StreamEncoder   = Adapter{}
	_ wire.UsageReader     = Adapter{}
	_ wire.ErrorRenderer   = Adapter{}
	_ wire.ErrorDecoder    = Adapter{}
	_ wire.Metered         = Adapter{}
	_ wire.StreamCutter    = Adapter{}
)

func (a Adapter) now() int64 {
	if a.Now != nil {
		return a.Now().Unix()
	}
	return time.Now().Unix()
}

// usageJSON is the Responses usage object. input_tokens includes cached
// and cache-write tokens and output_tokens includes reasoning tokens, the
// same convention as wire.Usage, so the mapping is field by field.
// cache_write_tokens is not in OpenAI's own answers; OpenAI-compatible
// servers that report cache writes put it beside cached_tokens, as they do
// in chat usage.
type usageJSON struct {
	InputTokens        int64 `json:"input_tokens"`
	InputTokensDetails struct {
		CachedTokens     int64 `json:"cached_tokens"`
		CacheWriteTokens int64 `json:"cache_write_tokens,omitempty"`
	} `json:"input_tokens_details"`
	OutputTokens        int64 `json:"output_tokens"`
	OutputTokensDetails struct {
		ReasoningTokens int64 `json:"reasoning_tokens"`
	} `json:"output_tokens_details"`
	TotalTokens int64 `json:"total_tokens"`
}

func (u *usageJSON) canonical() wire.Usage {
	return wire.Usage{
		Prompt:     u.InputTokens,
		Completion: u.OutputTokens,
		Cached:     u.InputTokensDetails.CachedTokens,
		CacheWrite: u.InputTokensDetails.CacheWriteTokens,
		Reasoning:  u.OutputTokensDetails.ReasoningTokens,
	}
}

func usageOf(u wire.Usage) *usageJSON {
	out := &usageJSON{InputTokens: u.Prompt, OutputTokens: u.Completion, TotalTokens: u.Prompt + u.Completion}
	out.InputTokensDetails.CachedTokens = u.Cached
	out.InputTokensDetails.CacheWriteTokens = u.CacheWrite
	out.OutputTokensDetails.ReasoningTokens = u.Reasoning
	return out
}

var usageMark = []byte(`"usage"`)

// ReadUsage reads the usage of a complete answer or of a stream event:
// response.completed, response.incomplete and response.failed carry it in
// their response object. Data without the bytes "usage" is not parsed.
func (Adapter) ReadUsage(data []byte) (wire.Usage, bool) {
	if !bytes.Contains(data, usageMark) {
		return wire.Usage{}, false
	}
	var doc struct {
		Type     string     `json:"type"`
		Usage    *usageJSON `json:"usage"`
		Response *struct {
			Usage *usageJSON `json:"usage"`
		} `json:"response"`
	}
	if json.Unmarshal(data, &doc) != nil {
		return wire.Usage{}, false
	}
	u := doc.Usage
	if doc.Response != nil {
		u = doc.Response.Usage
	}
	if u == nil {
		return wire.Usage{}, false
	}
	return u.canonical(), true
}

// RenderError renders an error in OpenAI's shape, which chat and
// Responses share: the chat adapter's renderer, so both answer the same
// bytes.
func (Adapter) RenderError(status int, reason, message string) []byte {
	return openaichat.Adapter{}.RenderError(status, reason, message)
}

// DecodeError reads the message of an upstream error body: OpenAI's
// {"error":{"message"}} or a stream's {"type":"error","message"}. It is
// empty when the body says nothing readable.
func (Adapter) DecodeError(body []byte) string {
	var doc struct {
		Error json.RawMessage `json:"error"`
		// Message is set on a stream's error event.
		Message string `json:"message"`
	}
	if json.Unmarshal(body, &doc) != nil {
		return ""
	}
	var inner struct {
		Message string `json:"message"`
	}
	if json.Unmarshal(doc.Error, &inner) == nil && inner.Message != "" {
		return inner.Message
	}
	var s string
	if json.Unmarshal(doc.Error, &s) == nil && s != "" {
		return s
	}
	return doc.Message
}

// marshal encodes v without HTML escaping (the output is JSON for API
// clients, not HTML) and without the encoder's trailing newline.
func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte{'\n'}), nil
}
