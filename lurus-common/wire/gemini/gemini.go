// Package gemini is the wire adapter of Google's Gemini API
// (generateContent, streamGenerateContent, countTokens, embedContent and
// batchEmbedContents) for the provider type internalapi.TypeGemini.
//
// What maps, what is refused and what is dropped:
//
//   - systemInstruction ↔ Request.System; contents with role user/model ↔
//     user/assistant messages; functionResponse parts become tool messages.
//   - Parts: text; thought text ↔ reasoning; inlineData ↔ base64 images;
//     fileData with an http(s) URI ↔ image URLs. The writer emits fileData
//     only for Gemini Files API URIs, since Gemini fetches no other URL in
//     practice: any other image URL is refused as "image_url".
//   - functionCall carries no id in most answers: the reader and decoders
//     make one up ("call_<n>", n counting the calls of the conversation or
//     of the answer) and tool results are matched back by name, oldest
//     unanswered call first. functionResponse.response ↔ the result text:
//     {"output": text} and {"error": text} (IsError) are unwrapped; any
//     other object is the result text as JSON.
//   - tools[].functionDeclarations ↔ Tools, with the parameters translated
//     between JSON Schema and Gemini's OpenAPI-subset Schema (see schema.go);
//     toolConfig.functionCallingConfig mode AUTO/ANY/NONE (+ one allowed
//     name: named choice; several: the tool list narrowed to them).
//   - generationConfig temperature, topP, topK, stopSequences,
//     maxOutputTokens, candidateCount, responseMimeType application/json
//     (+ responseSchema or responseJsonSchema). snake_case spellings are
//     read everywhere, as Google's JSON parser accepts them.
//   - Refused (Request.Refused, so a translation fails naming them):
//     cachedContent, presencePenalty, frequencyPenalty, responseLogprobs,
//     logprobs, responseModalities other than TEXT, speechConfig, built-in
//     tools (googleSearch, codeExecution, urlContext, …), non-image inline
//     or file data, and any field this reader does not know.
//   - Dropped as hints: safetySettings (Google's own filters, meaningless
//     elsewhere), seed, labels, thinkingConfig (the canonical form has no
//     reasoning budget), mediaResolution, thoughtSignature, embedding
//     taskType and title, function declaration response schemas.
//   - Writing for Gemini: ParallelToolCalls is dropped (Gemini has no such
//     switch), ResponseFormat.Name and Strict are dropped (Gemini always
//     constrains to the schema), Image.Detail is dropped. The first
//     function call of each model turn carries Google's documented
//     "skip_thought_signature_validator" signature, since a history from
//     another vendor has none and Gemini 3 refuses unsigned calls.
//   - Only the first candidate of an answer or stream is decoded: the
//     canonical answer has one (candidateCount > 1 is still sent).
//
// Usage: promptTokenCount includes cachedContentTokenCount;
// candidatesTokenCount excludes thoughtsTokenCount, so the canonical
// Completion is their sum and Reasoning the thoughts; Gemini has no
// cache-write count. toolUsePromptTokenCount (input of built-in tools,
// outside promptTokenCount) is added to Prompt.
package gemini

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"

	"github.com/lurus-switch/lurus-switch/lurus-common/apperr"
	"github.com/lurus-switch/lurus-switch/lurus-common/wire"
)

// Adapter is the Gemini wire adapter. Its zero value serves upstream
// calls (writing requests, decoding answers and streams). As the client's
// adapter the gateway sets the fields from the client's path.
type Adapter struct {
	// Array makes client streams a streamed JSON array ("[{…},\r\n{…}]",
	// streamGenerateContent without alt=sse) instead of SSE events.
	Array bool
	// Batch says the client called batchEmbedContents, so an embedding
	// answer is {"embeddings":[…]} rather than embedContent's
	// {"embedding":{…}}; the canonical request does not record which.
	Batch bool
}

// target names the format in *wire.Unsupported errors.
const target = "Gemini"

// defaultAPIVersion is the path version when the provider sets none.
const defaultAPIVersion = "v1beta"

// The path actions of the Gemini API.
const (
	actionGenerate   = "generateContent"
	actionStream     = "streamGenerateContent"
	actionCount      = "countTokens"
	actionBatchEmbed = "batchEmbedContents"
)

