package anthropic

import (
	"encoding/json"
	"errors"
	"sort"
	"strings"

	"github.com/lurus-switch/lurus-switch/lurus-common/apperr"
	"github.com/lurus-switch/lurus-switch/lurus-common/internalapi"
	"github.com/lurus-switch/lurus-switch/lurus-common/wire"
)

// ErrNoOutputCap is returned by WriteRequest for a generate request whose
// MaxOutputTokens is 0. Anthropic requires max_tokens, and the gateway
// always sets the cap it priced; a missing one is a caller bug, and making
// one up here would let upstream produce output nobody held money for.
var ErrNoOutputCap = errors.New("anthropic: request has no output cap (MaxOutputTokens is 0)")

// outBlock is a content block as written upstream; the omitempty tags
// leave exactly the fields of its Type.
type outBlock struct {
	Type      string          `json:"type"`
	Text      *string         `json:"text,omitempty"`
	Source    *outSource      `json:"source,omitempty"`
	ID        string          `json:"id,omitempty"`
	Name      string          `json:"name,omitempty"`
	Input     json.RawMessage `json:"input,omitempty"`
	ToolUseID string          `json:"tool_use_id,omitempty"`
	Content   any             `json:"content,omitempty"`
	IsError   bool            `json:"is_error,omitempty"`
}

type outSource struct {
	Type      string `json:"type"`
	MediaType string `json:"media_type,omitempty"`
	Data      string `json:"data,omitempty"`
	URL       string `json:"url,omitempty"`
}

type outMessage struct {
	Role    string     `json:"role"`
	Content []outBlock `json:"content"`
}

type outTool struct {
	Name        string          `json:"name"`
	Description string          `json:"description,omitempty"`
	InputSchema json.RawMessage `json:"input_schema"`
}

// outRequest is the upstream body. count_tokens takes the same fields
// minus the sampling ones, which the writer leaves zero.
type outRequest struct {
	Model         string          `json:"model"`
	MaxTokens     int64           `json:"max_tokens,omitempty"`
	System        any             `json:"system,omitempty"`
	Messages      []outMessage    `json:"messages"`
	Tools         []outTool       `json:"tools,omitempty"`
	ToolChoice    *toolChoiceJSON `json:"tool_choice,omitempty"`
	Temperature   *float64        `json:"temperature,omitempty"`
	TopP          *float64        `json:"top_p,omitempty"`
	TopK          *int64          `json:"top_k,omitempty"`
	StopSequences []string        `json:"stop_sequences,omitempty"`
	Stream        bool            `json:"stream,omitempty"`
}

// defaultSchema is the input_schema of a tool without parameters
// (Anthropic requires one).
var defaultSchema = json.RawMessage(`{"type":"object","properties":{}}`)

// Locate places call.Path ("/v1/messages", "/v1/messages/count_tokens")
// at the base URL (which has no /v1), with an x-api-key header.
func (Adapter) Locate(u wire.Upstream, call wire.Call) (wire.Location, error) {
	return wire.Location{URL: strings.TrimRight(u.BaseURL, "/") + call.Path, Auth: wire.Header{Key: "x-api-key", Value: u.Secret}}, nil
}

// defaultHeaders: a relayed call keeps the anthropic-version its client
// sent, else gets DefaultVersion (the provider's api_version is written
// into translated calls only).
var defaultHeaders = []wire.Header{{Key: "anthropic-version", Value: DefaultVersion}}

// DefaultHeaders is what a relayed Messages call must carry.
func (Adapter) DefaultHeaders() []wire.Header { return defaultHeaders }

// WriteRequest writes req for a provider of type "anthropic": POST
// {base}/v1/messages (or /v1/messages/count_tokens), x-api-key and
// anthropic-version (the provider's api_version, else DefaultVersion).
func (a Adapter) WriteRequest(req *wire.Request, u wire.Upstream) (*wire.HTTPRequest, error) {
	if u.Type != internalapi.TypeAnthropic {
		return nil, &wire.Unsupported{Field: "provider type " + u.Type, Target: target}
	}
	path := "/v1/messages"
	switch req.Op {
	case wire.OpGenerate:
	case wire.OpCountTokens:
		path = "/v1/messages/count_tokens"
	default:
		return nil, &wire.Unsupported{Field: "input", Target: target} // no embeddings
	}
	body, err := writeBody(req, u.Model)
	if err != nil {
		return nil, err
	}
	loc, err := a.Locate(u, wire.Call{Path: path})
	if err != nil {
		return nil, err
	}
	ver := u.APIVersion
	if ver == "" {
		ver = DefaultVersion
	}
	return &wire.HTTPRequest{
		URL: loc.URL,
		Headers: []wire.Header{
			{Key: "Content-Type", Value: "application/json"},
			loc.Auth,
			{Key: "anthropic-version", Value: ver},
		},
		Body: body,
	}, nil
}

