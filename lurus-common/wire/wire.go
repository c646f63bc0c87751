// Package wire is the canonical form of an LLM API call, the meeting point
// of the wire-format adapters (openaichat, openairesponses, openaiembed,
// anthropic, gemini under this directory). A client request is read by the
// adapter of the client's format into a Request; the adapter of the
// upstream's format writes it for the provider; the upstream's answer or
// stream is decoded into a Response or Events and encoded again by the
// client's adapter. When both formats are the same nothing goes through
// here: the gateway relays bytes (pass-through).
//
// The canonical form holds what every format can say and nothing a single
// vendor alone means. A field a target cannot express is refused by the
// writer with an *Unsupported error naming it, unless it is a mere hint
// (user, seed, service_tier, …), which is dropped. Token counts follow
// events.Usage: Prompt includes cached and cache-write tokens, Completion
// includes reasoning tokens, so a count is never summed twice.
package wire

import "encoding/json"

// Op is the operation a request asks for.
type Op uint8

// The operations.
const (
	// OpGenerate produces output: chat completions, Responses, Anthropic
	// Messages, Gemini generateContent and streamGenerateContent.
	OpGenerate Op = iota
	// OpEmbed turns input into vectors.
	OpEmbed
	// OpCountTokens counts the input tokens of a generate request.
	OpCountTokens
)

// Role is who speaks a message.
type Role string

// The roles. System prompts are not messages: see Request.System.
const (
	RoleUser      Role = "user"
	RoleAssistant Role = "assistant"
	// RoleTool carries tool results back to the model.
	RoleTool Role = "tool"
)

// PartKind says which field of a Part is set.
type PartKind uint8

// The part kinds.
const (
	PartText PartKind = iota
	PartImage
	PartToolCall
	PartToolResult
	// PartReasoning is model-visible thinking (Anthropic thinking, OpenAI
	// reasoning_content); writers of formats without it drop it from
	// history, since it is never required to continue a conversation.
	PartReasoning
)

// Part is one piece of a message.
type Part struct {
	Kind PartKind
	// Text is the text of PartText and PartReasoning.
	Text string
	// Image is set for PartImage.
	Image *Image
	// ToolCall is set for PartToolCall (assistant messages).
	ToolCall *ToolCall
	// ToolResult is set for PartToolResult (tool messages).
	ToolResult *ToolResult
}

// Image is an image input: inline data or a URL. The gateway never fetches
// a URL; a writer whose format cannot take URLs refuses it.
type Image struct {
	// MediaType is e.g. "image/png" (required with Data).
	MediaType string
	// Data is the base64 text of the image, as the client sent it.
	Data string
	// URL is an http(s) URL (Data empty).
	URL string
	// Detail is OpenAI's detail hint ("", "low", "high", "auto").
	Detail string
}

// ToolCall is a call the model made.
type ToolCall struct {
	// ID links the call to its result. Formats without ids (Gemini) get
	// one made up by the decoder, stable within a conversation.
	ID   string
	Name string
	// Arguments is the JSON object of arguments, as text.
	Arguments string
}

// ToolResult answers a ToolCall.
type ToolResult struct {
	CallID string
	// Name is the tool's name (Gemini needs it; readers of formats that
	// lack it look it up from the call in the history).
	Name string
	// Content is the result: text parts (and images where the format
	// allows).
	Content []Part
	IsError bool
}

// Message is one turn of the conversation.
type Message struct {
	Role  Role
	Parts []Part
}

// Tool is a function the model may call.
type Tool struct {
	Name        string
	Description string
	// Parameters is the JSON Schema of the arguments (nil: none).
	Parameters json.RawMessage
}

// ToolChoiceMode says whether and how the model must call tools.
type ToolChoiceMode uint8

// The tool choice modes.
const (
	ToolChoiceAuto ToolChoiceMode = iota // the default
	ToolChoiceNone
	ToolChoiceRequired // any tool
	ToolChoiceNamed    // the tool Name
)

// ToolChoice is the client's tool choice.
type ToolChoice struct {
	Mode ToolChoiceMode
	Name string
}

// FormatKind is the kind of output format asked for.
type FormatKind uint8

// The output formats.
const (
	FormatText FormatKind = iota
	// FormatJSON is "any JSON object" (OpenAI json_object, Gemini
	// responseMimeType application/json).
	FormatJSON
	// FormatJSONSchema is JSON following Schema.
	FormatJSONSchema
)

