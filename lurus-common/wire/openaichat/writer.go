package openaichat

import (
	"encoding/json"
	"errors"
	"net/url"
	"strings"

	"github.com/lurus-switch/lurus-switch/lurus-common/internalapi"
	"github.com/lurus-switch/lurus-switch/lurus-common/wire"
)

// AzureAPIVersion is the api-version an Azure provider gets when it sets
// none: the newest generally available version, as the relay uses.
const AzureAPIVersion = "2024-10-21"

// ErrNotGenerate is returned by WriteRequest for a request that is not a
// generate call: chat completions cannot embed or count tokens.
var ErrNotGenerate = errors.New("openaichat: only generate requests are written as chat completions")

// ErrUnknownType is returned by WriteRequest for a provider type that
// does not speak chat completions.
var ErrUnknownType = errors.New("openaichat: provider type does not speak chat completions")

// Locate places call.Path ("/chat/completions", "/embeddings", …) of u's
// model: base URL (which includes /v1) + path with a bearer token for
// OpenAI and compatible servers; the deployment path (the model, escaped
// by wire.PathSegment) with api-version and an api-key header for Azure.
func (Adapter) Locate(u wire.Upstream, call wire.Call) (wire.Location, error) {
	base := strings.TrimRight(u.BaseURL, "/")
	switch u.Type {
	case internalapi.TypeOpenAI, internalapi.TypeOpenAICompatible:
		return wire.Location{URL: base + call.Path, Auth: wire.Header{Key: "Authorization", Value: "Bearer " + u.Secret}}, nil
	case internalapi.TypeAzureOpenAI:
		ver := u.APIVersion
		if ver == "" {
			ver = AzureAPIVersion
		}
		return wire.Location{
			URL:       base + "/openai/deployments/" + wire.PathSegment(u.Model) + call.Path + "?api-version=" + url.QueryEscape(ver),
			Auth:      wire.Header{Key: "api-key", Value: u.Secret},
			PathModel: true,
		}, nil
	}
	return wire.Location{}, ErrUnknownType
}

// Target names provider type t in an *wire.Unsupported error.
func Target(t string) string {
	switch t {
	case internalapi.TypeAzureOpenAI:
		return "Azure OpenAI"
	case internalapi.TypeOpenAICompatible:
		return "OpenAI-compatible"
	}
	return "OpenAI"
}

// chatRequest is the body WriteRequest builds; the field order is the
// order OpenAI documents them in.
type chatRequest struct {
	Model               string          `json:"model"`
	Messages            []message       `json:"messages"`
	Tools               []tool          `json:"tools,omitempty"`
	ToolChoice          any             `json:"tool_choice,omitempty"`
	ParallelToolCalls   *bool           `json:"parallel_tool_calls,omitempty"`
	ResponseFormat      *responseFormat `json:"response_format,omitempty"`
	Temperature         *float64        `json:"temperature,omitempty"`
	TopP                *float64        `json:"top_p,omitempty"`
	TopK                *int64          `json:"top_k,omitempty"`
	Stop                []string        `json:"stop,omitempty"`
	MaxCompletionTokens int64           `json:"max_completion_tokens,omitempty"`
	MaxTokens           int64           `json:"max_tokens,omitempty"`
	N                   int             `json:"n,omitempty"`
	Stream              bool            `json:"stream,omitempty"`
	StreamOptions       *streamOptions  `json:"stream_options,omitempty"`
}

type streamOptions struct {
	IncludeUsage bool `json:"include_usage"`
}

// WriteRequest writes req as a chat completions call for an openai,
// openai-compatible or azure-openai provider. The output cap goes into
// max_completion_tokens (OpenAI, Azure: max_tokens is deprecated there and
// refused by reasoning models) or max_tokens (compatible servers, which
// all know it). A stream always asks for usage: the gateway bills by it.
// Refused: any req.Refused field, top_k (except to compatible servers),
// more than one candidate, images inside tool results.
func (Adapter) WriteRequest(req *wire.Request, u wire.Upstream) (*wire.HTTPRequest, error) {
	if req.Op != wire.OpGenerate {
		return nil, ErrNotGenerate
	}
	loc, err := Adapter{}.Locate(u, wire.Call{Path: "/chat/completions"})
	if err != nil {
		return nil, err
	}
	target := Target(u.Type)
	unsupported := func(field string) error { return &wire.Unsupported{Field: field, Target: target} }
	if len(req.Refused) > 0 {
		return nil, unsupported(req.Refused[0])
	}
	if req.Candidates > 1 {
		return nil, unsupported("n")
	}
	body := chatRequest{Model: u.Model, Temperature: req.Temperature, TopP: req.TopP, Stop: req.Stop, Stream: req.Stream}
	if req.TopK != nil {
		if u.Type != internalapi.TypeOpenAICompatible {
			return nil, unsupported("top_k")
		}
		body.TopK = req.TopK
	}
	if req.MaxOutputTokens > 0 {
		if u.Type == internalapi.TypeOpenAICompatible {
			body.MaxTokens = req.MaxOutputTokens
		} else {
			body.MaxCompletionTokens = req.MaxOutputTokens
		}
	}
	if req.Stream {
		body.StreamOptions = &streamOptions{IncludeUsage: true}
	}
	if body.Messages, err = writeMessages(req, unsupported); err != nil {
		return nil, err
	}
	if len(req.Tools) > 0 {
		body.Tools = make([]tool, len(req.Tools))
		for i, t := range req.Tools {
			body.Tools[i] = tool{Type: "function", Function: &toolFunction{Name: t.Name, Description: t.Description, Parameters: t.Parameters}}
		}
		body.ToolChoice = writeToolChoice(req.ToolChoice)
		body.ParallelToolCalls = req.ParallelToolCalls
	}
	switch req.ResponseFormat.Kind {
	case wire.FormatJSON:
		body.ResponseFormat = &responseFormat{Type: "json_object"}
	case wire.FormatJSONSchema:
		name := req.ResponseFormat.Name
		if name == "" {
			name = "response" // OpenAI requires a name; other formats have none
		}
		body.ResponseFormat = &responseFormat{Type: "json_schema", JSONSchema: &jsonSchema{
			Name: name, Schema: req.ResponseFormat.Schema, Strict: req.ResponseFormat.Strict}}
	}
	b, err := marshal(body)
	if err != nil {
		return nil, err
	}
	return &wire.HTTPRequest{URL: loc.URL, Body: b, Headers: []wire.Header{
		loc.Auth, {Key: "Content-Type", Value: "application/json"}}}, nil
}

