package openairesponses

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"strconv"
	"strings"

	"github.com/lurus-switch/lurus-switch/lurus-common/wire"
)

// outputItem is an output item as decoded from an upstream answer.
type outputItem struct {
	Type      string `json:"type"`
	ID        string `json:"id"`
	CallID    string `json:"call_id"`
	Name      string `json:"name"`
	Arguments string `json:"arguments"`
	Content   []struct {
		Type    string `json:"type"`
		Text    string `json:"text"`
		Refusal string `json:"refusal"`
	} `json:"content"`
	Summary []struct {
		Text string `json:"text"`
	} `json:"summary"`
}

// responseIn is an upstream response object.
type responseIn struct {
	ID                string       `json:"id"`
	Model             string       `json:"model"`
	Status            string       `json:"status"`
	Output            []outputItem `json:"output"`
	Usage             *usageJSON   `json:"usage"`
	IncompleteDetails *struct {
		Reason string `json:"reason"`
	} `json:"incomplete_details"`
	Error *struct {
		Message string `json:"message"`
	} `json:"error"`
}

// finish maps a response's status to a finish reason. A completed answer
// with function calls stops for them; an incomplete one stopped at the cap
// or at the content filter.
func (r *responseIn) finish(toolCalls, refused bool) wire.FinishReason {
	switch r.Status {
	case "incomplete":
		if r.IncompleteDetails != nil && r.IncompleteDetails.Reason == "content_filter" {
			return wire.FinishContentFilter
		}
		return wire.FinishLength
	case "failed", "cancelled":
		return wire.FinishError
	}
	switch {
	case refused:
		return wire.FinishContentFilter
	case toolCalls:
		return wire.FinishToolCalls
	}
	return wire.FinishStop
}

// DecodeResponse decodes a complete Responses answer: message text,
// refusals (as text, finishing content_filter), function calls and
// reasoning summaries, in output order. Built-in tool items are skipped.
func (Adapter) DecodeResponse(body []byte) (*wire.Response, error) {
	var r responseIn
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, err
	}
	resp := &wire.Response{ID: r.ID, Model: r.Model}
	toolCalls, refused := false, false
	for _, it := range r.Output {
		switch it.Type {
		case "message":
			for _, c := range it.Content {
				switch c.Type {
				case "output_text":
					resp.Parts = append(resp.Parts, wire.Part{Kind: wire.PartText, Text: c.Text})
				case "refusal":
					refused = true
					resp.Parts = append(resp.Parts, wire.Part{Kind: wire.PartText, Text: c.Refusal})
				}
			}
		case "function_call":
			toolCalls = true
			resp.Parts = append(resp.Parts, wire.Part{Kind: wire.PartToolCall,
				ToolCall: &wire.ToolCall{ID: it.CallID, Name: it.Name, Arguments: it.Arguments}})
		case "reasoning":
			if text := summaryText(it.Summary); text != "" {
				resp.Parts = append(resp.Parts, wire.Part{Kind: wire.PartReasoning, Text: text})
			}
		}
	}
	resp.Finish = r.finish(toolCalls, refused)
	if r.Usage != nil {
		resp.Usage, resp.HasUsage = r.Usage.canonical(), true
	}
	return resp, nil
}

func summaryText(summary []struct {
	Text string `json:"text"`
}) string {
	var sb strings.Builder
	for i, s := range summary {
		if i > 0 {
			sb.WriteString("\n\n")
		}
		sb.WriteString(s.Text)
	}
	return sb.String()
}

// The output items as encoded for a client.
type (
	outputText struct {
		Type        string `json:"type"`
		Text        string `json:"text"`
		Annotations []any  `json:"annotations"`
	}
	messageOut struct {
		ID      string       `json:"id"`
		Type    string       `json:"type"`
		Status  string       `json:"status"`
		Role    string       `json:"role"`
		Content []outputText `json:"content"`
	}
	functionCallOut struct {
		ID        string `json:"id"`
		Type      string `json:"type"`
		Status    string `json:"status"`
		CallID    string `json:"call_id"`
		Name      string `json:"name"`
		Arguments string `json:"arguments"`
	}
	summaryPart struct {
		Type string `json:"type"`
		Text string `json:"text"`
	}
	reasoningOut struct {
		ID      string        `json:"id"`
		Type    string        `json:"type"`
		Summary []summaryPart `json:"summary"`
	}
)

// responseOut is the response object sent to a client, in a complete
// answer and in the stream's lifecycle events. It echoes the request's
// settings as OpenAI does; fields this gateway cannot know are null.
type responseOut struct {
	ID                string            `json:"id"`
	Object            string            `json:"object"`
	CreatedAt         int64             `json:"created_at"`
	Status            string            `json:"status"`
	Error             *responseError    `json:"error"`
	IncompleteDetails *incompleteDetail `json:"incomplete_details"`
	Instructions      *string           `json:"instructions"`
	MaxOutputTokens   *int64            `json:"max_output_tokens"`
	Model             string            `json:"model"`
	Output            []any             `json:"output"`
	ParallelToolCalls bool              `json:"parallel_tool_calls"`
	Store             bool              `json:"store"`
	Temperature       *float64          `json:"temperature"`
	Text              textJSON          `json:"text"`
	ToolChoice        any               `json:"tool_choice"`
	Tools             []toolJSON        `json:"tools"`
	TopP              *float64          `json:"top_p"`
	Usage             *usageJSON        `json:"usage"`
}

