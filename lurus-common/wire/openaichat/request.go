package openaichat

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"

	"github.com/lurus-switch/lurus-switch/lurus-common/apperr"
	"github.com/lurus-switch/lurus-switch/lurus-common/wire"
)

// hintFields are request fields dropped on translation: they never change
// what the model answers.
var hintFields = map[string]bool{
	"user": true, "seed": true, "service_tier": true, "metadata": true, "store": true,
	"safety_identifier": true, "prompt_cache_key": true, "prompt_cache_retention": true,
}

// refusedWhenSet are fields no other format expresses with the same
// meaning; they are refused unless they hold their default (see set).
var refusedWhenSet = []string{
	"logprobs", "top_logprobs", "presence_penalty", "frequency_penalty", "logit_bias",
	"audio", "modalities", "prediction", "web_search_options", "reasoning_effort",
	"verbosity", "functions", "function_call",
}

// ReadRequest reads a chat completions body into req (Op OpGenerate). A
// malformed field is a 400 INVALID_ARGUMENT naming it; a field other
// formats cannot express is listed in req.Refused (see the package doc).
func (Adapter) ReadRequest(body []byte, req *wire.Request) error {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(body, &top); err != nil || top == nil {
		return apperr.New(apperr.ReasonMalformedJSON, "request body must be a JSON object")
	}
	keys := make([]string, 0, len(top))
	for k := range top {
		keys = append(keys, k)
	}
	slices.Sort(keys) // Refused lists fields in a stable order
	r := reader{req: req, names: map[string]string{}}
	// messages first: tool results look up the names of the calls.
	if raw, ok := top["messages"]; ok {
		if err := r.messages(raw); err != nil {
			return err
		}
	}
	for _, k := range keys {
		if k == "messages" {
			continue
		}
		if err := r.field(k, top[k]); err != nil {
			return err
		}
	}
	if req.Model == "" {
		return apperr.New(apperr.ReasonMissingModel, "request has no model")
	}
	if len(req.Messages) == 0 && len(req.System) == 0 {
		return invalidf("messages must not be empty")
	}
	return nil
}

// reader holds what reading one request needs across fields.
type reader struct {
	req *wire.Request
	// names maps a tool call id of the history to its function name.
	names map[string]string
}

func invalidf(format string, args ...any) error {
	return apperr.Newf(apperr.ReasonInvalidArgument, format, args...)
}

func isNull(raw json.RawMessage) bool {
	return len(raw) == 0 || bytes.Equal(bytes.TrimSpace(raw), []byte("null"))
}

// decode reads raw into v, naming field in the error.
func decode(field string, raw json.RawMessage, v any) error {
	if err := json.Unmarshal(raw, v); err != nil {
		return invalidf("%s has the wrong type", field)
	}
	return nil
}

func (r *reader) refuse(field string) {
	if !slices.Contains(r.req.Refused, field) {
		r.req.Refused = append(r.req.Refused, field)
	}
}

// field reads one top-level member (not messages).
func (r *reader) field(k string, raw json.RawMessage) error {
	req := r.req
	if hintFields[k] {
		return nil
	}
	if slices.Contains(refusedWhenSet, k) {
		if set, err := isSet(k, raw); err != nil {
			return err
		} else if set {
			r.refuse(k)
		}
		return nil
	}
	if isNull(raw) {
		return nil
	}
	switch k {
	case "model":
		return decode(k, raw, &req.Model)
	case "stream":
		return decode(k, raw, &req.Stream)
	case "stream_options":
		var o map[string]json.RawMessage
		if err := decode(k, raw, &o); err != nil {
			return err
		}
		for ok, ov := range o {
			switch ok {
			case "include_usage":
				if !isNull(ov) {
					if err := decode("stream_options.include_usage", ov, &req.IncludeUsage); err != nil {
						return err
					}
				}
			case "include_obfuscation":
			default:
				r.refuse("stream_options." + ok)
			}
		}
	case "max_tokens", "max_completion_tokens":
		var n int64
		if err := decode(k, raw, &n); err != nil || n < 0 {
			return invalidf("%s must be a non-negative integer", k)
		}
		if n > 0 && (req.MaxOutputTokens == 0 || n < req.MaxOutputTokens) {
			req.MaxOutputTokens = n
		}
	case "n":
		var n int
		if err := decode(k, raw, &n); err != nil || n < 0 {
			return invalidf("n must be a non-negative integer")
		}
		if n > 1 {
			req.Candidates = n
			r.refuse(k)
		}
	case "temperature":
		return decode(k, raw, &req.Temperature)
	case "top_p":
		return decode(k, raw, &req.TopP)
	case "top_k":
		return decode(k, raw, &req.TopK)
	case "stop":
		return readStop(raw, req)
	case "tools":
		return r.tools(raw)
	case "tool_choice":
		return r.toolChoice(raw)
	case "parallel_tool_calls":
		return decode(k, raw, &req.ParallelToolCalls)
	case "response_format":
		return r.responseFormat(raw)
	default:
		r.refuse(k)
	}
	return nil
}

