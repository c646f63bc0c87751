package gemini

import (
	"encoding/json"
	"strconv"
	"strings"

	"github.com/lurus-switch/lurus-switch/lurus-common/apperr"
	"github.com/lurus-switch/lurus-switch/lurus-common/wire"
)

// ReadRequest reads a Gemini client body into req. The caller has set Op,
// Model and Stream from the path (generateContent, streamGenerateContent,
// countTokens, embedContent or batchEmbedContents).
func (a Adapter) ReadRequest(body []byte, req *wire.Request) error {
	top, err := parseObject(body, "request body")
	if err != nil {
		return err
	}
	switch req.Op {
	case wire.OpEmbed:
		return readEmbed(top, req)
	case wire.OpCountTokens:
		g, err := top.takeObject("generateContentRequest")
		if err != nil {
			return err
		}
		if g != nil {
			if len(top) > 0 {
				req.Refused = top.refuseRest(req.Refused, "")
			}
			top = g
		}
	}
	r := reader{req: req}
	return r.generate(top)
}

// reader holds what reading the conversation needs across contents.
type reader struct {
	req *wire.Request
	// calls are the function calls met so far, for matching results back
	// by name.
	calls []pendingCall
}

type pendingCall struct {
	id, name string
	answered bool
}

func (r *reader) refuse(field string) {
	r.req.Refused = append(r.req.Refused, field)
}

func (r *reader) generate(top object) error {
	req := r.req
	// model repeats the path (GenerateContentRequest.model); the path wins.
	top.drop("model", "safetySettings", "labels")
	if sys, err := top.takeObject("systemInstruction"); err != nil {
		return err
	} else if sys != nil {
		parts, err := r.systemParts(sys)
		if err != nil {
			return err
		}
		req.System = parts
	}
	contents, err := top.takeArray("contents")
	if err != nil {
		return err
	}
	for i, raw := range contents {
		c, err := parseObject(raw, "contents["+strconv.Itoa(i)+"]")
		if err != nil {
			return err
		}
		if err := r.content(c); err != nil {
			return err
		}
	}
	tools, err := top.takeArray("tools")
	if err != nil {
		return err
	}
	for _, raw := range tools {
		if err := r.tool(raw); err != nil {
			return err
		}
	}
	if tc, err := top.takeObject("toolConfig"); err != nil {
		return err
	} else if tc != nil {
		if err := r.toolConfig(tc); err != nil {
			return err
		}
	}
	if gc, err := top.takeObject("generationConfig"); err != nil {
		return err
	} else if gc != nil {
		if err := r.generationConfig(gc); err != nil {
			return err
		}
	}
	req.Refused = top.refuseRest(req.Refused, "")
	return nil
}

// systemParts reads systemInstruction: text parts only (its role, if
// any, is ignored as Gemini does).
func (r *reader) systemParts(c object) ([]wire.Part, error) {
	c.drop("role")
	raws, err := c.takeArray("parts")
	if err != nil {
		return nil, err
	}
	var out []wire.Part
	for _, raw := range raws {
		p, err := parseObject(raw, "systemInstruction.parts[]")
		if err != nil {
			return nil, err
		}
		p.drop("thoughtSignature")
		var text string
		if _, err := p.takeInto("text", &text); err != nil {
			return nil, err
		}
		out = append(out, wire.Part{Kind: wire.PartText, Text: text})
		r.req.Refused = p.refuseRest(r.req.Refused, "systemInstruction.parts.")
	}
	r.req.Refused = c.refuseRest(r.req.Refused, "systemInstruction.")
	return out, nil
}

// content reads one turn. A user turn's functionResponse parts become a
// tool message, its other parts a user message, in the order met.
func (r *reader) content(c object) error {
	var role string
	if _, err := c.takeInto("role", &role); err != nil {
		return err
	}
	raws, err := c.takeArray("parts")
	if err != nil {
		return err
	}
	r.req.Refused = c.refuseRest(r.req.Refused, "contents.")
	var model bool
	switch role {
	case "", "user", "function":
	case "model":
		model = true
	default:
		return apperr.Newf(apperr.ReasonInvalidArgument, "contents role %q is neither user nor model", role)
	}
	start := len(r.req.Messages)
	for _, raw := range raws {
		p, err := parseObject(raw, "contents.parts[]")
		if err != nil {
			return err
		}
		part, err := r.part(p, model)
		if err != nil {
			return err
		}
		if part == nil {
			continue
		}
		msgRole := wire.RoleUser
		switch {
		case model:
			msgRole = wire.RoleAssistant
		case part.Kind == wire.PartToolResult:
			msgRole = wire.RoleTool
		}
		r.appendPart(start, msgRole, *part)
	}
	return nil
}

