package wire

// The adapter of a wire format implements some of the small interfaces
// below (Caddy's pattern: one-method interfaces, abilities found by type
// assertion). A format that cannot do something simply lacks the
// interface; the caller answers for it (for example a local token count
// where a target has no count-tokens call).

// Header is one HTTP header of an upstream request.
type Header struct{ Key, Value string }

// Upstream is the provider a request is written for.
type Upstream struct {
	// Type is the provider type (internalapi.TypeOpenAI, TypeAzureOpenAI,
	// TypeOpenAICompatible, TypeAnthropic, TypeGemini).
	Type string
	// BaseURL follows each vendor SDK's convention (DESIGN.md §9).
	BaseURL    string
	APIVersion string
	// Secret is the upstream credential.
	Secret string
	// Model is the upstream's name of the model (after model_mapping).
	Model string
}

// HTTPRequest is an upstream call as a writer builds it (always POST).
type HTTPRequest struct {
	URL     string
	Headers []Header
	Body    []byte
}

// RequestReader reads a client's body into req. The caller has set what
// the route decides (Op, and for Gemini Model and Stream from the path);
// the body was already checked by strictjson, so a reader may assume one
// JSON object without duplicate keys.
type RequestReader interface {
	ReadRequest(body []byte, req *Request) error
}

// RequestWriter writes req as an upstream call to u: URL, credential
// headers and body. A field the format cannot express is an *Unsupported
// error.
type RequestWriter interface {
	WriteRequest(req *Request, u Upstream) (*HTTPRequest, error)
}

// ResponseDecoder decodes a complete upstream answer (2xx body).
type ResponseDecoder interface {
	DecodeResponse(body []byte) (*Response, error)
}

// ResponseEncoder encodes a complete answer for the client; req is the
// client's own request (its model name, its op).
type ResponseEncoder interface {
	EncodeResponse(resp *Response, req *Request) ([]byte, error)
}

// StreamDecoder makes a decoder for one upstream stream.
type StreamDecoder interface {
	NewStreamDecoder() EventDecoder
}

// EventDecoder turns the data of one upstream stream unit (an SSE event's
// data, or one element of a streamed JSON array) into canonical events.
// It keeps state across units (tool call indexes, content blocks).
type EventDecoder interface {
	Decode(data []byte, emit func(Event)) error
}

// StreamEncoder makes an encoder for one client stream.
type StreamEncoder interface {
	NewStreamEncoder(req *Request) EventEncoder
}

// EventEncoder writes canonical events as the client's stream units
// (complete SSE events, or array elements), appending to dst. End appends
// what closes a stream that ended normally ([DONE], message_stop, the
// closing "]").
type EventEncoder interface {
	Encode(dst []byte, ev Event) []byte
	End(dst []byte) []byte
}

// UsageReader reads the usage of a complete answer or of one stream
// unit's data; ok is false when it holds none.
type UsageReader interface {
	ReadUsage(data []byte) (u Usage, ok bool)
}

// ErrorRenderer renders an error body in the format's own shape, carrying
// the stable reason.
type ErrorRenderer interface {
	RenderError(status int, reason, message string) []byte
}

// ErrorDecoder reads an upstream error body into a status-independent
// message, so a translated error can be rendered in the client's format.
type ErrorDecoder interface {
	DecodeError(body []byte) (message string)
}
