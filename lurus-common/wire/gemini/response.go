package gemini

import (
	"encoding/json"
	"math"
	"strconv"

	"github.com/lurus-switch/lurus-switch/lurus-common/apperr"
	"github.com/lurus-switch/lurus-switch/lurus-common/wire"
)

// DecodeResponse decodes a complete upstream answer: a
// GenerateContentResponse, an embedding answer or a countTokens answer.
// Only the first candidate is kept: the canonical answer has one.
func (a Adapter) DecodeResponse(body []byte) (*wire.Response, error) {
	var probe map[string]json.RawMessage
	if err := json.Unmarshal(body, &probe); err != nil || probe == nil {
		return nil, apperr.New(apperr.ReasonUpstreamError, "upstream answer is not a JSON object")
	}
	if _, ok := probe["totalTokens"]; ok {
		var c gCountResponse
		if err := json.Unmarshal(body, &c); err != nil {
			return nil, apperr.New(apperr.ReasonUpstreamError, "upstream countTokens answer is malformed")
		}
		return &wire.Response{InputTokens: c.TotalTokens}, nil
	}
	if vs, ok := decodeEmbeddings(body); ok {
		return &wire.Response{Embeddings: vs}, nil
	}
	var g gResponse
	if err := json.Unmarshal(body, &g); err != nil {
		return nil, apperr.New(apperr.ReasonUpstreamError, "upstream answer is malformed")
	}
	resp := &wire.Response{ID: g.ResponseID, Model: g.ModelVersion, Finish: wire.FinishStop}
	if g.UsageMetadata != nil {
		resp.Usage, resp.HasUsage = canonicalUsage(g.UsageMetadata), true
	}
	if len(g.Candidates) == 0 {
		if g.PromptFeedback != nil && g.PromptFeedback.BlockReason != "" {
			resp.Finish = wire.FinishContentFilter
		}
		return resp, nil
	}
	c := g.Candidates[0]
	calls := 0
	if c.Content != nil {
		for _, p := range c.Content.Parts {
			part, ok := answerPart(p, g.ResponseID, &calls)
			if ok {
				resp.Parts = append(resp.Parts, part)
			}
		}
	}
	resp.Finish = finishReason(c.FinishReason, calls > 0)
	return resp, nil
}

// answerPart turns one part of an answer into a canonical part; calls
// counts the function calls so far, for their made-up ids.
func answerPart(p gPart, responseID string, calls *int) (wire.Part, bool) {
	switch {
	case p.FunctionCall != nil:
		if p.FunctionCall.Name == "" {
			return wire.Part{}, false
		}
		id := p.FunctionCall.ID
		if id == "" {
			id = callID(responseID, *calls)
		}
		*calls++
		return wire.Part{Kind: wire.PartToolCall, ToolCall: &wire.ToolCall{
			ID: id, Name: p.FunctionCall.Name, Arguments: argsText(p.FunctionCall.Args),
		}}, true
	case p.Text != nil && *p.Text != "":
		kind := wire.PartText
		if p.Thought {
			kind = wire.PartReasoning
		}
		return wire.Part{Kind: kind, Text: *p.Text}, true
	}
	return wire.Part{}, false
}

// callID makes up the id of the n-th function call of an answer. With
// the answer's responseId in it, ids stay unique across the turns of a
// conversation, which clients of other formats rely on.
func callID(responseID string, n int) string {
	if responseID == "" {
		return "call_" + strconv.Itoa(n)
	}
	return "call_" + responseID + "_" + strconv.Itoa(n)
}

// argsText is functionCall.args as compact text ({} when absent).
func argsText(args json.RawMessage) string {
	if isNull(args) {
		return "{}"
	}
	b, err := marshal(args)
	if err != nil {
		return "{}"
	}
	return string(b)
}

// finishReason maps a Gemini finishReason; STOP after a function call is
// tool_calls, as other formats say.
func finishReason(r string, calledTools bool) wire.FinishReason {
	switch r {
	case "MAX_TOKENS":
		return wire.FinishLength
	case "SAFETY", "RECITATION", "BLOCKLIST", "PROHIBITED_CONTENT", "SPII", "IMAGE_SAFETY",
		"IMAGE_PROHIBITED_CONTENT", "IMAGE_RECITATION":
		return wire.FinishContentFilter
	case "MALFORMED_FUNCTION_CALL", "UNEXPECTED_TOOL_CALL", "TOO_MANY_TOOL_CALLS":
		return wire.FinishError
	}
	if calledTools {
		return wire.FinishToolCalls
	}
	return wire.FinishStop
}