// appendPart adds part to the last message when it has role and was
// opened by the current content (from message index start on), else to a
// new message.
func (r *reader) appendPart(start int, role wire.Role, part wire.Part) {
	msgs := r.req.Messages
	if n := len(msgs); n > start && msgs[n-1].Role == role {
		msgs[n-1].Parts = append(msgs[n-1].Parts, part)
		return
	}
	r.req.Messages = append(msgs, wire.Message{Role: role, Parts: []wire.Part{part}})
}

// part reads one part; nil for a part that carries nothing canonical (an
// empty text).
func (r *reader) part(p object, model bool) (*wire.Part, error) {
	p.drop("thoughtSignature", "videoMetadata", "partMetadata")
	var thought bool
	if _, err := p.takeInto("thought", &thought); err != nil {
		return nil, err
	}
	var out *wire.Part
	var err error
	switch {
	case p.has("text"):
		var text string
		if _, err = p.takeInto("text", &text); err == nil {
			kind := wire.PartText
			if thought {
				kind = wire.PartReasoning
			}
			out = &wire.Part{Kind: kind, Text: text}
		}
	case p.has("inlineData"):
		out, err = r.media(p, "inlineData", "data")
	case p.has("fileData"):
		out, err = r.media(p, "fileData", "fileUri")
	case p.has("functionCall"):
		if !model {
			return nil, apperr.New(apperr.ReasonInvalidArgument, "functionCall parts belong to model turns")
		}
		out, err = r.functionCall(p)
	case p.has("functionResponse"):
		if model {
			return nil, apperr.New(apperr.ReasonInvalidArgument, "functionResponse parts belong to user turns")
		}
		out, err = r.functionResponse(p)
	}
	if err != nil {
		return nil, err
	}
	r.req.Refused = p.refuseRest(r.req.Refused, "parts.")
	return out, nil
}

// has reports whether field camel is present in either spelling.
func (o object) has(camel string) bool {
	_, a := o[camel]
	_, b := o[snakeCase(camel)]
	return a || b
}

// media reads inlineData (src "data": base64) or fileData (src
// "fileUri"). Only images have a canonical part; gs:// objects, Files API
// URIs of other vendors' reach and non-image files are refused.
func (r *reader) media(p object, key, src string) (*wire.Part, error) {
	d, err := p.takeObject(key)
	if err != nil || d == nil {
		return nil, err
	}
	var mime, value string
	if _, err := d.takeInto("mimeType", &mime); err != nil {
		return nil, err
	}
	if _, err := d.takeInto(src, &value); err != nil {
		return nil, err
	}
	d.drop("displayName")
	r.req.Refused = d.refuseRest(r.req.Refused, key+".")
	img := &wire.Image{MediaType: mime}
	isImage := strings.HasPrefix(mime, "image/")
	if key == "inlineData" {
		img.Data = value
	} else {
		img.URL = value
		// A file's type may be left to Gemini to guess.
		isImage = isHTTPURL(value) && (mime == "" || isImage)
	}
	if !isImage {
		r.refuse(key)
		return nil, nil
	}
	return &wire.Part{Kind: wire.PartImage, Image: img}, nil
}

func isHTTPURL(u string) bool {
	return strings.HasPrefix(u, "https://") || strings.HasPrefix(u, "http://")
}

func (r *reader) functionCall(p object) (*wire.Part, error) {
	c, err := p.takeObject("functionCall")
	if err != nil || c == nil {
		return nil, err
	}
	var call wire.ToolCall
	if _, err := c.takeInto("name", &call.Name); err != nil {
		return nil, err
	}
	if call.Name == "" {
		return nil, apperr.New(apperr.ReasonInvalidArgument, "functionCall without a name")
	}
	if _, err := c.takeInto("id", &call.ID); err != nil {
		return nil, err
	}
	if call.ID == "" {
		call.ID = "call_" + strconv.Itoa(len(r.calls))
	}
	args, err := c.take("args")
	if err != nil {
		return nil, err
	}
	call.Arguments, err = compactObject(args, "functionCall.args")
	if err != nil {
		return nil, err
	}
	r.req.Refused = c.refuseRest(r.req.Refused, "functionCall.")
	r.calls = append(r.calls, pendingCall{id: call.ID, name: call.Name})
	return &wire.Part{Kind: wire.PartToolCall, ToolCall: &call}, nil
}

