package mockupstream

import (
	"encoding/base64"
	"encoding/binary"
	"math"
	"strconv"

	"github.com/lurus-switch/lurus-switch/gateway-service/internal/jsonstr"
)

// ChunkText returns the text of reply chunk i (counting from 0): "tok<i> ",
// e.g. "tok0 ", "tok1 ". A reply of n chunks is ChunkText(0)+…+ChunkText(n-1),
// so a test can tell a lost, repeated or merged chunk from the text alone.
func ChunkText(i int) string { return string(appendChunkText(nil, i)) }

// ReplyText returns the whole reply text of n chunks.
func ReplyText(n int) string { return string(appendReplyText(nil, n)) }

// ToolArguments returns the JSON arguments of the tool call made by a reply
// of n chunks: {"input":"tok0 tok1 … "}. It is streamed as n pieces, piece i
// being ToolArgumentPiece(i, n).
func ToolArguments(n int) string {
	var b []byte
	for i := range max(n, 1) {
		b = appendToolArgPiece(b, i, n)
	}
	return string(b)
}

// ToolArgumentPiece returns piece i of the n streamed pieces of ToolArguments(n):
// piece 0 opens the object, the last piece closes it, each carries ChunkText(i).
func ToolArgumentPiece(i, n int) string { return string(appendToolArgPiece(nil, i, n)) }

func appendChunkText(b []byte, i int) []byte {
	b = append(b, "tok"...)
	b = strconv.AppendInt(b, int64(i), 10)
	return append(b, ' ')
}

func appendReplyText(b []byte, n int) []byte {
	for i := range n {
		b = appendChunkText(b, i)
	}
	return b
}

// appendToolArgPiece appends piece i of n. With n == 0 there is one piece,
// the whole empty call {"input":""}.
func appendToolArgPiece(b []byte, i, n int) []byte {
	if i == 0 {
		b = append(b, `{"input":"`...)
	}
	if n > 0 {
		b = appendChunkText(b, i)
	}
	if i >= n-1 {
		b = append(b, `"}`...)
	}
	return b
}

// FixedToolArguments are the arguments of a tool call forced with
// X-Mock-Tool-Call (Settings.ToolCall), whatever the request and the chunk
// count. Streamed, they are split into FixedToolArgumentPieces(n).
const FixedToolArguments = `{"city":"Paris","unit":"celsius"}`

// FixedToolArgumentPieces returns the pieces a forced tool call of n chunks
// streams its arguments in: min(max(n,1), len(FixedToolArguments)) slices
// of about equal length, piece i being FixedToolArguments[i*L/p:(i+1)*L/p].
// Their concatenation is FixedToolArguments; none is empty.
func FixedToolArgumentPieces(n int) []string {
	p := toolArgs{fixed: true, n: n}.pieces()
	out := make([]string, p)
	for i := range p {
		lo, hi := fixedPiece(i, p)
		out[i] = FixedToolArguments[lo:hi]
	}
	return out
}

func fixedPiece(i, pieces int) (lo, hi int) {
	l := len(FixedToolArguments)
	return i * l / pieces, (i + 1) * l / pieces
}

// toolArgs renders the arguments of a reply's tool call: FixedToolArguments
// when the call was forced, else ToolArguments(n).
type toolArgs struct {
	fixed bool
	n     int // chunks
}

// pieces is the number of pieces the arguments are streamed in.
func (a toolArgs) pieces() int {
	if a.fixed {
		return min(max(a.n, 1), len(FixedToolArguments))
	}
	return max(a.n, 1)
}

// appendObject appends the arguments as a JSON object (Anthropic input,
// Gemini args).
func (a toolArgs) appendObject(b []byte) []byte {
	if a.fixed {
		return append(b, FixedToolArguments...)
	}
	for i := range a.pieces() {
		b = appendToolArgPiece(b, i, a.n)
	}
	return b
}

// appendQuoted appends the arguments as a JSON string (OpenAI arguments).
func (a toolArgs) appendQuoted(b []byte) []byte {
	if a.fixed {
		return jsonstr.Append(b, FixedToolArguments)
	}
	b = append(b, `"{\"input\":\"`...)
	b = appendReplyText(b, a.n)
	return append(b, `\"}"`...)
}

// appendQuotedPiece appends streamed piece i as a JSON string (OpenAI
// arguments deltas, Anthropic partial_json).
func (a toolArgs) appendQuotedPiece(b []byte, i int) []byte {
	if a.fixed {
		lo, hi := fixedPiece(i, a.pieces())
		return jsonstr.Append(b, FixedToolArguments[lo:hi])
	}
	// The pieces are ASCII, so only the quotes need escaping.
	b = append(b, '"')
	if i == 0 {
		b = append(b, `{\"input\":\"`...)
	}
	if a.n > 0 {
		b = appendChunkText(b, i)
	}
	if i >= a.n-1 {
		b = append(b, `\"}`...)
	}
	return append(b, '"')
}

// Embedding dimensions: DefaultEmbeddingDims unless the request asks for
// another size (OpenAI "dimensions", Gemini "outputDimensionality").
const (
	DefaultEmbeddingDims = 8
	maxEmbeddingDims     = 8192
)

// EmbeddingValue is element k of the embedding of input j: j + (k+1)/8.
// The values are exact in float32, so the base64 form decodes to the same
// numbers as the float form.
func EmbeddingValue(j, k int) float64 { return float64(j) + float64(k+1)*0.125 }

// appendEmbeddingFloats appends the JSON array of embedding j.
func appendEmbeddingFloats(b []byte, j, dims int) []byte {
	b = append(b, '[')
	for k := range dims {
		if k > 0 {
			b = append(b, ',')
		}
		b = strconv.AppendFloat(b, EmbeddingValue(j, k), 'g', -1, 32)
	}
	return append(b, ']')
}

// appendEmbeddingBase64 appends embedding j as a JSON string holding the
// base64 of its little-endian float32 values, as OpenAI sends it for
// encoding_format "base64".
func appendEmbeddingBase64(b []byte, j, dims int) []byte {
	raw := make([]byte, 4*dims)
	for k := range dims {
		binary.LittleEndian.PutUint32(raw[4*k:], math.Float32bits(float32(EmbeddingValue(j, k))))
	}
	b = append(b, '"')
	b = base64.StdEncoding.AppendEncode(b, raw)
	return append(b, '"')
}

// usage is the token accounting of one reply. Each format writes these
// numbers into its own fields as they are; see the package documentation
// for the mapping.
type usage struct {
	prompt, completion, cached, cacheWrite, reasoning int
}

// usageFor derives the usage of a reply: prompt from the request's words,
// completion from the chunk count, the rest 0, then the plan's overrides.
func (p *plan) usageFor(promptTokens, chunks int) usage {
	u := usage{prompt: promptTokens, completion: chunks}
	o := &p.usage
	if o.Prompt != nil {
		u.prompt = *o.Prompt
	}
	if o.Completion != nil {
		u.completion = *o.Completion
	}
	if o.Cached != nil {
		u.cached = *o.Cached
	}
	if o.CacheWrite != nil {
		u.cacheWrite = *o.CacheWrite
	}
	if o.Reasoning != nil {
		u.reasoning = *o.Reasoning
	}
	return u
}