func writeBody(req *wire.Request, model string) ([]byte, error) {
	if len(req.Refused) > 0 {
		return nil, &wire.Unsupported{Field: req.Refused[0], Target: target}
	}
	if req.Candidates > 1 {
		return nil, &wire.Unsupported{Field: "n", Target: target}
	}
	if req.ResponseFormat.Kind != wire.FormatText {
		return nil, &wire.Unsupported{Field: "response_format", Target: target}
	}
	out := outRequest{Model: model}
	if req.Op == wire.OpGenerate {
		if req.MaxOutputTokens <= 0 {
			return nil, ErrNoOutputCap
		}
		out.MaxTokens = req.MaxOutputTokens
		if t := req.Temperature; t != nil && (*t < 0 || *t > 1) {
			// OpenAI allows up to 2; clamping would change the sampling.
			return nil, apperr.New(apperr.ReasonInvalidArgument, "temperature must be between 0 and 1 for anthropic models")
		}
		out.Temperature, out.TopP, out.TopK = req.Temperature, req.TopP, req.TopK
		out.StopSequences = req.Stop
		out.Stream = req.Stream
	}
	if len(req.System) > 0 {
		sys, err := systemOut(req.System)
		if err != nil {
			return nil, err
		}
		out.System = sys
	}
	msgs, err := messagesOut(req.Messages)
	if err != nil {
		return nil, err
	}
	out.Messages = msgs
	if len(req.Tools) > 0 {
		for _, t := range req.Tools {
			schema := t.Parameters
			if isNull(schema) {
				schema = defaultSchema
			}
			out.Tools = append(out.Tools, outTool{Name: t.Name, Description: t.Description, InputSchema: schema})
		}
		out.ToolChoice = toolChoiceOut(req)
	}
	return marshal(out)
}

// systemOut writes the system prompt: a string when it is one part, text
// blocks otherwise (so separately cached parts stay apart).
func systemOut(parts []wire.Part) (any, error) {
	blocks := make([]outBlock, 0, len(parts))
	for _, p := range parts {
		if p.Kind != wire.PartText {
			return nil, &wire.Unsupported{Field: "system", Target: target}
		}
		if p.Text != "" {
			blocks = append(blocks, textBlock(p.Text))
		}
	}
	switch len(blocks) {
	case 0:
		return nil, nil
	case 1:
		return *blocks[0].Text, nil
	}
	return blocks, nil
}

func textBlock(s string) outBlock { return outBlock{Type: "text", Text: &s} }

// toolChoiceOut writes tool_choice; nil when the default (auto, parallel
// allowed) applies.
func toolChoiceOut(req *wire.Request) *toolChoiceJSON {
	tc := &toolChoiceJSON{Type: "auto"}
	switch req.ToolChoice.Mode {
	case wire.ToolChoiceNone:
		// "none" takes no disable_parallel_tool_use.
		return &toolChoiceJSON{Type: "none"}
	case wire.ToolChoiceRequired:
		tc.Type = "any"
	case wire.ToolChoiceNamed:
		tc.Type, tc.Name = "tool", req.ToolChoice.Name
	}
	if req.ParallelToolCalls != nil {
		d := !*req.ParallelToolCalls
		tc.DisableParallelToolUse = &d
	}
	if tc.Type == "auto" && tc.DisableParallelToolUse == nil {
		return nil
	}
	return tc
}

// messagesOut writes the history: tool messages become user messages of
// tool_result blocks, reasoning is dropped, empty text is skipped
// (Anthropic rejects empty text blocks), and consecutive messages of the
// same role are merged, since Anthropic wants the roles to alternate.
func messagesOut(msgs []wire.Message) ([]outMessage, error) {
	var out []outMessage
	for _, m := range msgs {
		role := "user"
		if m.Role == wire.RoleAssistant {
			role = "assistant"
		}
		var blocks []outBlock
		for _, p := range m.Parts {
			b, ok, err := blockOut(m.Role, p)
			if err != nil {
				return nil, err
			}
			if ok {
				blocks = append(blocks, b)
			}
		}
		if len(blocks) == 0 {
			continue
		}
		if n := len(out); n > 0 && out[n-1].Role == role {
			out[n-1].Content = append(out[n-1].Content, blocks...)
			continue
		}
		out = append(out, outMessage{Role: role, Content: blocks})
	}
	if out == nil {
		return []outMessage{}, nil
	}
	for i := range out {
		if out[i].Role == "user" {
			resultsFirst(out[i].Content)
		}
	}
	return out, nil
}