// compactObject returns raw (a JSON object, or absent: {}) as compact text.
func compactObject(raw json.RawMessage, what string) (string, error) {
	if raw == nil {
		return "{}", nil
	}
	var o map[string]json.RawMessage
	if err := json.Unmarshal(raw, &o); err != nil || o == nil {
		return "", apperr.Newf(apperr.ReasonInvalidArgument, "%s must be a JSON object", what)
	}
	b, err := marshal(raw)
	if err != nil {
		return "", apperr.Newf(apperr.ReasonInvalidArgument, "%s must be a JSON object", what)
	}
	return string(b), nil
}

func (r *reader) functionResponse(p object) (*wire.Part, error) {
	f, err := p.takeObject("functionResponse")
	if err != nil || f == nil {
		return nil, err
	}
	var res wire.ToolResult
	if _, err := f.takeInto("name", &res.Name); err != nil {
		return nil, err
	}
	var id string
	if _, err := f.takeInto("id", &id); err != nil {
		return nil, err
	}
	resp, err := f.take("response")
	if err != nil {
		return nil, err
	}
	f.drop("willContinue", "scheduling")
	r.req.Refused = f.refuseRest(r.req.Refused, "functionResponse.")
	res.CallID = r.answer(id, res.Name)
	if res.CallID == "" {
		return nil, apperr.Newf(apperr.ReasonInvalidArgument, "functionResponse %q answers no earlier functionCall", res.Name)
	}
	text, isErr, err := resultText(resp)
	if err != nil {
		return nil, err
	}
	res.IsError = isErr
	res.Content = []wire.Part{{Kind: wire.PartText, Text: text}}
	return &wire.Part{Kind: wire.PartToolResult, ToolResult: &res}, nil
}

// answer finds the call a functionResponse answers: by id when the
// client kept Gemini's ids, else the oldest unanswered call of that name.
func (r *reader) answer(id, name string) string {
	for i := range r.calls {
		c := &r.calls[i]
		if c.answered {
			continue
		}
		if (id != "" && c.id == id) || (id == "" && c.name == name) {
			c.answered = true
			return c.id
		}
	}
	return ""
}

// resultText is the canonical text of a functionResponse.response:
// {"output": text} and {"error": text} unwrap (the keys Google's SDKs
// document), anything else is the object's JSON.
func resultText(resp json.RawMessage) (text string, isErr bool, err error) {
	if resp == nil {
		return "{}", false, nil
	}
	var o map[string]json.RawMessage
	if err := json.Unmarshal(resp, &o); err != nil || o == nil {
		return "", false, apperr.New(apperr.ReasonInvalidArgument, "functionResponse.response must be a JSON object")
	}
	if len(o) == 1 {
		for k, v := range o {
			var s string
			if (k == "output" || k == "error") && json.Unmarshal(v, &s) == nil {
				return s, k == "error", nil
			}
		}
	}
	s, err := compactObject(resp, "functionResponse.response")
	return s, false, err
}

func (r *reader) tool(raw json.RawMessage) error {
	t, err := parseObject(raw, "tools[]")
	if err != nil {
		return err
	}
	decls, err := t.takeArray("functionDeclarations")
	if err != nil {
		return err
	}
	for _, d := range decls {
		f, err := parseObject(d, "functionDeclarations[]")
		if err != nil {
			return err
		}
		var tool wire.Tool
		if _, err := f.takeInto("name", &tool.Name); err != nil {
			return err
		}
		if _, err := f.takeInto("description", &tool.Description); err != nil {
			return err
		}
		params, err := f.take("parameters")
		if err != nil {
			return err
		}
		jsParams, err := f.take("parametersJsonSchema")
		if err != nil {
			return err
		}
		switch {
		case params != nil && jsParams != nil:
			return apperr.New(apperr.ReasonInvalidArgument, "functionDeclarations has both parameters and parametersJsonSchema")
		case params != nil:
			if tool.Parameters, err = schemaToJSON(params); err != nil {
				return err
			}
		case jsParams != nil:
			tool.Parameters = jsParams
		}
		f.drop("response", "responseJsonSchema", "behavior")
		r.req.Refused = f.refuseRest(r.req.Refused, "functionDeclarations.")
		r.req.Tools = append(r.req.Tools, tool)
	}
	// googleSearch, codeExecution, urlContext, …: built-in tools no other
	// vendor runs.
	r.req.Refused = t.refuseRest(r.req.Refused, "tools.")
	return nil
}