// ResponseFormat is the output format asked for.
type ResponseFormat struct {
	Kind   FormatKind
	Name   string
	Schema json.RawMessage
	Strict bool
}

// Request is a canonical request.
type Request struct {
	Op    Op
	Model string
	// System is the system prompt (text parts), outside the messages.
	System   []Part
	Messages []Message
	Tools    []Tool
	// ToolChoice applies when Tools is not empty.
	ToolChoice ToolChoice
	// ParallelToolCalls is nil when the client left it to the default.
	ParallelToolCalls *bool
	ResponseFormat    ResponseFormat
	Temperature       *float64
	TopP              *float64
	// TopK is Anthropic's and Gemini's top_k (OpenAI cannot say it).
	TopK *int64
	Stop []string
	// MaxOutputTokens is the output cap: the value the gateway priced and
	// that every writer puts into the field its format honours. 0: none.
	MaxOutputTokens int64
	// Candidates is OpenAI n / Gemini candidateCount (0 or 1: one).
	Candidates int
	Stream     bool
	// IncludeUsage is OpenAI's stream_options.include_usage as the client
	// sent it (the client's encoder shows the usage chunk only then).
	IncludeUsage bool
	// Input is the text of an embedding request.
	Input []string
	// Dimensions is the embedding size asked for (0: the model's).
	Dimensions int64
	// EmbedBase64 is OpenAI's encoding_format "base64" (the default of the
	// official Python SDK): the client's encoder writes each vector as the
	// base64 of its little-endian float32 values instead of a JSON array.
	EmbedBase64 bool
	// Refused lists fields the reader found that no other format can
	// express with the same meaning (e.g. logprobs); a writer of another
	// format refuses the request naming the first of them.
	Refused []string
}

// FinishReason is why the model stopped.
type FinishReason string

// The finish reasons.
const (
	FinishStop          FinishReason = "stop"
	FinishLength        FinishReason = "length"
	FinishToolCalls     FinishReason = "tool_calls"
	FinishContentFilter FinishReason = "content_filter"
	FinishError         FinishReason = "error"
)

// Usage is the token count of one answer, normalized as events.Usage
// (Prompt includes Cached and CacheWrite; Completion includes Reasoning).
type Usage struct {
	Prompt, Completion, Cached, CacheWrite, Reasoning int64
}

// Response is a complete (non-streamed) answer.
type Response struct {
	ID    string
	Model string
	// Parts are the output: text, reasoning and tool calls, in order.
	Parts  []Part
	Finish FinishReason
	Usage  Usage
	// HasUsage is false when upstream gave no usage.
	HasUsage bool
	// Embeddings are the vectors of an embedding answer, in input order.
	Embeddings [][]float64
	// InputTokens is the answer of a count-tokens call.
	InputTokens int64
}

// EventKind says which fields of an Event are set.
type EventKind uint8

// The stream event kinds. A stream is Start, then any number of deltas,
// then Finish, with Usage anywhere (the last one wins); Error ends a
// stream abnormally.
const (
	EventStart EventKind = iota
	EventText
	EventReasoning
	// EventToolCall starts tool call Index (ID and Name set).
	EventToolCall
	// EventToolArgs appends Text to the arguments of tool call Index.
	EventToolArgs
	EventFinish
	EventUsage
	EventError
)

// Event is one canonical stream event.
type Event struct {
	Kind EventKind
	// ID and Model are set on EventStart.
	ID, Model string
	// Index is the tool call's index (EventToolCall, EventToolArgs).
	Index int
	// Text is the delta of EventText, EventReasoning, EventToolArgs, or
	// the message of EventError.
	Text string
	// ToolCallID and ToolName are set on EventToolCall.
	ToolCallID, ToolName string
	Finish               FinishReason
	Usage                Usage
}

// Unsupported is the error of a writer asked to express a field its
// format cannot: the gateway answers 400 UNSUPPORTED_PARAMETER naming
// Field in the caller's format.
type Unsupported struct {
	// Field is the client's name of the field (e.g. "logprobs").
	Field string
	// Target is the format that cannot express it.
	Target string
}

func (e *Unsupported) Error() string {
	return "parameter " + e.Field + " is not supported by " + e.Target + " models"
}
