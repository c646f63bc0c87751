package mockupstream

import (
	"net/http"

	"github.com/lurus-switch/lurus-switch/gateway-service/internal/jsonstr"
)

// Anthropic Messages API: POST /v1/messages (JSON, or SSE with "event:" and
// "data:" lines: message_start, content_block_start, ping,
// content_block_delta…, content_block_stop, message_delta, message_stop) and
// POST /v1/messages/count_tokens.

// appendAnthropicUsage appends a usage object. input_tokens excludes the
// cache reads and writes, which Anthropic counts apart; output_tokens is
// the given count (message_start sends a provisional one, as the API does).
func appendAnthropicUsage(b []byte, u usage, outputTokens int, full bool) []byte {
	b = append(b, `{"input_tokens":`...)
	b = appendInt(b, u.prompt)
	b = append(b, `,"cache_creation_input_tokens":`...)
	b = appendInt(b, u.cacheWrite)
	b = append(b, `,"cache_read_input_tokens":`...)
	b = appendInt(b, u.cached)
	if full {
		b = append(b, `,"cache_creation":{"ephemeral_5m_input_tokens":`...)
		b = appendInt(b, u.cacheWrite)
		b = append(b, `,"ephemeral_1h_input_tokens":0}`...)
	}
	b = append(b, `,"output_tokens":`...)
	b = appendInt(b, outputTokens)
	if u.reasoning > 0 {
		b = append(b, `,"output_tokens_details":{"thinking_tokens":`...)
		b = appendInt(b, u.reasoning)
		b = append(b, '}')
	}
	if full {
		b = append(b, `,"service_tier":"standard"`...)
	}
	return append(b, '}')
}

// appendAnthropicHead appends the message fields before "content".
func (ex *exchange) appendAnthropicHead(b []byte, model string) []byte {
	b = append(b, `{"id":"msg_mock`...)
	b = appendInt(b, int(ex.seq))
	b = append(b, `","type":"message","role":"assistant","model":`...)
	return jsonstr.Append(b, model)
}

func (ex *exchange) appendToolUseStart(b []byte, name string) []byte {
	b = append(b, `{"type":"tool_use","id":"toolu_mock`...)
	b = appendInt(b, int(ex.seq))
	b = append(b, `","name":`...)
	b = jsonstr.Append(b, name)
	return append(b, `,"input":`...)
}

func (ex *exchange) anthropicMessages(info requestInfo) error {
	n := ex.plan.chunks
	u := ex.plan.usageFor(info.promptTokens, n)
	if info.stream {
		return ex.anthropicStream(info, n, u)
	}
	b := ex.appendAnthropicHead(ex.buf[:0], info.model)
	b = append(b, `,"content":[`...)
	stop := "end_turn"
	if info.tool != "" {
		stop = "tool_use"
		b = ex.appendToolUseStart(b, info.tool)
		b = info.toolArgs(n).appendObject(b)
		b = append(b, '}')
	} else {
		b = append(b, `{"type":"text","text":"`...)
		b = appendReplyText(b, n)
		b = append(b, `"}`...)
	}
	b = append(b, `],"stop_reason":"`...)
	b = append(b, stop...)
	b = append(b, `","stop_sequence":null`...)
	if !ex.plan.noUsage {
		b = append(b, `,"usage":`...)
		b = appendAnthropicUsage(b, u, u.completion, true)
	}
	b = append(b, '}')
	ex.buf = b
	return ex.writeJSON(http.StatusOK, contentTypeJSON, b)
}

func (ex *exchange) anthropicStream(info requestInfo, n int, u usage) error {
	if err := ex.startStream(contentTypeSSE); err != nil {
		return err
	}
	b := ex.buf[:0]
	defer func() { ex.buf = b[:0] }()

	b = append(b, "event: message_start\ndata: {\"type\":\"message_start\",\"message\":"...)
	b = ex.appendAnthropicHead(b, info.model)
	b = append(b, `,"content":[],"stop_reason":null,"stop_sequence":null`...)
	if !ex.plan.noUsage {
		b = append(b, `,"usage":`...)
		b = appendAnthropicUsage(b, u, min(u.completion, 1), true)
	}
	b = append(b, "}}\n\n"...)
	if err := ex.frame(b); err != nil {
		return err
	}
	b = append(b[:0], "event: content_block_start\ndata: {\"type\":\"content_block_start\",\"index\":0,\"content_block\":"...)
	if info.tool != "" {
		b = ex.appendToolUseStart(b, info.tool)
		b = append(b, "{}}}\n\n"...)
	} else {
		b = append(b, "{\"type\":\"text\",\"text\":\"\"}}\n\n"...)
	}
	if err := ex.frame(b); err != nil {
		return err
	}
	if err := ex.frame(append(b[:0], "event: ping\ndata: {\"type\": \"ping\"}\n\n"...)); err != nil {
		return err
	}

	const deltaHead = "event: content_block_delta\ndata: {\"type\":\"content_block_delta\",\"index\":0,\"delta\":"
	if info.tool != "" {
		args := info.toolArgs(n)
		for i := range args.pieces() {
			b = append(b[:0], deltaHead...)
			b = append(b, `{"type":"input_json_delta","partial_json":`...)
			b = args.appendQuotedPiece(b, i)
			b = append(b, "}}\n\n"...)
			if err := ex.chunk(b); err != nil {
				return err
			}
		}
	} else {
		for i := range n {
			b = append(b[:0], deltaHead...)
			b = append(b, `{"type":"text_delta","text":"`...)
			b = appendChunkText(b, i)
			b = append(b, "\"}}\n\n"...)
			if err := ex.chunk(b); err != nil {
				return err
			}
		}
	}
	if err := ex.endContent(); err != nil {
		return err
	}

	stop := "end_turn"
	if info.tool != "" {
		stop = "tool_use"
	}
	if err := ex.frame(append(b[:0], "event: content_block_stop\ndata: {\"type\":\"content_block_stop\",\"index\":0}\n\n"...)); err != nil {
		return err
	}
	b = append(b[:0], "event: message_delta\ndata: {\"type\":\"message_delta\",\"delta\":{\"stop_reason\":\""...)
	b = append(b, stop...)
	b = append(b, `","stop_sequence":null}`...)
	if !ex.plan.noUsage {
		b = append(b, `,"usage":`...)
		b = appendAnthropicUsage(b, u, u.completion, false)
	}
	b = append(b, "}\n\n"...)
	if err := ex.frame(b); err != nil {
		return err
	}
	return ex.frame(append(b[:0], "event: message_stop\ndata: {\"type\":\"message_stop\"}\n\n"...))
}

func (ex *exchange) anthropicCountTokens(info requestInfo) error {
	b := append(ex.buf[:0], `{"input_tokens":`...)
	b = appendInt(b, ex.plan.usageFor(info.promptTokens, 0).prompt)
	b = append(b, '}')
	ex.buf = b
	return ex.writeJSON(http.StatusOK, contentTypeJSON, b)
}