// isSet reports whether a refusedWhenSet field asks for something: null,
// false, 0, {} and modalities ["text"] are the defaults and ask nothing.
func isSet(k string, raw json.RawMessage) (bool, error) {
	if isNull(raw) {
		return false, nil
	}
	var v any
	if err := decode(k, raw, &v); err != nil {
		return false, err
	}
	switch x := v.(type) {
	case bool:
		return x, nil
	case float64:
		return x != 0, nil
	case map[string]any:
		return len(x) > 0 || k == "web_search_options", nil
	case []any:
		if k == "modalities" {
			return !(len(x) == 1 && x[0] == "text"), nil
		}
		return len(x) > 0, nil
	}
	return true, nil
}

// compact returns a JSON Schema without insignificant space (nil for
// null), so a canonical request compares equal however it was spaced.
func compact(raw json.RawMessage) json.RawMessage {
	if isNull(raw) {
		return nil
	}
	var b bytes.Buffer
	if json.Compact(&b, raw) != nil {
		return raw
	}
	return b.Bytes()
}

func readStop(raw json.RawMessage, req *wire.Request) error {
	var one string
	if json.Unmarshal(raw, &one) == nil {
		req.Stop = []string{one}
		return nil
	}
	return decode("stop", raw, &req.Stop)
}

// message is one element of messages, as OpenAI writes it.
type message struct {
	Role             string          `json:"role"`
	Content          json.RawMessage `json:"content,omitempty"`
	Name             string          `json:"name,omitempty"`
	ToolCalls        []toolCall      `json:"tool_calls,omitempty"`
	ToolCallID       string          `json:"tool_call_id,omitempty"`
	ReasoningContent string          `json:"reasoning_content,omitempty"`
	FunctionCall     json.RawMessage `json:"function_call,omitempty"`
	Audio            json.RawMessage `json:"audio,omitempty"`
}

type toolCall struct {
	// Index is set only in stream deltas.
	Index    *int         `json:"index,omitempty"`
	ID       string       `json:"id,omitempty"`
	Type     string       `json:"type,omitempty"`
	Function functionCall `json:"function"`
}

type functionCall struct {
	Name      string `json:"name,omitempty"`
	Arguments string `json:"arguments"`
}

// contentPart is one element of an array content.
type contentPart struct {
	Type     string    `json:"type"`
	Text     string    `json:"text,omitempty"`
	Refusal  string    `json:"refusal,omitempty"`
	ImageURL *imageURL `json:"image_url,omitempty"`
}

type imageURL struct {
	URL    string `json:"url"`
	Detail string `json:"detail,omitempty"`
}

