package anthropic

import (
	"bytes"
	"encoding/json"
	"sort"

	"github.com/lurus-switch/lurus-switch/lurus-common/apperr"
	"github.com/lurus-switch/lurus-switch/lurus-common/wire"
)

// hints are top-level fields dropped when translating: they tune billing,
// caching or bookkeeping but not the answer.
var hints = map[string]bool{
	"metadata":      true, // user_id
	"service_tier":  true,
	"cache_control": true, // automatic prompt caching: cost, not content
}

// block is any content block a client may send; Type says which fields
// apply.
type block struct {
	Type string `json:"type"`
	// text, thinking
	Text     string `json:"text"`
	Thinking string `json:"thinking"`
	// image
	Source *struct {
		Type      string `json:"type"`
		MediaType string `json:"media_type"`
		Data      string `json:"data"`
		URL       string `json:"url"`
	} `json:"source"`
	// tool_use
	ID    string          `json:"id"`
	Name  string          `json:"name"`
	Input json.RawMessage `json:"input"`
	// tool_result
	ToolUseID string          `json:"tool_use_id"`
	Content   json.RawMessage `json:"content"`
	IsError   bool            `json:"is_error"`
}

type messageJSON struct {
	Role    string          `json:"role"`
	Content json.RawMessage `json:"content"`
}

type toolJSON struct {
	Type        string          `json:"type"`
	Name        string          `json:"name"`
	Description string          `json:"description"`
	InputSchema json.RawMessage `json:"input_schema"`
}

type toolChoiceJSON struct {
	Type                   string `json:"type"`
	Name                   string `json:"name,omitempty"`
	DisableParallelToolUse *bool  `json:"disable_parallel_tool_use,omitempty"`
}

type outputFormatJSON struct {
	Type   string          `json:"type"`
	Schema json.RawMessage `json:"schema"`
}

// reader holds what one ReadRequest call collects.
type reader struct {
	req *wire.Request
	// names maps tool_use ids to tool names, for tool results.
	names   map[string]string
	refused map[string]bool
}

func (r *reader) refuse(field string) { r.refused[field] = true }

func invalid(format string, args ...any) error {
	return apperr.Newf(apperr.ReasonInvalidArgument, format, args...)
}

// field decodes one top-level value, naming the field on a type mismatch.
func field(name string, raw json.RawMessage, v any) error {
	if err := json.Unmarshal(raw, v); err != nil {
		return invalid("%s has the wrong type", name)
	}
	return nil
}

// ReadRequest reads a Messages or count_tokens body. Every top-level field
// is either mapped, dropped as a hint (metadata, service_tier,
// cache_control, thinking disabled) or listed in req.Refused, so a field
// this reader does not know is never silently lost.
func (Adapter) ReadRequest(body []byte, req *wire.Request) error {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(body, &top); err != nil || top == nil {
		return apperr.New(apperr.ReasonMalformedJSON, "request body is not a JSON object")
	}
	r := &reader{req: req, names: map[string]string{}, refused: map[string]bool{}}
	// messages first, so tool results can name their calls whatever the
	// key order; the rest in a fixed order for stable errors.
	keys := make([]string, 0, len(top))
	for k := range top {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	if raw, ok := top["messages"]; ok {
		if err := r.messages(raw); err != nil {
			return err
		}
	} else {
		return invalid("messages is required")
	}
	for _, k := range keys {
		if err := r.top(k, top[k]); err != nil {
			return err
		}
	}
	for k := range r.refused {
		req.Refused = append(req.Refused, k)
	}
	sort.Strings(req.Refused)
	return nil
}

// top reads one top-level field.
func (r *reader) top(k string, raw json.RawMessage) error {
	req := r.req
	if isNull(raw) {
		return nil
	}
	switch k {
	case "messages":
		return nil // read first
	case "model":
		return field(k, raw, &req.Model)
	case "system":
		return r.system(raw)
	case "max_tokens":
		return field(k, raw, &req.MaxOutputTokens)
	case "stop_sequences":
		return field(k, raw, &req.Stop)
	case "stream":
		return field(k, raw, &req.Stream)
	case "temperature":
		return field(k, raw, &req.Temperature)
	case "top_p":
		return field(k, raw, &req.TopP)
	case "top_k":
		return field(k, raw, &req.TopK)
	case "tools":
		return r.tools(raw)
	case "tool_choice":
		return r.toolChoice(raw)
	case "thinking":
		var t struct {
			Type string `json:"type"`
		}
		if err := field(k, raw, &t); err != nil {
			return err
		}
		if t.Type != "disabled" {
			r.refuse("thinking")
		}
		return nil
	case "output_format":
		return r.outputFormat(k, raw)
	case "output_config":
		var oc map[string]json.RawMessage
		if err := field(k, raw, &oc); err != nil {
			return err
		}
		for ok, ov := range oc {
			switch {
			case isNull(ov):
			case ok == "format":
				if err := r.outputFormat("output_config.format", ov); err != nil {
					return err
				}
			default:
				r.refuse("output_config." + ok)
			}
		}
		return nil
	}
	if !hints[k] {
		r.refuse(k)
	}
	return nil
}

func isNull(raw json.RawMessage) bool {
	return len(raw) == 0 || string(bytes.TrimSpace(raw)) == "null"
}

func (r *reader) outputFormat(name string, raw json.RawMessage) error {
	var f outputFormatJSON
	if err := field(name, raw, &f); err != nil {
		return err
	}
	if f.Type != "json_schema" {
		return invalid("%s.type must be json_schema", name)
	}
	// Anthropic's structured outputs are constrained decoding: strict.
	r.req.ResponseFormat = wire.ResponseFormat{Kind: wire.FormatJSONSchema, Schema: compact(f.Schema), Strict: true}
	return nil
}

func (r *reader) system(raw json.RawMessage) error {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		r.req.System = []wire.Part{{Kind: wire.PartText, Text: s}}
		return nil
	}
	var blocks []block
	if err := field("system", raw, &blocks); err != nil {
		return err
	}
	r.req.System = nil
	for _, b := range blocks {
		if b.Type != "text" {
			return invalid("system blocks must be text, not %q", b.Type)
		}
		r.req.System = append(r.req.System, wire.Part{Kind: wire.PartText, Text: b.Text})
	}
	return nil
}