func writeToolChoice(c wire.ToolChoice) any {
	switch c.Mode {
	case wire.ToolChoiceNone:
		return "none"
	case wire.ToolChoiceRequired:
		return "required"
	case wire.ToolChoiceNamed:
		return namedChoice{Type: "function", Function: &struct {
			Name string `json:"name"`
		}{c.Name}}
	}
	return nil // auto is the default
}

// writeMessages writes the system prompt and the conversation. Reasoning
// parts are dropped from history (chat completions takes none back); each
// tool result becomes its own tool message.
func writeMessages(req *wire.Request, unsupported func(string) error) ([]message, error) {
	out := make([]message, 0, len(req.Messages)+1)
	if len(req.System) > 0 {
		c, err := writeContent(req.System, false, unsupported)
		if err != nil {
			return nil, err
		}
		out = append(out, message{Role: "system", Content: c})
	}
	for _, m := range req.Messages {
		switch m.Role {
		case wire.RoleUser:
			c, err := writeContent(m.Parts, true, unsupported)
			if err != nil {
				return nil, err
			}
			out = append(out, message{Role: "user", Content: c})
		case wire.RoleAssistant:
			am := message{Role: "assistant"}
			var text []wire.Part
			for _, p := range m.Parts {
				switch p.Kind {
				case wire.PartText:
					text = append(text, p)
				case wire.PartToolCall:
					am.ToolCalls = append(am.ToolCalls, toolCall{ID: p.ToolCall.ID, Type: "function",
						Function: functionCall{Name: p.ToolCall.Name, Arguments: p.ToolCall.Arguments}})
				}
			}
			if len(text) > 0 || len(am.ToolCalls) == 0 {
				c, err := writeContent(text, false, unsupported)
				if err != nil {
					return nil, err
				}
				am.Content = c
			}
			out = append(out, am)
		case wire.RoleTool:
			var rest []wire.Part
			for _, p := range m.Parts {
				if p.Kind != wire.PartToolResult {
					rest = append(rest, p)
					continue
				}
				for _, cp := range p.ToolResult.Content {
					if cp.Kind != wire.PartText {
						return nil, unsupported("image in tool result")
					}
				}
				c, err := writeContent(p.ToolResult.Content, false, unsupported)
				if err != nil {
					return nil, err
				}
				out = append(out, message{Role: "tool", ToolCallID: p.ToolResult.CallID, Content: c})
			}
			if len(rest) > 0 {
				c, err := writeContent(rest, true, unsupported)
				if err != nil {
					return nil, err
				}
				out = append(out, message{Role: "user", Content: c})
			}
		}
	}
	return out, nil
}

// writeContent writes text (and, where images allows, image) parts as a
// content: a plain string when it is one text part, else an array.
// Reasoning parts are left out.
func writeContent(parts []wire.Part, images bool, unsupported func(string) error) (json.RawMessage, error) {
	cps := make([]contentPart, 0, len(parts))
	for _, p := range parts {
		switch p.Kind {
		case wire.PartText:
			cps = append(cps, contentPart{Type: "text", Text: p.Text})
		case wire.PartImage:
			if !images {
				return nil, unsupported("image outside a user message")
			}
			u := p.Image.URL
			if u == "" {
				if p.Image.MediaType == "" {
					return nil, unsupported("image without a media type")
				}
				u = "data:" + p.Image.MediaType + ";base64," + p.Image.Data
			}
			cps = append(cps, contentPart{Type: "image_url", ImageURL: &imageURL{URL: u, Detail: p.Image.Detail}})
		}
	}
	if len(cps) == 1 && cps[0].Type == "text" {
		return marshal(cps[0].Text)
	}
	if len(cps) == 0 {
		return json.RawMessage(`""`), nil
	}
	return marshal(cps)
}

// marshal encodes v as compact JSON without escaping <, > and &, which
// JSON does not need and which would only make bodies harder to read.
func marshal(v any) ([]byte, error) {
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return []byte(strings.TrimSuffix(b.String(), "\n")), nil
}