// resultsFirst moves the tool_result blocks of a merged user message
// before its other blocks, keeping each group's order: Anthropic wants the
// results of the previous turn's calls first.
func resultsFirst(blocks []outBlock) {
	sort.SliceStable(blocks, func(i, j int) bool {
		return blocks[i].Type == "tool_result" && blocks[j].Type != "tool_result"
	})
}

func blockOut(role wire.Role, p wire.Part) (outBlock, bool, error) {
	switch p.Kind {
	case wire.PartText:
		return textBlock(p.Text), p.Text != "", nil
	case wire.PartImage:
		if p.Image == nil {
			return outBlock{}, false, nil
		}
		src, err := sourceOut(p.Image)
		return outBlock{Type: "image", Source: src}, err == nil, err
	case wire.PartToolCall:
		tc := p.ToolCall
		if tc == nil {
			return outBlock{}, false, nil
		}
		input, err := argsObject(tc.Arguments)
		if err != nil {
			return outBlock{}, false, err
		}
		return outBlock{Type: "tool_use", ID: tc.ID, Name: tc.Name, Input: input}, true, nil
	case wire.PartToolResult:
		tr := p.ToolResult
		if tr == nil {
			return outBlock{}, false, nil
		}
		content, err := resultContent(tr.Content)
		if err != nil {
			return outBlock{}, false, err
		}
		return outBlock{Type: "tool_result", ToolUseID: tr.CallID, Content: content, IsError: tr.IsError}, true, nil
	}
	// PartReasoning: see the package doc.
	return outBlock{}, false, nil
}

// argsObject returns tool-call arguments as the JSON object Anthropic's
// input must be ("" is no arguments).
func argsObject(args string) (json.RawMessage, error) {
	raw := compact(json.RawMessage(args))
	if raw == nil {
		return json.RawMessage("{}"), nil
	}
	if !json.Valid(raw) || raw[0] != '{' {
		return nil, apperr.New(apperr.ReasonInvalidArgument, "tool call arguments in the history are not a JSON object")
	}
	return raw, nil
}

// resultContent writes a tool result's content: a string for one text
// part, blocks otherwise, nothing when empty.
func resultContent(parts []wire.Part) (any, error) {
	if len(parts) == 1 && parts[0].Kind == wire.PartText {
		if parts[0].Text == "" {
			return nil, nil
		}
		return parts[0].Text, nil
	}
	var blocks []outBlock
	for _, p := range parts {
		switch p.Kind {
		case wire.PartText:
			if p.Text != "" {
				blocks = append(blocks, textBlock(p.Text))
			}
		case wire.PartImage:
			if p.Image == nil {
				continue
			}
			src, err := sourceOut(p.Image)
			if err != nil {
				return nil, err
			}
			blocks = append(blocks, outBlock{Type: "image", Source: src})
		}
	}
	if len(blocks) == 0 {
		return nil, nil
	}
	return blocks, nil
}

// sourceOut writes an image source: base64 data as it came, a data: URL
// unpacked to base64, any other URL as a url source for Anthropic to
// fetch.
func sourceOut(img *wire.Image) (*outSource, error) {
	if img.Data != "" {
		return &outSource{Type: "base64", MediaType: img.MediaType, Data: img.Data}, nil
	}
	if rest, ok := strings.CutPrefix(img.URL, "data:"); ok {
		meta, data, found := strings.Cut(rest, ",")
		mediaType, isBase64 := strings.CutSuffix(meta, ";base64")
		if !found || !isBase64 || mediaType == "" || data == "" {
			return nil, apperr.New(apperr.ReasonInvalidArgument, "image data URL must be data:<media type>;base64,<data>")
		}
		return &outSource{Type: "base64", MediaType: mediaType, Data: data}, nil
	}
	if !strings.HasPrefix(img.URL, "https://") && !strings.HasPrefix(img.URL, "http://") {
		return nil, apperr.New(apperr.ReasonInvalidArgument, "image URL must be http(s) or a base64 data URL")
	}
	return &outSource{Type: "url", URL: img.URL}, nil
}