func (r *reader) messages(raw json.RawMessage) error {
	var msgs []messageJSON
	if err := field("messages", raw, &msgs); err != nil {
		return err
	}
	r.req.Messages = nil
	for i, m := range msgs {
		if err := r.message(i, m); err != nil {
			return err
		}
	}
	return nil
}

// message reads one message. A user message's tool_result blocks become
// RoleTool messages (one per result, as OpenAI has them), in their place
// among the user's other blocks.
func (r *reader) message(i int, m messageJSON) error {
	var role wire.Role
	switch m.Role {
	case "user":
		role = wire.RoleUser
	case "assistant":
		role = wire.RoleAssistant
	default:
		return invalid("messages[%d].role must be user or assistant", i)
	}
	var s string
	if json.Unmarshal(m.Content, &s) == nil {
		r.req.Messages = append(r.req.Messages, wire.Message{Role: role, Parts: []wire.Part{{Kind: wire.PartText, Text: s}}})
		return nil
	}
	var blocks []block
	if err := json.Unmarshal(m.Content, &blocks); err != nil {
		return invalid("messages[%d].content must be a string or an array of content blocks", i)
	}
	var run []wire.Part
	flush := func() {
		if len(run) > 0 {
			r.req.Messages = append(r.req.Messages, wire.Message{Role: role, Parts: run})
			run = nil
		}
	}
	for j, b := range blocks {
		if b.Type == "tool_result" && role == wire.RoleUser {
			flush()
			tr, err := r.toolResult(i, j, b)
			if err != nil {
				return err
			}
			r.req.Messages = append(r.req.Messages, wire.Message{Role: wire.RoleTool, Parts: []wire.Part{{Kind: wire.PartToolResult, ToolResult: tr}}})
			continue
		}
		p, ok, err := r.part(i, j, role, b)
		if err != nil {
			return err
		}
		if ok {
			run = append(run, p)
		}
	}
	flush()
	if len(blocks) == 0 {
		r.req.Messages = append(r.req.Messages, wire.Message{Role: role})
	}
	return nil
}

// part reads a block of a user or assistant message; ok is false for a
// block dropped on purpose (redacted_thinking: opaque to every other
// format).
func (r *reader) part(i, j int, role wire.Role, b block) (wire.Part, bool, error) {
	switch b.Type {
	case "text":
		return wire.Part{Kind: wire.PartText, Text: b.Text}, true, nil
	case "image":
		img, err := r.image(i, j, b)
		if err != nil || img == nil {
			return wire.Part{}, false, err
		}
		return wire.Part{Kind: wire.PartImage, Image: img}, true, nil
	case "tool_use":
		if role != wire.RoleAssistant {
			return wire.Part{}, false, invalid("messages[%d].content[%d]: tool_use belongs to assistant messages", i, j)
		}
		if b.ID == "" || b.Name == "" {
			return wire.Part{}, false, invalid("messages[%d].content[%d]: tool_use needs id and name", i, j)
		}
		args := compact(b.Input)
		if args == nil {
			args = json.RawMessage("{}")
		} else if args[0] != '{' {
			return wire.Part{}, false, invalid("messages[%d].content[%d]: tool_use input must be an object", i, j)
		}
		r.names[b.ID] = b.Name
		return wire.Part{Kind: wire.PartToolCall, ToolCall: &wire.ToolCall{ID: b.ID, Name: b.Name, Arguments: string(args)}}, true, nil
	case "thinking":
		return wire.Part{Kind: wire.PartReasoning, Text: b.Thinking}, true, nil
	case "redacted_thinking":
		return wire.Part{}, false, nil
	case "tool_result":
		return wire.Part{}, false, invalid("messages[%d].content[%d]: tool_result belongs to user messages", i, j)
	case "":
		return wire.Part{}, false, invalid("messages[%d].content[%d]: type is required", i, j)
	}
	// document, search_result, server_tool_use, web_search_tool_result, …:
	// no other format carries them.
	r.refuse(b.Type)
	return wire.Part{}, false, nil
}

