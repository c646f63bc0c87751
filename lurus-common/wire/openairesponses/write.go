package openairesponses

import (
	"encoding/json"
	"errors"
	"strings"

	"github.com/lurus-switch/lurus-switch/lurus-common/internalapi"
	"github.com/lurus-switch/lurus-switch/lurus-common/wire"
)

// upstreamBody is the Responses request this adapter writes.
type upstreamBody struct {
	Model             string     `json:"model"`
	Instructions      string     `json:"instructions,omitempty"`
	Input             []any      `json:"input"`
	Tools             []toolJSON `json:"tools,omitempty"`
	ToolChoice        any        `json:"tool_choice,omitempty"`
	ParallelToolCalls *bool      `json:"parallel_tool_calls,omitempty"`
	Text              *textJSON  `json:"text,omitempty"`
	Temperature       *float64   `json:"temperature,omitempty"`
	TopP              *float64   `json:"top_p,omitempty"`
	MaxOutputTokens   int64      `json:"max_output_tokens,omitempty"`
	Stream            bool       `json:"stream,omitempty"`
	Store             bool       `json:"store"`
}

// messageIn is an input message. Content is a string or a list of parts.
type messageIn struct {
	Type    string `json:"type"`
	Role    string `json:"role"`
	Content any    `json:"content"`
}

type textPart struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

type imagePart struct {
	Type     string `json:"type"`
	ImageURL string `json:"image_url"`
	Detail   string `json:"detail"`
}

type functionCallIn struct {
	Type      string `json:"type"`
	CallID    string `json:"call_id"`
	Name      string `json:"name"`
	Arguments string `json:"arguments"`
}

type functionCallOutputIn struct {
	Type   string `json:"type"`
	CallID string `json:"call_id"`
	Output any    `json:"output"`
}

// emptyParameters is written for a tool without a schema: the Responses
// API wants parameters on every function tool.
var emptyParameters = json.RawMessage(`{"type":"object","properties":{}}`)

// target names the format in an *wire.Unsupported error.
func target(u wire.Upstream) string {
	if u.Type == "" {
		return "openai"
	}
	return u.Type
}

// WriteRequest writes req for an OpenAI (base URL + "/responses", Bearer)
// or Azure OpenAI upstream. Azure serves the Responses API only on its v1
// surface, {resource}/openai/v1/responses with the deployment as the body's
// model and the api-key header; date api-versions belong to the
// deployments surface and are not sent, "preview" is passed on as Azure's
// preview channel. Every written request has store:false and the output
// cap in max_output_tokens.
//
// Refused: the reader's Refused fields, top_k, stop sequences and more
// than one candidate, which the Responses API cannot say. Tool results'
// is_error and reasoning in history are dropped.
func (Adapter) WriteRequest(req *wire.Request, u wire.Upstream) (*wire.HTTPRequest, error) {
	if req.Op != wire.OpGenerate {
		return nil, errors.New("openairesponses: only generate requests are written")
	}
	unsupported := func(field string) error { return &wire.Unsupported{Field: field, Target: target(u)} }
	switch {
	case len(req.Refused) > 0:
		return nil, unsupported(req.Refused[0])
	case req.TopK != nil:
		return nil, unsupported("top_k")
	case len(req.Stop) > 0:
		return nil, unsupported("stop")
	case req.Candidates > 1:
		return nil, unsupported("n")
	}
	out := &wire.HTTPRequest{Headers: []wire.Header{{Key: "Content-Type", Value: "application/json"}}}
	base := strings.TrimRight(u.BaseURL, "/")
	switch u.Type {
	case internalapi.TypeOpenAI:
		out.URL = base + "/responses"
		out.Headers = append(out.Headers, wire.Header{Key: "Authorization", Value: "Bearer " + u.Secret})
	case internalapi.TypeAzureOpenAI:
		if !strings.HasSuffix(base, "/openai/v1") {
			base += "/openai/v1"
		}
		out.URL = base + "/responses"
		if u.APIVersion == "preview" {
			out.URL += "?api-version=preview"
		}
		out.Headers = append(out.Headers, wire.Header{Key: "api-key", Value: u.Secret})
	default:
		return nil, errors.New("openairesponses: provider type " + u.Type + " has no Responses endpoint")
	}

	b := upstreamBody{
		Model:             u.Model,
		Instructions:      joinText(req.System, "\n\n"),
		Input:             []any{},
		ParallelToolCalls: req.ParallelToolCalls,
		Temperature:       req.Temperature,
		TopP:              req.TopP,
		MaxOutputTokens:   req.MaxOutputTokens,
		Stream:            req.Stream,
	}
	for i := range req.Messages {
		items, err := inputItems(&req.Messages[i])
		if err != nil {
			return nil, err
		}
		b.Input = append(b.Input, items...)
	}
	if len(req.Tools) > 0 {
		b.Tools = toolsOf(req.Tools)
		b.ToolChoice = toolChoiceOf(req.ToolChoice)
	}
	b.Text = textOf(req.ResponseFormat)
	body, err := marshal(b)
	if err != nil {
		return nil, err
	}
	out.Body = body
	return out, nil
}

