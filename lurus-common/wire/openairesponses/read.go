package openairesponses

import (
	"encoding/json"
	"slices"
	"strings"

	"github.com/lurus-switch/lurus-switch/lurus-common/apperr"
	"github.com/lurus-switch/lurus-switch/lurus-common/wire"
)

// Hints: fields whose loss changes nothing in the answer. They are dropped
// when a request is translated.
var hints = map[string]bool{
	"store":                  true,
	"metadata":               true,
	"user":                   true,
	"service_tier":           true,
	"safety_identifier":      true,
	"prompt_cache_key":       true,
	"prompt_cache_retention": true,
	"stream_options":         true, // include_obfuscation only pads events
}

// stateful are fields that point at state kept by OpenAI or ask for
// output no other format has; no other vendor can honour them.
var stateful = map[string]bool{
	"previous_response_id": true,
	"conversation":         true,
	"prompt":               true, // a stored prompt template
	"max_tool_calls":       true,
}

// ReadRequest reads a Responses request body into req. Fields another
// format cannot express with the same meaning are listed in req.Refused
// (a writer of another format refuses the request naming the first);
// unknown fields are refused too, since what they mean is unknown. An
// input item of the wrong shape is a 400 INVALID_ARGUMENT.
func (Adapter) ReadRequest(body []byte, req *wire.Request) error {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(body, &top); err != nil || top == nil {
		return invalid("request body must be a JSON object")
	}
	r := reader{req: req, callNames: map[string]string{}}
	var instructions []wire.Part
	for _, k := range slices.Sorted(func(yield func(string) bool) {
		for k := range top {
			if !yield(k) {
				return
			}
		}
	}) {
		v := top[k]
		if isNull(v) || hints[k] {
			continue
		}
		if stateful[k] {
			r.refuse(k)
			continue
		}
		var err error
		switch k {
		case "model":
			err = decode(v, &req.Model, k)
		case "input":
			err = r.input(v)
		case "instructions":
			var s string
			if err = decode(v, &s, k); err == nil && s != "" {
				instructions = []wire.Part{{Kind: wire.PartText, Text: s}}
			}
		case "tools":
			err = r.tools(v)
		case "tool_choice":
			err = r.toolChoice(v)
		case "parallel_tool_calls":
			var b bool
			if err = decode(v, &b, k); err == nil {
				req.ParallelToolCalls = &b
			}
		case "text":
			err = r.text(v)
		case "temperature":
			err = decode(v, &req.Temperature, k)
		case "top_p":
			err = decode(v, &req.TopP, k)
		case "max_output_tokens":
			err = decode(v, &req.MaxOutputTokens, k)
			if err == nil && req.MaxOutputTokens < 0 {
				err = invalid("max_output_tokens must not be negative")
			}
		case "stream":
			err = decode(v, &req.Stream, k)
		case "background":
			var b bool
			if err = decode(v, &b, k); err == nil && b {
				r.refuse(k)
			}
		case "reasoning":
			// The effort changes how long and how well the model thinks;
			// a summary setting alone only changes what is shown of it.
			var rs struct {
				Effort json.RawMessage `json:"effort"`
			}
			if err = decode(v, &rs, k); err == nil && len(rs.Effort) > 0 && !isNull(rs.Effort) {
				r.refuse(k)
			}
		case "truncation":
			var s string
			if err = decode(v, &s, k); err == nil && s != "disabled" {
				r.refuse(k)
			}
		case "include":
			var inc []string
			if err = decode(v, &inc, k); err == nil && len(inc) > 0 {
				r.refuse(k)
			}
		case "top_logprobs":
			var n int64
			if err = decode(v, &n, k); err == nil && n > 0 {
				r.refuse(k)
			}
		default:
			r.refuse(k)
		}
		if err != nil {
			return err
		}
	}
	req.System = append(instructions, r.system...)
	return nil
}

// reader holds what reading the input needs across items.
type reader struct {
	req    *wire.Request
	system []wire.Part
	// callNames maps a call_id to its function's name, for tool results.
	callNames map[string]string
}

func (r *reader) refuse(field string) {
	if !slices.Contains(r.req.Refused, field) {
		r.req.Refused = append(r.req.Refused, field)
	}
}

func invalid(msg string) error { return apperr.New(apperr.ReasonInvalidArgument, msg) }

func isNull(v json.RawMessage) bool { return string(v) == "null" }

// decode unmarshals v into dst, naming field in the error.
func decode(v json.RawMessage, dst any, field string) error {
	if err := json.Unmarshal(v, dst); err != nil {
		return apperr.Newf(apperr.ReasonInvalidArgument, "%s has the wrong type", field)
	}
	return nil
}

// inputItem is any input item; Type says which fields apply.
type inputItem struct {
	Type      string          `json:"type"`
	Role      string          `json:"role"`
	Content   json.RawMessage `json:"content"`
	CallID    string          `json:"call_id"`
	Name      string          `json:"name"`
	Arguments string          `json:"arguments"`
	Output    json.RawMessage `json:"output"`
	Summary   []struct {
		Text string `json:"text"`
	} `json:"summary"`
}