func (r *reader) messages(raw json.RawMessage) error {
	var msgs []message
	if err := decode("messages", raw, &msgs); err != nil {
		return err
	}
	req := r.req
	for i := range msgs {
		m := &msgs[i]
		if !isNull(m.FunctionCall) {
			r.refuse("function_call")
		}
		if !isNull(m.Audio) {
			r.refuse("audio")
		}
		switch m.Role {
		case "system", "developer":
			parts, err := r.content(m.Role, m.Content, false)
			if err != nil {
				return err
			}
			req.System = append(req.System, parts...)
		case "user":
			parts, err := r.content(m.Role, m.Content, true)
			if err != nil {
				return err
			}
			req.Messages = append(req.Messages, wire.Message{Role: wire.RoleUser, Parts: parts})
		case "assistant":
			var parts []wire.Part
			if m.ReasoningContent != "" {
				parts = append(parts, wire.Part{Kind: wire.PartReasoning, Text: m.ReasoningContent})
			}
			text, err := r.content(m.Role, m.Content, false)
			if err != nil {
				return err
			}
			parts = append(parts, text...)
			for _, tc := range m.ToolCalls {
				if tc.Type != "" && tc.Type != "function" {
					r.refuse("tool_calls." + tc.Type)
					continue
				}
				r.names[tc.ID] = tc.Function.Name
				parts = append(parts, wire.Part{Kind: wire.PartToolCall, ToolCall: &wire.ToolCall{
					ID: tc.ID, Name: tc.Function.Name, Arguments: tc.Function.Arguments}})
			}
			req.Messages = append(req.Messages, wire.Message{Role: wire.RoleAssistant, Parts: parts})
		case "tool":
			content, err := r.content(m.Role, m.Content, false)
			if err != nil {
				return err
			}
			part := wire.Part{Kind: wire.PartToolResult, ToolResult: &wire.ToolResult{
				CallID: m.ToolCallID, Name: r.names[m.ToolCallID], Content: content}}
			// Consecutive tool messages answer one assistant turn: one
			// canonical message holds all their results.
			if n := len(req.Messages); n > 0 && req.Messages[n-1].Role == wire.RoleTool {
				req.Messages[n-1].Parts = append(req.Messages[n-1].Parts, part)
			} else {
				req.Messages = append(req.Messages, wire.Message{Role: wire.RoleTool, Parts: []wire.Part{part}})
			}
		case "function":
			r.refuse("functions")
		default:
			return invalidf("messages[%d].role %q is not one of system, developer, user, assistant, tool", i, m.Role)
		}
	}
	return nil
}

// content reads a message content: a string or an array of parts. Images
// are allowed only where images says so (user messages).
func (r *reader) content(role string, raw json.RawMessage, images bool) ([]wire.Part, error) {
	if isNull(raw) {
		return nil, nil
	}
	var s string
	if json.Unmarshal(raw, &s) == nil {
		return []wire.Part{{Kind: wire.PartText, Text: s}}, nil
	}
	var parts []contentPart
	if err := decode(role+" message content", raw, &parts); err != nil {
		return nil, err
	}
	out := make([]wire.Part, 0, len(parts))
	for _, p := range parts {
		switch p.Type {
		case "text":
			out = append(out, wire.Part{Kind: wire.PartText, Text: p.Text})
		case "refusal":
			out = append(out, wire.Part{Kind: wire.PartText, Text: p.Refusal})
		case "image_url":
			if !images || p.ImageURL == nil {
				return nil, invalidf("%s message content cannot hold an image_url", role)
			}
			img, err := readImage(p.ImageURL)
			if err != nil {
				return nil, err
			}
			out = append(out, wire.Part{Kind: wire.PartImage, Image: img})
		case "input_audio", "file":
			r.refuse(p.Type)
		default:
			return nil, invalidf("%s message content part type %q is unknown", role, p.Type)
		}
	}
	return out, nil
}

// readImage reads an image_url: a base64 data URL or an http(s) URL. The
// gateway never fetches the URL.
func readImage(u *imageURL) (*wire.Image, error) {
	img := &wire.Image{Detail: u.Detail}
	if rest, ok := cutPrefixFold(u.URL, "data:"); ok {
		meta, data, ok := strings.Cut(rest, ",")
		mime, isBase64 := strings.CutSuffix(meta, ";base64")
		if !ok || !isBase64 || mime == "" {
			return nil, invalidf("image_url.url must be a base64 data URL (data:<type>;base64,...) or an http(s) URL")
		}
		img.MediaType, img.Data = mime, data
		return img, nil
	}
	if _, ok := cutPrefixFold(u.URL, "https://"); !ok {
		if _, ok := cutPrefixFold(u.URL, "http://"); !ok {
			return nil, invalidf("image_url.url must be a base64 data URL or an http(s) URL")
		}
	}
	img.URL = u.URL
	return img, nil
}