func joinText(parts []wire.Part, sep string) string {
	var sb strings.Builder
	for i, p := range parts {
		if i > 0 {
			sb.WriteString(sep)
		}
		sb.WriteString(p.Text)
	}
	return sb.String()
}

// imageURL is an image as input_image's image_url: the URL, or the data as
// a base64 data URL.
func imageURL(img *wire.Image) string {
	if img.URL != "" {
		return img.URL
	}
	return "data:" + img.MediaType + ";base64," + img.Data
}

func imagePartOf(img *wire.Image) imagePart {
	d := img.Detail
	if d == "" {
		d = "auto"
	}
	return imagePart{Type: "input_image", ImageURL: imageURL(img), Detail: d}
}

// inputItems writes one canonical message as input items: a user message;
// an assistant's text as messages and its tool calls as function_call
// items, in order; tool results as function_call_output items.
func inputItems(m *wire.Message) ([]any, error) {
	switch m.Role {
	case wire.RoleUser:
		content := make([]any, 0, len(m.Parts))
		for _, p := range m.Parts {
			switch p.Kind {
			case wire.PartText:
				content = append(content, textPart{Type: "input_text", Text: p.Text})
			case wire.PartImage:
				content = append(content, imagePartOf(p.Image))
			case wire.PartReasoning:
			default:
				return nil, errors.New("openairesponses: a user message holds a tool call or result")
			}
		}
		return []any{messageIn{Type: "message", Role: "user", Content: content}}, nil
	case wire.RoleAssistant:
		var items []any
		var text []wire.Part
		flush := func() {
			if len(text) == 0 {
				return
			}
			// One text part is a plain string, which every Responses
			// server accepts for an assistant turn.
			var content any = text[0].Text
			if len(text) > 1 {
				parts := make([]textPart, len(text))
				for i, p := range text {
					parts[i] = textPart{Type: "output_text", Text: p.Text}
				}
				content = parts
			}
			items = append(items, messageIn{Type: "message", Role: "assistant", Content: content})
			text = nil
		}
		for _, p := range m.Parts {
			switch p.Kind {
			case wire.PartText:
				text = append(text, p)
			case wire.PartToolCall:
				flush()
				items = append(items, functionCallIn{Type: "function_call", CallID: p.ToolCall.ID,
					Name: p.ToolCall.Name, Arguments: p.ToolCall.Arguments})
			case wire.PartReasoning:
				// Responses reasoning items are OpenAI's own (ids,
				// encrypted content); history reasoning is dropped.
			default:
				return nil, errors.New("openairesponses: an assistant message holds an image or a tool result")
			}
		}
		flush()
		return items, nil
	case wire.RoleTool:
		items := make([]any, 0, len(m.Parts))
		for _, p := range m.Parts {
			if p.Kind != wire.PartToolResult {
				return nil, errors.New("openairesponses: a tool message holds something other than tool results")
			}
			items = append(items, functionCallOutputIn{Type: "function_call_output",
				CallID: p.ToolResult.CallID, Output: toolOutputOf(p.ToolResult.Content)})
		}
		return items, nil
	}
	return nil, errors.New("openairesponses: unknown role " + string(m.Role))
}

// toolOutputOf writes a tool result's content: a string when it is text
// only, a list of input_text and input_image parts when it holds images.
func toolOutputOf(content []wire.Part) any {
	hasImage := false
	for _, p := range content {
		hasImage = hasImage || p.Kind == wire.PartImage
	}
	if !hasImage {
		return joinText(content, "")
	}
	parts := make([]any, 0, len(content))
	for _, p := range content {
		if p.Kind == wire.PartImage {
			parts = append(parts, imagePartOf(p.Image))
		} else {
			parts = append(parts, textPart{Type: "input_text", Text: p.Text})
		}
	}
	return parts
}

// toolsOf writes function tools with strict:false: the Responses API
// defaults to strict, which rejects schemas that other formats accept
// (optional properties, additionalProperties not false).
func toolsOf(tools []wire.Tool) []toolJSON {
	out := make([]toolJSON, len(tools))
	strict := false
	for i, t := range tools {
		params := t.Parameters
		if len(params) == 0 {
			params = emptyParameters
		}
		out[i] = toolJSON{Type: "function", Name: t.Name, Description: t.Description, Parameters: params, Strict: &strict}
	}
	return out
}

type namedToolChoice struct {
	Type string `json:"type"`
	Name string `json:"name"`
}

func toolChoiceOf(tc wire.ToolChoice) any {
	switch tc.Mode {
	case wire.ToolChoiceNone:
		return "none"
	case wire.ToolChoiceRequired:
		return "required"
	case wire.ToolChoiceNamed:
		return namedToolChoice{Type: "function", Name: tc.Name}
	}
	return "auto"
}

// textOf writes the output format; nil for plain text, the default.
func textOf(rf wire.ResponseFormat) *textJSON {
	switch rf.Kind {
	case wire.FormatJSON:
		return &textJSON{Format: &formatJSON{Type: "json_object"}}
	case wire.FormatJSONSchema:
		name := rf.Name
		if name == "" {
			// The Responses API requires a name; other formats have none.
			name = "response"
		}
		strict := rf.Strict
		return &textJSON{Format: &formatJSON{Type: "json_schema", Name: name, Schema: rf.Schema, Strict: &strict}}
	}
	return nil
}