// contentPart is a part of a message's content or of a tool output.
type contentPart struct {
	Type     string `json:"type"`
	Text     string `json:"text"`
	Refusal  string `json:"refusal"`
	ImageURL string `json:"image_url"`
	FileID   string `json:"file_id"`
	Detail   string `json:"detail"`
}

func (r *reader) input(v json.RawMessage) error {
	var s string
	if json.Unmarshal(v, &s) == nil {
		r.req.Messages = append(r.req.Messages, wire.Message{Role: wire.RoleUser, Parts: []wire.Part{{Kind: wire.PartText, Text: s}}})
		return nil
	}
	var items []json.RawMessage
	if err := decode(v, &items, "input"); err != nil {
		return err
	}
	for _, raw := range items {
		var it inputItem
		if err := decode(raw, &it, "input item"); err != nil {
			return err
		}
		if err := r.item(&it); err != nil {
			return err
		}
	}
	return nil
}

func (r *reader) item(it *inputItem) error {
	switch it.Type {
	case "", "message":
		return r.message(it)
	case "function_call":
		if it.CallID == "" || it.Name == "" {
			return invalid("a function_call input item needs call_id and name")
		}
		r.callNames[it.CallID] = it.Name
		r.appendPart(wire.RoleAssistant, wire.Part{Kind: wire.PartToolCall,
			ToolCall: &wire.ToolCall{ID: it.CallID, Name: it.Name, Arguments: it.Arguments}})
	case "function_call_output":
		if it.CallID == "" {
			return invalid("a function_call_output input item needs call_id")
		}
		content, err := r.toolOutput(it.Output)
		if err != nil {
			return err
		}
		r.appendPart(wire.RoleTool, wire.Part{Kind: wire.PartToolResult, ToolResult: &wire.ToolResult{
			CallID: it.CallID, Name: r.callNames[it.CallID], Content: content}})
	case "reasoning":
		// Only the readable summary can travel; encrypted content is
		// OpenAI's alone and is dropped like any reasoning in history.
		for _, s := range it.Summary {
			if s.Text != "" {
				r.appendPart(wire.RoleAssistant, wire.Part{Kind: wire.PartReasoning, Text: s.Text})
			}
		}
	default:
		// item_reference, built-in tool calls and their outputs.
		r.refuse("input." + it.Type)
	}
	return nil
}

// appendPart adds p to the last message when it has role, else to a new
// message: an assistant's text, reasoning and function calls are one turn,
// as are consecutive tool results.
func (r *reader) appendPart(role wire.Role, p wire.Part) {
	msgs := r.req.Messages
	if n := len(msgs); n > 0 && msgs[n-1].Role == role && role != wire.RoleUser {
		msgs[n-1].Parts = append(msgs[n-1].Parts, p)
		return
	}
	r.req.Messages = append(msgs, wire.Message{Role: role, Parts: []wire.Part{p}})
}

func (r *reader) message(it *inputItem) error {
	var role wire.Role
	switch it.Role {
	case "user":
		role = wire.RoleUser
	case "assistant":
		role = wire.RoleAssistant
	case "system", "developer":
	default:
		return invalid("an input message's role must be user, assistant, system or developer")
	}
	parts, err := r.content(it.Content, "input message content")
	if err != nil {
		return err
	}
	if role == "" {
		for _, p := range parts {
			if p.Kind != wire.PartText {
				return invalid("a system or developer message may hold only text")
			}
		}
		r.system = append(r.system, parts...)
		return nil
	}
	if role == wire.RoleUser {
		r.req.Messages = append(r.req.Messages, wire.Message{Role: role, Parts: parts})
		return nil
	}
	if len(parts) == 0 {
		return nil
	}
	for _, p := range parts {
		r.appendPart(role, p)
	}
	return nil
}

// content reads a message's content: a string or a list of parts.
func (r *reader) content(v json.RawMessage, field string) ([]wire.Part, error) {
	if len(v) == 0 || isNull(v) {
		return nil, nil
	}
	var s string
	if json.Unmarshal(v, &s) == nil {
		return []wire.Part{{Kind: wire.PartText, Text: s}}, nil
	}
	var cps []contentPart
	if err := decode(v, &cps, field); err != nil {
		return nil, err
	}
	parts := make([]wire.Part, 0, len(cps))
	for i := range cps {
		cp := &cps[i]
		switch cp.Type {
		case "input_text", "output_text":
			parts = append(parts, wire.Part{Kind: wire.PartText, Text: cp.Text})
		case "refusal":
			parts = append(parts, wire.Part{Kind: wire.PartText, Text: cp.Refusal})
		case "input_image":
			if cp.ImageURL == "" {
				// A file_id names a file stored at OpenAI.
				r.refuse("input_image.file_id")
				continue
			}
			img, err := parseImageURL(cp.ImageURL)
			if err != nil {
				return nil, err
			}
			img.Detail = cp.Detail
			parts = append(parts, wire.Part{Kind: wire.PartImage, Image: img})
		default:
			// input_file, input_audio and anything newer.
			r.refuse(cp.Type)
		}
	}
	return parts, nil
}

