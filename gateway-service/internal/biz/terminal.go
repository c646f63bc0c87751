package biz

import "github.com/lurus-switch/lurus-switch/lurus-common/wire"

// Terminal returns the bytes that end a stream cut at its output
// allowance, in the caller's format, so that SDKs finish as they do when
// a model reaches max_tokens. The ending is the endpoint's adapter's
// (wire.StreamCutter), from what it observed of the delivered units:
//
//   - OpenAI chat: a chunk with finish_reason "length", the usage chunk
//     when the client asked for it, then [DONE]. Legacy completions alike.
//   - OpenAI Responses: response.incomplete with incomplete_details.reason
//     "max_output_tokens" and the usage.
//   - Anthropic: content_block_stop for a block still open, message_delta
//     with stop_reason "max_tokens" and the usage, message_stop.
//   - Gemini: a chunk with finishReason "MAX_TOKENS" and usageMetadata; in
//     a JSON-array stream (array) also the closing "]", and the opening
//     "[" when nothing was sent before (first).
func (e *StreamEditor) Terminal(ep Endpoint, array, first bool) []byte {
	c := ep.relayed().cutter
	if c == nil {
		return nil
	}
	model := e.term.Model
	if e.From != "" && model == e.From {
		model = e.To
	}
	return c.AppendCut(nil, e.term, wire.CutEnd{Usage: e.cutUsage.wire(), Model: model, IncludeUsage: e.ClientUsage,
		Array: array, First: first})
}
