// Package anthropic is the wire adapter of the Anthropic Messages API
// (POST /v1/messages, streaming or not, and POST /v1/messages/count_tokens):
// it reads a client's Messages body into a wire.Request, writes a
// wire.Request for a provider of type "anthropic", and decodes and encodes
// answers, streams, usage and errors.
//
// Decisions that change what a client gets, and why:
//
//   - max_tokens is required by Anthropic. The writer puts the gateway's
//     priced cap (Request.MaxOutputTokens) there and refuses with
//     ErrNoOutputCap when it is 0 rather than invent a number the caller was
//     not charged for.
//   - Image URLs are written as {"type":"url"} sources, which the Messages
//     API accepts: Anthropic fetches them, the gateway never does. A data:
//     URL is turned into a base64 source.
//   - JSON mode and JSON schema are refused by the writer (field
//     "response_format"): structured outputs exist only on some Claude
//     models, and emulating them with a forced tool would change the shape
//     of the answer.
//   - thinking (enabled or adaptive) and output_config.effort are refused
//     by the reader: the canonical request cannot carry a thinking budget,
//     and dropping it would change both the answer and its cost. thinking
//     {"type":"disabled"} is the default and is dropped.
//   - Reasoning parts are dropped from history by the writer: Anthropic
//     accepts thinking blocks back only with the signature it issued, which
//     the canonical form does not keep, and without thinking enabled they
//     are not needed.
//   - Fields only Anthropic has (document and search_result blocks, file
//     sources, server tools, mcp_servers, container, context_management,
//     any field this reader does not know) go to Request.Refused; metadata,
//     service_tier and cache_control are hints and are dropped.
//   - A temperature above 1 (OpenAI allows 2) is refused, not clamped.
//   - Usage: input_tokens excludes cache reads and writes, so the canonical
//     Prompt is input_tokens + cache_read_input_tokens +
//     cache_creation_input_tokens; encoders subtract them again.
package anthropic

import (
	"bytes"
	"encoding/json"

	"github.com/lurus-switch/lurus-switch/lurus-common/wire"
)

// Adapter implements the wire interfaces for the Anthropic Messages
// format. The zero value is ready to use and safe for concurrent use; the
// per-stream state lives in the decoders and encoders it makes.
type Adapter struct{}

var (
	_ wire.RequestReader     = Adapter{}
	_ wire.RequestWriter     = Adapter{}
	_ wire.Locator           = Adapter{}
	_ wire.HeaderDefaulter   = Adapter{}
	_ wire.ResponseDecoder   = Adapter{}
	_ wire.ResponseEncoder   = Adapter{}
	_ wire.StreamDecoder     = Adapter{}
	_ wire.StreamEncoder     = Adapter{}
	_ wire.UsageReader       = Adapter{}
	_ wire.ErrorRenderer     = Adapter{}
	_ wire.ErrorDecoder      = Adapter{}
	_ wire.Metered           = Adapter{}
	_ wire.StreamCutter      = Adapter{}
	_ wire.StreamErrorWriter = Adapter{}
	_ wire.ModelLister       = Adapter{}
)

// target names this format in *wire.Unsupported errors.
const target = "anthropic"

// DefaultVersion is the anthropic-version header sent when the provider
// has no api_version: the version every current Messages feature is
// served under.
const DefaultVersion = "2023-06-01"

// marshal encodes v without HTML escaping (the text goes to an API, not a
// web page) and without the encoder's trailing newline.
func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte{'\n'}), nil
}

// usageJSON is Anthropic's usage object.
type usageJSON struct {
	InputTokens              int64         `json:"input_tokens"`
	CacheCreationInputTokens int64         `json:"cache_creation_input_tokens"`
	CacheReadInputTokens     int64         `json:"cache_read_input_tokens"`
	OutputTokens             int64         `json:"output_tokens"`
	OutputTokensDetails      *outputDetail `json:"output_tokens_details,omitempty"`
}

type outputDetail struct {
	ThinkingTokens int64 `json:"thinking_tokens"`
}

// usageOut encodes canonical usage, subtracting the cache counts that
// Anthropic keeps apart from input_tokens.
func usageOut(u wire.Usage) usageJSON {
	out := usageJSON{
		InputTokens:              max(u.Prompt-u.Cached-u.CacheWrite, 0),
		CacheCreationInputTokens: u.CacheWrite,
		CacheReadInputTokens:     u.Cached,
		OutputTokens:             u.Completion,
	}
	if u.Reasoning > 0 {
		out.OutputTokensDetails = &outputDetail{ThinkingTokens: u.Reasoning}
	}
	return out
}

// finishIn maps an Anthropic stop_reason.
func finishIn(s string) wire.FinishReason {
	switch s {
	case "max_tokens", "model_context_window_exceeded":
		return wire.FinishLength
	case "tool_use":
		return wire.FinishToolCalls
	case "refusal":
		return wire.FinishContentFilter
	}
	// end_turn, stop_sequence, pause_turn
	return wire.FinishStop
}

// finishOut maps a canonical finish reason to a stop_reason.
func finishOut(f wire.FinishReason) string {
	switch f {
	case wire.FinishLength:
		return "max_tokens"
	case wire.FinishToolCalls:
		return "tool_use"
	case wire.FinishContentFilter:
		return "refusal"
	}
	return "end_turn"
}
