package gemini

import (
	"encoding/json"
	"strings"

	"github.com/lurus-switch/lurus-switch/lurus-common/apperr"
	"github.com/lurus-switch/lurus-switch/lurus-common/modelname"
	"github.com/lurus-switch/lurus-switch/lurus-common/wire"
)

// filesURIPrefix starts the URIs of the Gemini Files API, the only http(s)
// URLs the writer sends as fileData.
const filesURIPrefix = "https://generativelanguage.googleapis.com/"

// WriteRequest writes req for a Gemini provider: {base}/{version}/models/
// {model}:{action}, x-goog-api-key, and the body of the action. A stream is
// always asked for as SSE (alt=sse), whatever framing the client wants.
func (a Adapter) WriteRequest(req *wire.Request, u wire.Upstream) (*wire.HTTPRequest, error) {
	if len(req.Refused) > 0 {
		return nil, &wire.Unsupported{Field: req.Refused[0], Target: target}
	}
	model := strings.TrimPrefix(u.Model, "models/")
	if model == "" {
		return nil, apperr.New(apperr.ReasonMissingModel, "no upstream model")
	}
	var action string
	var body []byte
	var err error
	switch req.Op {
	case wire.OpEmbed:
		action = actionBatchEmbed
		body, err = embedBody(req, model)
	case wire.OpCountTokens:
		action = actionCount
		body, err = countBody(req, model)
	default:
		action = actionGenerate
		if req.Stream {
			action = actionStream
		}
		var g *gGenerateRequest
		if g, err = generateBody(req); err == nil {
			body, err = marshal(g)
		}
	}
	if err != nil {
		return nil, err
	}
	// The trimmed name goes into the path too; a stream is always SSE.
	u.Model = model
	loc, err := a.Locate(u, wire.Call{Path: action, SSE: true})
	if err != nil {
		return nil, err
	}
	return &wire.HTTPRequest{URL: loc.URL, Headers: []wire.Header{loc.Auth}, Body: body}, nil
}

// Locate places the action call.Path for u's model: {base}/{api_version,
// else v1beta}/models/{model}:{action}, the model escaped by
// wire.PathSegment (a ':' in it cannot name another action), alt=sse on
// streamGenerateContent when call.SSE, and an x-goog-api-key header.
func (Adapter) Locate(u wire.Upstream, call wire.Call) (wire.Location, error) {
	ver := u.APIVersion
	if ver == "" {
		ver = defaultAPIVersion
	}
	addr := strings.TrimRight(u.BaseURL, "/") + "/" + modelname.PathSegment(ver) + "/models/" + wire.PathSegment(u.Model) + ":" + call.Path
	if call.SSE && call.Path == actionStream {
		addr += "?alt=sse"
	}
	return wire.Location{URL: addr, Auth: wire.Header{Key: "x-goog-api-key", Value: u.Secret}, PathModel: true}, nil
}

// countBody is countTokens' body: the bare contents, or the whole
// generate request when system instructions or tools count too.
func countBody(req *wire.Request, model string) ([]byte, error) {
	g, err := generateBody(req)
	if err != nil {
		return nil, err
	}
	if g.SystemInstruction == nil && g.Tools == nil {
		return marshal(gCountRequest{Contents: g.Contents})
	}
	g.Model = "models/" + model
	// The cap and sampling do not change a count.
	g.GenerationConfig = nil
	return marshal(gCountRequest{GenerateContentRequest: g})
}

func generateBody(req *wire.Request) (*gGenerateRequest, error) {
	g := &gGenerateRequest{Contents: []gContent{}}
	if len(req.System) > 0 {
		sys := &gContent{}
		for _, p := range req.System {
			if p.Kind != wire.PartText {
				return nil, unsupported("system image")
			}
			sys.Parts = append(sys.Parts, textPart(p.Text, false))
		}
		g.SystemInstruction = sys
	}
	if err := writeContents(g, req.Messages); err != nil {
		return nil, err
	}
	if err := writeTools(g, req); err != nil {
		return nil, err
	}
	cfg, err := generationConfig(req)
	if err != nil {
		return nil, err
	}
	g.GenerationConfig = cfg
	return g, nil
}