// geminiFinish is the finishReason of a canonical one.
func geminiFinish(f wire.FinishReason) string {
	switch f {
	case wire.FinishLength:
		return "MAX_TOKENS"
	case wire.FinishContentFilter:
		return "SAFETY"
	case wire.FinishError:
		return "OTHER"
	}
	return "STOP"
}

// canonicalUsage maps usageMetadata field by field: the prompt already
// holds the cached tokens; candidates exclude thoughts, so Completion adds
// them back; tool-use prompt tokens are input outside promptTokenCount.
// A negative count is nonsense and reads as 0; sums saturate.
func canonicalUsage(u *gUsage) wire.Usage {
	thoughts := max(u.ThoughtsTokenCount, 0)
	return wire.Usage{
		Prompt:     addSat(max(u.PromptTokenCount, 0), max(u.ToolUsePromptTokenCount, 0)),
		Completion: addSat(max(u.CandidatesTokenCount, 0), thoughts),
		Cached:     max(u.CachedContentTokenCount, 0),
		Reasoning:  thoughts,
	}
}

// addSat adds two non-negative counts without wrapping.
func addSat(a, b int64) int64 {
	if a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}

// geminiUsage is the usageMetadata of canonical usage. CacheWrite has no
// field of its own: it stays inside promptTokenCount.
func geminiUsage(u wire.Usage) *gUsage {
	return &gUsage{
		PromptTokenCount:        u.Prompt,
		CandidatesTokenCount:    max(u.Completion-u.Reasoning, 0),
		TotalTokenCount:         addSat(u.Prompt, u.Completion),
		CachedContentTokenCount: u.Cached,
		ThoughtsTokenCount:      u.Reasoning,
	}
}

// ReadUsage reads usageMetadata from an answer or a stream chunk. Stream
// chunks carry the counts so far, so the last one read is the total.
func (a Adapter) ReadUsage(data []byte) (wire.Usage, bool) {
	var doc struct {
		UsageMetadata *gUsage `json:"usageMetadata"`
	}
	if json.Unmarshal(data, &doc) != nil || doc.UsageMetadata == nil {
		return wire.Usage{}, false
	}
	return canonicalUsage(doc.UsageMetadata), true
}

// EncodeResponse encodes a complete answer for a Gemini client, per the
// client's operation.
func (a Adapter) EncodeResponse(resp *wire.Response, req *wire.Request) ([]byte, error) {
	switch req.Op {
	case wire.OpEmbed:
		return a.encodeEmbeddings(resp.Embeddings)
	case wire.OpCountTokens:
		return marshal(gCountResponse{TotalTokens: resp.InputTokens})
	}
	g := gResponse{ModelVersion: responseModel(resp.Model, req), ResponseID: resp.ID}
	content := &gContent{Role: "model", Parts: []gPart{}}
	for _, p := range resp.Parts {
		switch p.Kind {
		case wire.PartText:
			content.Parts = append(content.Parts, textPart(p.Text, false))
		case wire.PartReasoning:
			content.Parts = append(content.Parts, textPart(p.Text, true))
		case wire.PartToolCall:
			content.Parts = append(content.Parts, callPart(p.ToolCall.Name, p.ToolCall.Arguments))
		}
	}
	g.Candidates = []gCandidate{{Content: content, FinishReason: geminiFinish(resp.Finish)}}
	if resp.HasUsage {
		g.UsageMetadata = geminiUsage(resp.Usage)
	}
	return marshal(g)
}

// responseModel is the model an answer names: upstream's version, or the
// client's own name when upstream gave none.
func responseModel(m string, req *wire.Request) string {
	if m != "" {
		return m
	}
	return req.Model
}

// callPart is a functionCall part. Arguments that are not an object (a
// cut stream) become {} rather than an answer the client cannot parse.
func callPart(name, args string) gPart {
	raw, err := argsObject(args)
	if err != nil {
		raw = json.RawMessage("{}")
	}
	return gPart{FunctionCall: &gCall{Name: name, Args: raw}}
}