func (r *reader) image(i, j int, b block) (*wire.Image, error) {
	if b.Source == nil {
		return nil, invalid("messages[%d].content[%d]: image needs a source", i, j)
	}
	switch s := b.Source; s.Type {
	case "base64":
		if s.MediaType == "" || s.Data == "" {
			return nil, invalid("messages[%d].content[%d]: base64 image needs media_type and data", i, j)
		}
		return &wire.Image{MediaType: s.MediaType, Data: s.Data}, nil
	case "url":
		if s.URL == "" {
			return nil, invalid("messages[%d].content[%d]: url image needs url", i, j)
		}
		return &wire.Image{URL: s.URL}, nil
	case "file":
		r.refuse("file_id")
		return nil, nil
	}
	return nil, invalid("messages[%d].content[%d]: unknown image source type %q", i, j, b.Source.Type)
}

func (r *reader) toolResult(i, j int, b block) (*wire.ToolResult, error) {
	if b.ToolUseID == "" {
		return nil, invalid("messages[%d].content[%d]: tool_result needs tool_use_id", i, j)
	}
	tr := &wire.ToolResult{CallID: b.ToolUseID, Name: r.names[b.ToolUseID], IsError: b.IsError}
	if isNull(b.Content) {
		return tr, nil
	}
	var s string
	if json.Unmarshal(b.Content, &s) == nil {
		tr.Content = []wire.Part{{Kind: wire.PartText, Text: s}}
		return tr, nil
	}
	var inner []block
	if err := json.Unmarshal(b.Content, &inner); err != nil {
		return nil, invalid("messages[%d].content[%d].content must be a string or an array of blocks", i, j)
	}
	for _, ib := range inner {
		switch ib.Type {
		case "text":
			tr.Content = append(tr.Content, wire.Part{Kind: wire.PartText, Text: ib.Text})
		case "image":
			img, err := r.image(i, j, ib)
			if err != nil {
				return nil, err
			}
			if img != nil {
				tr.Content = append(tr.Content, wire.Part{Kind: wire.PartImage, Image: img})
			}
		default:
			r.refuse(ib.Type)
		}
	}
	return tr, nil
}

func (r *reader) tools(raw json.RawMessage) error {
	var tools []toolJSON
	if err := field("tools", raw, &tools); err != nil {
		return err
	}
	r.req.Tools = nil
	for i, t := range tools {
		if t.Type != "" && t.Type != "custom" {
			// server tools (web_search_…, bash_…, text_editor_…) run at
			// Anthropic; no other format has them.
			r.refuse(t.Type)
			continue
		}
		if t.Name == "" {
			return invalid("tools[%d].name is required", i)
		}
		r.req.Tools = append(r.req.Tools, wire.Tool{Name: t.Name, Description: t.Description, Parameters: compact(t.InputSchema)})
	}
	return nil
}

func (r *reader) toolChoice(raw json.RawMessage) error {
	var tc toolChoiceJSON
	if err := field("tool_choice", raw, &tc); err != nil {
		return err
	}
	switch tc.Type {
	case "auto":
		r.req.ToolChoice = wire.ToolChoice{Mode: wire.ToolChoiceAuto}
	case "any":
		r.req.ToolChoice = wire.ToolChoice{Mode: wire.ToolChoiceRequired}
	case "none":
		r.req.ToolChoice = wire.ToolChoice{Mode: wire.ToolChoiceNone}
	case "tool":
		if tc.Name == "" {
			return invalid("tool_choice.name is required with type tool")
		}
		r.req.ToolChoice = wire.ToolChoice{Mode: wire.ToolChoiceNamed, Name: tc.Name}
	default:
		return invalid("tool_choice.type must be auto, any, tool or none")
	}
	if tc.DisableParallelToolUse != nil {
		p := !*tc.DisableParallelToolUse
		r.req.ParallelToolCalls = &p
	}
	return nil
}

// compact returns raw without insignificant space (nil for nothing or
// null), so canonical JSON text compares equal across formats.
func compact(raw json.RawMessage) json.RawMessage {
	if isNull(raw) {
		return nil
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, raw); err != nil {
		return raw
	}
	return buf.Bytes()
}