func textPart(s string, thought bool) gPart {
	return gPart{Text: &s, Thought: thought}
}

// writeContents writes the turns. Tool results become functionResponse
// parts of a user turn; consecutive messages of one Gemini role share a
// turn, as Gemini expects the results of parallel calls together.
// Reasoning is left out of history.
func writeContents(g *gGenerateRequest, msgs []wire.Message) error {
	names := map[string]string{} // call id → tool name
	for _, m := range msgs {
		role := "user"
		if m.Role == wire.RoleAssistant {
			role = "model"
		}
		var parts []gPart
		for _, p := range m.Parts {
			gp, ok, err := writePart(p, names)
			if err != nil {
				return err
			}
			if ok {
				parts = append(parts, gp)
			}
		}
		if len(parts) == 0 {
			continue
		}
		if n := len(g.Contents); n > 0 && g.Contents[n-1].Role == role {
			g.Contents[n-1].Parts = append(g.Contents[n-1].Parts, parts...)
			continue
		}
		g.Contents = append(g.Contents, gContent{Role: role, Parts: parts})
	}
	for i := range g.Contents {
		signFirstCall(&g.Contents[i])
	}
	return nil
}

// skipSignature is the thoughtSignature Google documents for function
// calls that a Gemini model did not make (a history from another vendor):
// Gemini 3 refuses a turn's first function call without a signature.
const skipSignature = "skip_thought_signature_validator"

// signFirstCall gives the first function call of a model turn the skip
// signature; the real signature never survives translation.
func signFirstCall(c *gContent) {
	if c.Role != "model" {
		return
	}
	for i := range c.Parts {
		if c.Parts[i].FunctionCall != nil {
			c.Parts[i].ThoughtSignature = skipSignature
			return
		}
	}
}

// writePart writes one part; ok is false for a part left out.
func writePart(p wire.Part, names map[string]string) (gPart, bool, error) {
	switch p.Kind {
	case wire.PartText:
		return textPart(p.Text, false), true, nil
	case wire.PartReasoning:
		return gPart{}, false, nil
	case wire.PartImage:
		gp, err := imagePart(p.Image)
		return gp, err == nil, err
	case wire.PartToolCall:
		c := p.ToolCall
		if c == nil {
			return gPart{}, false, apperr.New(apperr.ReasonInvalidArgument, "tool call part without a call")
		}
		args, err := argsObject(c.Arguments)
		if err != nil {
			return gPart{}, false, err
		}
		names[c.ID] = c.Name
		return gPart{FunctionCall: &gCall{Name: c.Name, Args: args}}, true, nil
	case wire.PartToolResult:
		res := p.ToolResult
		if res == nil {
			return gPart{}, false, apperr.New(apperr.ReasonInvalidArgument, "tool result part without a result")
		}
		name := res.Name
		if name == "" {
			name = names[res.CallID]
		}
		if name == "" {
			return gPart{}, false, apperr.Newf(apperr.ReasonInvalidArgument, "tool result %q answers no tool call", res.CallID)
		}
		resp, err := resultObject(res)
		if err != nil {
			return gPart{}, false, err
		}
		return gPart{FunctionResponse: &gFuncResp{Name: name, Response: resp}}, true, nil
	}
	return gPart{}, false, apperr.New(apperr.ReasonInvalidArgument, "unknown part kind")
}

// imagePart writes inline images as inlineData and Files API URIs as
// fileData. Other URLs are refused: Gemini does not fetch arbitrary URLs
// and the gateway never fetches one for it.
func imagePart(img *wire.Image) (gPart, error) {
	switch {
	case img == nil:
		return gPart{}, apperr.New(apperr.ReasonInvalidArgument, "image part without an image")
	case img.Data != "":
		return gPart{InlineData: &gBlob{MimeType: img.MediaType, Data: img.Data}}, nil
	case strings.HasPrefix(img.URL, filesURIPrefix):
		return gPart{FileData: &gFile{MimeType: img.MediaType, FileURI: img.URL}}, nil
	}
	return gPart{}, unsupported("image_url")
}