func cutPrefixFold(s, prefix string) (string, bool) {
	if len(s) >= len(prefix) && strings.EqualFold(s[:len(prefix)], prefix) {
		return s[len(prefix):], true
	}
	return s, false
}

// tool is one element of tools.
type tool struct {
	Type     string        `json:"type"`
	Function *toolFunction `json:"function,omitempty"`
}

type toolFunction struct {
	Name        string          `json:"name"`
	Description string          `json:"description,omitempty"`
	Parameters  json.RawMessage `json:"parameters,omitempty"`
	Strict      *bool           `json:"strict,omitempty"`
}

func (r *reader) tools(raw json.RawMessage) error {
	var tools []tool
	if err := decode("tools", raw, &tools); err != nil {
		return err
	}
	for i, t := range tools {
		if t.Type != "function" {
			r.refuse("tools." + t.Type)
			continue
		}
		if t.Function == nil || t.Function.Name == "" {
			return invalidf("tools[%d].function.name is required", i)
		}
		r.req.Tools = append(r.req.Tools, wire.Tool{Name: t.Function.Name, Description: t.Function.Description,
			Parameters: compact(t.Function.Parameters)})
	}
	return nil
}

// namedChoice is tool_choice as an object.
type namedChoice struct {
	Type     string `json:"type"`
	Function *struct {
		Name string `json:"name"`
	} `json:"function,omitempty"`
}

func (r *reader) toolChoice(raw json.RawMessage) error {
	tc := &r.req.ToolChoice
	var s string
	if json.Unmarshal(raw, &s) == nil {
		switch s {
		case "auto":
			tc.Mode = wire.ToolChoiceAuto
		case "none":
			tc.Mode = wire.ToolChoiceNone
		case "required":
			tc.Mode = wire.ToolChoiceRequired
		default:
			return invalidf("tool_choice %q is not one of none, auto, required", s)
		}
		return nil
	}
	var c namedChoice
	if err := decode("tool_choice", raw, &c); err != nil {
		return err
	}
	if c.Type != "function" {
		r.refuse("tool_choice." + c.Type)
		return nil
	}
	if c.Function == nil || c.Function.Name == "" {
		return invalidf("tool_choice.function.name is required")
	}
	tc.Mode, tc.Name = wire.ToolChoiceNamed, c.Function.Name
	return nil
}

// responseFormat is response_format.
type responseFormat struct {
	Type       string      `json:"type"`
	JSONSchema *jsonSchema `json:"json_schema,omitempty"`
}

type jsonSchema struct {
	Name        string          `json:"name"`
	Description string          `json:"description,omitempty"`
	Schema      json.RawMessage `json:"schema,omitempty"`
	Strict      bool            `json:"strict,omitempty"`
}

func (r *reader) responseFormat(raw json.RawMessage) error {
	var f responseFormat
	if err := decode("response_format", raw, &f); err != nil {
		return err
	}
	rf := &r.req.ResponseFormat
	switch f.Type {
	case "text":
		rf.Kind = wire.FormatText
	case "json_object":
		rf.Kind = wire.FormatJSON
	case "json_schema":
		if f.JSONSchema == nil || isNull(f.JSONSchema.Schema) {
			return invalidf("response_format.json_schema.schema is required")
		}
		if f.JSONSchema.Description != "" {
			// The description steers the answer and only OpenAI has it.
			r.refuse("response_format.json_schema.description")
		}
		*rf = wire.ResponseFormat{Kind: wire.FormatJSONSchema, Name: f.JSONSchema.Name,
			Schema: compact(f.JSONSchema.Schema), Strict: f.JSONSchema.Strict}
	default:
		return invalidf("response_format.type %q is not one of text, json_object, json_schema", f.Type)
	}
	return nil
}
