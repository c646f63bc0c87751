package wire

// Abilities for pass-through. When the client's format is the upstream's,
// the gateway relays bytes and decodes nothing, but it still meters usage,
// counts the generated text it delivered, renames the model, renders its
// own errors and model lists, and ends a stream itself when an upstream
// ignores the output cap. What each of those means in a format is said by
// that format's adapter, through the optional abilities below, so that the
// gateway holds no vendor knowledge of its own.
//
// Metering is described as data (MeterLayout) rather than a method: the
// gateway's meter reads a layout with one gjson pass per stream unit, so
// asking the adapter costs nothing on the hot path and the adapter
// packages need no parser of their own for it.

// Counter is one raw usage counter a meter keeps for a response. Each
// keeps the last value seen (streams repeat cumulative counts).
type Counter uint8

// The counters.
const (
	CounterPrompt Counter = iota
	CounterCompletion
	CounterCached
	CounterCacheWrite
	CounterReasoning
	// CounterUncachedInput is an input count that excludes cache reads
	// and writes (Anthropic's input_tokens); see PromptExcludesCache.
	CounterUncachedInput
	// NumCounters sizes a meter's arrays.
	NumCounters
)

// UsageField maps a key of a usage object to a counter, or (Sub) to the
// fields of the object under the key.
type UsageField struct {
	Key     string
	Counter Counter
	// IfUnset reads the key only while Counter has no value yet: a
	// fallback (embeddings' total_tokens when prompt_tokens is absent).
	IfUnset bool
	Sub     []UsageField
}

// Rule names the gjson paths of documents whose "type" member is Type
// ("" matches a document without one).
type Rule struct {
	Type  string
	Paths []string
}

// Paths says where documents hold something. Without ByType every
// document uses Default; with it, a document uses the rule for its
// "type", else Default (nil: nothing).
type Paths struct {
	ByType  bool
	Rules   []Rule
	Default []string
}

// For returns the paths of a document whose "type" is typ.
func (p *Paths) For(typ string) []string {
	for i := range p.Rules {
		if p.Rules[i].Type == typ {
			return p.Rules[i].Paths
		}
	}
	return p.Default
}

// MeterLayout is where an endpoint's answers and stream units hold usage,
// generated text and the model name.
type MeterLayout struct {
	// BodyUsage is the path of the usage object in a complete answer.
	BodyUsage string
	// StreamUsage is the path of the usage object in a stream unit (the
	// first path of the unit's rule).
	StreamUsage Paths
	// Usage maps the keys of a usage object to counters.
	Usage []UsageField
	// PromptExcludesCache: the prompt is CounterUncachedInput plus the
	// cache reads and writes (the normalized prompt includes them).
	PromptExcludesCache bool
	// CompletionExcludesReasoning: the completion count excludes the
	// reasoning tokens (Gemini's candidatesTokenCount), which are added.
	CompletionExcludesReasoning bool
	// Text are the paths of generated text (content, reasoning, tool-call
	// arguments) in an answer or a stream unit: strings are taken as they
	// are, objects and arrays as their JSON; an array of results is taken
	// element by element.
	Text Paths
	// BodyModel is the path of the model name in a complete answer and
	// StreamModel in a stream unit; with BodyModel "" the format's answers
	// name no model the gateway renames (Gemini's modelVersion is the
	// upstream's own version string).
	BodyModel   string
	StreamModel Paths
}

// Metered is the ability to describe an endpoint's answers to a meter.
type Metered interface {
	MeterLayout() *MeterLayout
}

// StreamErrorWriter frames an error body (RenderError's) as the unit that
// ends a client stream whose upstream failed after bytes were sent, in the
// format's stream framing: after it the stream is over.
type StreamErrorWriter interface {
	AppendStreamError(dst, body []byte) []byte
}

// ModelLister renders model names as the format's model list answer.
type ModelLister interface {
	EncodeModelList(names []string) []byte
}

// CutState is what the gateway remembers of a relayed stream so that,
// when it cuts the stream at the output allowance, the format's adapter
// can end it the way the upstream itself would have. The caller owns it
// (zero value to start) and hands it back on every call; what each field
// means is the adapter's.
type CutState struct {
	Seen    bool // the first unit was observed
	ID      string
	Model   string
	Created int64
	// Object is a copy of an object the ending repeats (Responses: the
	// response of response.created).
	Object []byte
	// Seq is the last sequence number delivered.
	Seq int64
	// Open is the index of a block still open, -1 none.
	Open int64
}

// CutEnd is what the ending of a cut stream carries.
type CutEnd struct {
	// Usage is what is billed for the stream.
	Usage Usage
	// Model is the model name the client knows (already renamed).
	Model string
	// IncludeUsage: the client asked for a usage unit (OpenAI).
	IncludeUsage bool
	// Array: the stream is a streamed JSON array; First: nothing of it
	// was sent yet.
	Array, First bool
}

// StreamCutter is the ability to end a relayed stream as if the model had
// reached its output cap (finish "length", stop_reason "max_tokens", …),
// so SDKs finish normally. ObserveCut returns st updated with what the
// ending needs from a delivered unit's data; it is called for every unit,
// so it parses only what it must. AppendCut appends the ending. The state
// goes by value so that the caller's stream state never escapes through
// the interface (no allocation per stream).
type StreamCutter interface {
	ObserveCut(st CutState, data []byte) CutState
	AppendCut(dst []byte, st CutState, end CutEnd) []byte
}

// AddCounts adds two non-negative token counts, saturating instead of
// wrapping (a broken upstream may report anything).
func AddCounts(a, b int64) int64 {
	if s := a + b; s >= a {
		return s
	}
	return 1<<63 - 1
}

// HeaderDefaulter is the ability to name headers a relayed call must
// carry but a client may send itself (Anthropic's anthropic-version): each
// goes upstream with the value here unless the client sent the header.
type HeaderDefaulter interface {
	DefaultHeaders() []Header
}