func (r *reader) toolConfig(tc object) error {
	fc, err := tc.takeObject("functionCallingConfig")
	if err != nil {
		return err
	}
	tc.drop("retrievalConfig")
	r.req.Refused = tc.refuseRest(r.req.Refused, "toolConfig.")
	if fc == nil {
		return nil
	}
	var mode string
	var names []string
	if _, err := fc.takeInto("mode", &mode); err != nil {
		return err
	}
	if _, err := fc.takeInto("allowedFunctionNames", &names); err != nil {
		return err
	}
	r.req.Refused = fc.refuseRest(r.req.Refused, "functionCallingConfig.")
	tcz := &r.req.ToolChoice
	switch mode {
	case "", "MODE_UNSPECIFIED", "AUTO", "VALIDATED":
		tcz.Mode = wire.ToolChoiceAuto
	case "NONE":
		tcz.Mode = wire.ToolChoiceNone
	case "ANY":
		tcz.Mode = wire.ToolChoiceRequired
		switch {
		case len(names) == 1:
			*tcz = wire.ToolChoice{Mode: wire.ToolChoiceNamed, Name: names[0]}
		case len(names) > 1:
			// "any of these": the other tools cannot be called, so they
			// leave the list.
			r.req.Tools = keepTools(r.req.Tools, names)
		}
	default:
		return apperr.Newf(apperr.ReasonInvalidArgument, "functionCallingConfig.mode %q is unknown", mode)
	}
	return nil
}

func keepTools(tools []wire.Tool, names []string) []wire.Tool {
	out := tools[:0]
	for _, t := range tools {
		for _, n := range names {
			if t.Name == n {
				out = append(out, t)
				break
			}
		}
	}
	return out
}

func (r *reader) generationConfig(gc object) error {
	req := r.req
	gc.drop("seed", "thinkingConfig", "mediaResolution", "enableEnhancedCivicAnswers")
	var logprobs bool
	if _, err := gc.takeInto("responseLogprobs", &logprobs); err != nil {
		return err
	}
	if logprobs {
		r.refuse("responseLogprobs")
	}
	if _, err := gc.takeInto("temperature", &req.Temperature); err != nil {
		return err
	}
	if _, err := gc.takeInto("topP", &req.TopP); err != nil {
		return err
	}
	var topK float64
	if ok, err := gc.takeInto("topK", &topK); err != nil {
		return err
	} else if ok {
		k := int64(topK)
		req.TopK = &k
	}
	if _, err := gc.takeInto("stopSequences", &req.Stop); err != nil {
		return err
	}
	if _, err := gc.takeInto("maxOutputTokens", &req.MaxOutputTokens); err != nil {
		return err
	}
	if _, err := gc.takeInto("candidateCount", &req.Candidates); err != nil {
		return err
	}
	var modalities []string
	if _, err := gc.takeInto("responseModalities", &modalities); err != nil {
		return err
	}
	for _, m := range modalities {
		if m != "TEXT" {
			r.refuse("responseModalities")
			break
		}
	}
	var mime string
	if _, err := gc.takeInto("responseMimeType", &mime); err != nil {
		return err
	}
	schema, err := gc.take("responseSchema")
	if err != nil {
		return err
	}
	jsSchema, err := gc.take("responseJsonSchema")
	if err != nil {
		return err
	}
	if jsSchema == nil {
		// The name the API documented first.
		if jsSchema, err = gc.take("_responseJsonSchema"); err != nil {
			return err
		}
	}
	switch mime {
	case "", "text/plain":
		if schema != nil || jsSchema != nil {
			r.refuse("responseSchema")
		}
	case "application/json":
		req.ResponseFormat.Kind = wire.FormatJSON
		switch {
		case schema != nil && jsSchema != nil:
			return apperr.New(apperr.ReasonInvalidArgument, "generationConfig has both responseSchema and responseJsonSchema")
		case schema != nil:
			js, err := schemaToJSON(schema)
			if err != nil {
				return err
			}
			req.ResponseFormat = wire.ResponseFormat{Kind: wire.FormatJSONSchema, Name: "response", Schema: js}
		case jsSchema != nil:
			req.ResponseFormat = wire.ResponseFormat{Kind: wire.FormatJSONSchema, Name: "response", Schema: jsSchema}
		}
	default:
		// text/x.enum and the like.
		r.refuse("responseMimeType")
	}
	// presencePenalty, frequencyPenalty (they change sampling), logprobs,
	// speechConfig, …
	req.Refused = gc.refuseRest(req.Refused, "generationConfig.")
	return nil
}