// toolOutput reads a function_call_output's output: a string or a list of
// input_text / input_image parts.
func (r *reader) toolOutput(v json.RawMessage) ([]wire.Part, error) {
	if len(v) == 0 || isNull(v) {
		return []wire.Part{{Kind: wire.PartText}}, nil
	}
	return r.content(v, "function_call_output output")
}

// parseImageURL reads an input_image URL: a base64 data URL or an http(s)
// URL, which the gateway never fetches.
func parseImageURL(u string) (*wire.Image, error) {
	if rest, ok := strings.CutPrefix(u, "data:"); ok {
		meta, data, ok := strings.Cut(rest, ",")
		mediaType, isBase64 := strings.CutSuffix(meta, ";base64")
		if !ok || !isBase64 || mediaType == "" || data == "" {
			return nil, invalid("an image data URL must be data:<media type>;base64,<data>")
		}
		return &wire.Image{MediaType: mediaType, Data: data}, nil
	}
	if strings.HasPrefix(u, "https://") || strings.HasPrefix(u, "http://") {
		return &wire.Image{URL: u}, nil
	}
	return nil, invalid("image_url must be an http(s) URL or a base64 data URL")
}

// toolJSON is a tool definition of a request.
type toolJSON struct {
	Type        string          `json:"type"`
	Name        string          `json:"name"`
	Description string          `json:"description,omitempty"`
	Parameters  json.RawMessage `json:"parameters"`
	Strict      *bool           `json:"strict,omitempty"`
}

func (r *reader) tools(v json.RawMessage) error {
	var tools []toolJSON
	if err := decode(v, &tools, "tools"); err != nil {
		return err
	}
	for _, t := range tools {
		if t.Type != "function" {
			// Built-in tools run at OpenAI (web_search, file_search,
			// code_interpreter, computer use, MCP, …).
			r.refuse("tools." + t.Type)
			continue
		}
		if t.Name == "" {
			return invalid("a function tool needs a name")
		}
		// strict is dropped: the schema still reaches the model, only
		// OpenAI's constrained decoding of it is lost.
		var params json.RawMessage
		if len(t.Parameters) > 0 && !isNull(t.Parameters) {
			params = t.Parameters
		}
		r.req.Tools = append(r.req.Tools, wire.Tool{Name: t.Name, Description: t.Description, Parameters: params})
	}
	return nil
}

func (r *reader) toolChoice(v json.RawMessage) error {
	var s string
	if json.Unmarshal(v, &s) == nil {
		switch s {
		case "auto":
			r.req.ToolChoice = wire.ToolChoice{Mode: wire.ToolChoiceAuto}
		case "none":
			r.req.ToolChoice = wire.ToolChoice{Mode: wire.ToolChoiceNone}
		case "required":
			r.req.ToolChoice = wire.ToolChoice{Mode: wire.ToolChoiceRequired}
		default:
			return invalid("tool_choice must be auto, none, required or a function")
		}
		return nil
	}
	var obj struct {
		Type string `json:"type"`
		Name string `json:"name"`
	}
	if err := decode(v, &obj, "tool_choice"); err != nil {
		return err
	}
	if obj.Type != "function" {
		// allowed_tools, built-in tools, MCP, custom tools.
		r.refuse("tool_choice")
		return nil
	}
	if obj.Name == "" {
		return invalid("tool_choice of type function needs a name")
	}
	r.req.ToolChoice = wire.ToolChoice{Mode: wire.ToolChoiceNamed, Name: obj.Name}
	return nil
}

// textJSON is the request's text configuration.
type textJSON struct {
	Format *formatJSON `json:"format,omitempty"`
	// Verbosity is read only (it is never written).
	Verbosity *string `json:"verbosity,omitempty"`
}

type formatJSON struct {
	Type   string          `json:"type"`
	Name   string          `json:"name,omitempty"`
	Schema json.RawMessage `json:"schema,omitempty"`
	Strict *bool           `json:"strict,omitempty"`
}

func (r *reader) text(v json.RawMessage) error {
	var t textJSON
	if err := decode(v, &t, "text"); err != nil {
		return err
	}
	if t.Verbosity != nil && *t.Verbosity != "medium" {
		// medium is the default; other levels change the answer's length.
		r.refuse("text.verbosity")
	}
	if t.Format == nil {
		return nil
	}
	f := t.Format
	switch f.Type {
	case "text":
		r.req.ResponseFormat = wire.ResponseFormat{Kind: wire.FormatText}
	case "json_object":
		r.req.ResponseFormat = wire.ResponseFormat{Kind: wire.FormatJSON}
	case "json_schema":
		if len(f.Schema) == 0 || isNull(f.Schema) {
			return invalid("text.format of type json_schema needs a schema")
		}
		r.req.ResponseFormat = wire.ResponseFormat{Kind: wire.FormatJSONSchema, Name: f.Name,
			Schema: f.Schema, Strict: f.Strict != nil && *f.Strict}
	default:
		return invalid("text.format.type must be text, json_object or json_schema")
	}
	return nil
}