// argsObject is a tool call's arguments as the object functionCall.args
// must be ("" is no arguments).
func argsObject(args string) (json.RawMessage, error) {
	if strings.TrimSpace(args) == "" {
		return json.RawMessage("{}"), nil
	}
	var o map[string]json.RawMessage
	if err := json.Unmarshal([]byte(args), &o); err != nil || o == nil {
		return nil, apperr.New(apperr.ReasonInvalidArgument, "tool call arguments are not a JSON object")
	}
	return marshal(json.RawMessage(args))
}

// resultObject is functionResponse.response: a JSON object result as is,
// other text under "output", an error's text under "error".
func resultObject(res *wire.ToolResult) (json.RawMessage, error) {
	var text strings.Builder
	for _, p := range res.Content {
		switch p.Kind {
		case wire.PartText:
			text.WriteString(p.Text)
		case wire.PartImage:
			return nil, unsupported("tool result image")
		}
	}
	s := text.String()
	if res.IsError {
		return marshal(map[string]string{"error": s})
	}
	var o map[string]json.RawMessage
	if json.Unmarshal([]byte(s), &o) == nil && o != nil && !isWrapped(o) {
		return marshal(json.RawMessage(s))
	}
	return marshal(map[string]string{"output": s})
}

// isWrapped reports whether a result object would read back as a wrapped
// text ({"output": "…"} or {"error": "…"}), so it must be wrapped itself.
func isWrapped(o map[string]json.RawMessage) bool {
	if len(o) != 1 {
		return false
	}
	for k, v := range o {
		var s string
		return (k == "output" || k == "error") && json.Unmarshal(v, &s) == nil
	}
	return false
}

func writeTools(g *gGenerateRequest, req *wire.Request) error {
	if len(req.Tools) == 0 {
		return nil
	}
	decls := make([]gFunc, len(req.Tools))
	for i, t := range req.Tools {
		decls[i] = gFunc{Name: t.Name, Description: t.Description}
		if len(t.Parameters) == 0 || isNull(t.Parameters) {
			continue
		}
		params, empty, err := schemaToGemini(t.Parameters)
		if err != nil {
			return err
		}
		if !empty {
			decls[i].Parameters = params
		}
	}
	g.Tools = []gTool{{FunctionDeclarations: decls}}
	switch req.ToolChoice.Mode {
	case wire.ToolChoiceNone:
		g.ToolConfig = &gToolConfig{gCallingConfig{Mode: "NONE"}}
	case wire.ToolChoiceRequired:
		g.ToolConfig = &gToolConfig{gCallingConfig{Mode: "ANY"}}
	case wire.ToolChoiceNamed:
		g.ToolConfig = &gToolConfig{gCallingConfig{Mode: "ANY", AllowedFunctionNames: []string{req.ToolChoice.Name}}}
	}
	return nil
}

func generationConfig(req *wire.Request) (*gGenConfig, error) {
	c := &gGenConfig{
		StopSequences:   req.Stop,
		MaxOutputTokens: req.MaxOutputTokens,
		Temperature:     req.Temperature,
		TopP:            req.TopP,
		TopK:            req.TopK,
	}
	if req.Candidates > 1 {
		c.CandidateCount = req.Candidates
	}
	switch req.ResponseFormat.Kind {
	case wire.FormatJSON:
		c.ResponseMimeType = "application/json"
	case wire.FormatJSONSchema:
		c.ResponseMimeType = "application/json"
		if len(req.ResponseFormat.Schema) > 0 {
			s, _, err := schemaToGemini(req.ResponseFormat.Schema)
			if err != nil {
				return nil, err
			}
			c.ResponseSchema = s
		}
	}
	if c.StopSequences == nil && c.ResponseMimeType == "" && c.CandidateCount == 0 && c.MaxOutputTokens == 0 &&
		c.Temperature == nil && c.TopP == nil && c.TopK == nil {
		return nil, nil
	}
	return c, nil
}