type incompleteDetail struct {
	Reason string `json:"reason"`
}

type responseError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

// newResponseOut starts the response object for req: in progress, with
// no output and no usage.
func newResponseOut(id string, created int64, req *wire.Request) *responseOut {
	r := &responseOut{ID: id, Object: "response", CreatedAt: created, Status: "in_progress",
		Model: req.Model, Output: []any{}, ParallelToolCalls: true, Temperature: req.Temperature,
		TopP: req.TopP, ToolChoice: toolChoiceOf(req.ToolChoice), Tools: []toolJSON{}}
	if req.ParallelToolCalls != nil {
		r.ParallelToolCalls = *req.ParallelToolCalls
	}
	if req.MaxOutputTokens > 0 {
		v := req.MaxOutputTokens
		r.MaxOutputTokens = &v
	}
	if len(req.System) > 0 {
		s := joinText(req.System, "\n\n")
		r.Instructions = &s
	}
	if len(req.Tools) > 0 {
		r.Tools = toolsOf(req.Tools)
	}
	r.Text.Format = &formatJSON{Type: "text"}
	if t := textOf(req.ResponseFormat); t != nil {
		r.Text = *t
	}
	return r
}

// finishWith sets the terminal status for f: completed, incomplete at the
// cap or the content filter, or failed.
func (r *responseOut) finishWith(f wire.FinishReason, errMsg string) {
	switch f {
	case wire.FinishLength:
		r.Status, r.IncompleteDetails = "incomplete", &incompleteDetail{Reason: "max_output_tokens"}
	case wire.FinishContentFilter:
		r.Status, r.IncompleteDetails = "incomplete", &incompleteDetail{Reason: "content_filter"}
	case wire.FinishError:
		r.Status, r.Error = "failed", &responseError{Code: "server_error", Message: errMsg}
	default:
		r.Status = "completed"
	}
}

// terminalEvent is the stream event that carries a finished response.
func (r *responseOut) terminalEvent() string {
	switch r.Status {
	case "incomplete":
		return "response.incomplete"
	case "failed":
		return "response.failed"
	}
	return "response.completed"
}

// responseID is the id shown to a client: upstream's, prefixed resp_ when
// it is another format's, or a new random one.
func responseID(id string) string {
	switch {
	case strings.HasPrefix(id, "resp_"):
		return id
	case id != "":
		return "resp_" + id
	}
	var b [12]byte
	_, _ = rand.Read(b[:])
	return "resp_" + hex.EncodeToString(b[:])
}

// itemID names output item i of response id: prefix msg, fc or rs.
func itemID(prefix, respID string, i int) string {
	return prefix + "_" + strings.TrimPrefix(respID, "resp_") + "_" + strconv.Itoa(i)
}

// EncodeResponse encodes a complete answer for a Responses client: text
// as one message item (text after a tool call starts a new one), each
// tool call as a function_call item, reasoning as a reasoning item with a
// summary; status completed, or incomplete with the reason.
func (a Adapter) EncodeResponse(resp *wire.Response, req *wire.Request) ([]byte, error) {
	if req.Op != wire.OpGenerate {
		return nil, errors.New("openairesponses: only generate answers are encoded")
	}
	id := responseID(resp.ID)
	r := newResponseOut(id, a.now(), req)
	var msg *messageOut
	for _, p := range resp.Parts {
		switch p.Kind {
		case wire.PartText:
			if msg == nil {
				msg = &messageOut{ID: itemID("msg", id, len(r.Output)), Type: "message", Status: itemStatus(resp.Finish), Role: "assistant"}
				r.Output = append(r.Output, msg)
			}
			msg.Content = append(msg.Content, outputText{Type: "output_text", Text: p.Text, Annotations: []any{}})
		case wire.PartToolCall:
			msg = nil
			r.Output = append(r.Output, &functionCallOut{ID: itemID("fc", id, len(r.Output)), Type: "function_call",
				Status: "completed", CallID: p.ToolCall.ID, Name: p.ToolCall.Name, Arguments: p.ToolCall.Arguments})
		case wire.PartReasoning:
			msg = nil
			r.Output = append(r.Output, &reasoningOut{ID: itemID("rs", id, len(r.Output)), Type: "reasoning",
				Summary: []summaryPart{{Type: "summary_text", Text: p.Text}}})
		}
	}
	r.finishWith(resp.Finish, "the upstream model failed")
	if resp.HasUsage {
		r.Usage = usageOf(resp.Usage)
	}
	return marshal(r)
}