// object is a JSON object read key by key. Keys match exactly (the
// case-folding of encoding/json would take "Text" for "text", Google would
// not), and each field is accepted in camelCase or snake_case. Fields are
// taken out as they are read, so what remains is what nobody understood.
type object map[string]json.RawMessage

// parseObject reads raw as a JSON object; what names it in errors.
func parseObject(raw []byte, what string) (object, error) {
	var o object
	if err := json.Unmarshal(raw, &o); err != nil || o == nil {
		return nil, apperr.Newf(apperr.ReasonInvalidArgument, "%s must be a JSON object", what)
	}
	return o, nil
}

// take removes and returns field camel, spelled in camelCase or
// snake_case; nil when absent or null. Both spellings at once are a
// duplicate key, as the gateway's strict reading says for generationConfig.
func (o object) take(camel string) (json.RawMessage, error) {
	snake := snakeCase(camel)
	v, okC := o[camel]
	w, okS := o[snake]
	if okC && okS && snake != camel {
		return nil, apperr.Newf(apperr.ReasonDuplicateKey, "request body has both %s and %s", camel, snake)
	}
	if okS {
		v = w
	}
	delete(o, camel)
	delete(o, snake)
	if isNull(v) {
		return nil, nil
	}
	return v, nil
}

// takeObject is take for a field that must be an object.
func (o object) takeObject(camel string) (object, error) {
	v, err := o.take(camel)
	if v == nil || err != nil {
		return nil, err
	}
	return parseObject(v, camel)
}

// takeArray is take for a field that must be an array.
func (o object) takeArray(camel string) ([]json.RawMessage, error) {
	v, err := o.take(camel)
	if v == nil || err != nil {
		return nil, err
	}
	var a []json.RawMessage
	if err := json.Unmarshal(v, &a); err != nil {
		return nil, apperr.Newf(apperr.ReasonInvalidArgument, "%s must be an array", camel)
	}
	return a, nil
}

// takeInto is take followed by decoding into dst.
func (o object) takeInto(camel string, dst any) (bool, error) {
	v, err := o.take(camel)
	if v == nil || err != nil {
		return false, err
	}
	if err := json.Unmarshal(v, dst); err != nil {
		return false, apperr.Newf(apperr.ReasonInvalidArgument, "%s has the wrong type", camel)
	}
	return true, nil
}

// drop removes hint fields.
func (o object) drop(camels ...string) {
	for _, c := range camels {
		delete(o, c)
		delete(o, snakeCase(c))
	}
}

// refuseRest appends the fields nobody read to refused, prefixed, in key
// order so the first refused field is stable.
func (o object) refuseRest(refused []string, prefix string) []string {
	start := len(refused)
	for k := range o {
		refused = append(refused, prefix+k)
	}
	slices.Sort(refused[start:])
	return refused
}

// snakeCase spells a camelCase field name in snake_case.
func snakeCase(camel string) string {
	var b strings.Builder
	for i := 0; i < len(camel); i++ {
		c := camel[i]
		if 'A' <= c && c <= 'Z' {
			b.WriteByte('_')
			c += 'a' - 'A'
		}
		b.WriteByte(c)
	}
	return b.String()
}

func isNull(v json.RawMessage) bool {
	return len(v) == 0 || string(bytes.TrimSpace(v)) == "null"
}

// marshal encodes v without HTML escaping: a client's "<" stays "<".
func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimRight(buf.Bytes(), "\n"), nil
}

// The abilities of the adapter.
var (
	_ wire.RequestReader     = Adapter{}
	_ wire.RequestWriter     = Adapter{}
	_ wire.Locator           = Adapter{}
	_ wire.ResponseDecoder   = Adapter{}
	_ wire.ResponseEncoder   = Adapter{}
	_ wire.StreamDecoder     = Adapter{}
	_ wire.StreamEncoder     = Adapter{}
	_ wire.UsageReader       = Adapter{}
	_ wire.ErrorRenderer     = Adapter{}
	_ wire.ErrorDecoder      = Adapter{}
	_ wire.Metered           = Adapter{}
	_ wire.StreamCutter      = Adapter{}
	_ wire.StreamErrorWriter = Adapter{}
	_ wire.ModelLister       = Adapter{}
)
