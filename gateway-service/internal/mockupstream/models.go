package mockupstream

import "github.com/lurus-switch/lurus-switch/gateway-service/internal/jsonstr"

// Model listings. Every operation accepts any model name; these lists only
// give GET /v1/models and GET /v1beta/models something real-looking to
// return. They are rendered once, at start-up.

// The model ids each listing returns; changing them after start-up has no
// effect.
var (
	// OpenAIModels is what GET /v1/models returns in OpenAI form.
	OpenAIModels = []string{"gpt-4o", "gpt-4o-mini", "o4-mini", "text-embedding-3-small", "mock-model"}
	// AnthropicModels is what GET /v1/models returns to an Anthropic client
	// (one that sends anthropic-version or x-api-key).
	AnthropicModels = []string{"claude-sonnet-4-5", "claude-haiku-4-5", "claude-opus-4-1"}
	// GeminiModels is what GET /v1beta/models returns.
	GeminiModels = []string{"gemini-2.5-flash", "gemini-2.5-pro", "text-embedding-004"}
)

// modelCreatedRFC is the fixed creation time the listings report
// (Unix 1700000000).
const modelCreatedRFC = "2023-11-14T22:13:20Z"

var (
	openAIModelList    = renderModelList(formatOpenAI, OpenAIModels)
	anthropicModelList = renderModelList(formatAnthropic, AnthropicModels)
	geminiModelList    = renderModelList(formatGemini, GeminiModels)
)

func renderModelList(f apiFormat, ids []string) []byte {
	var b []byte
	switch f {
	case formatAnthropic:
		b = append(b, `{"data":[`...)
	case formatGemini:
		b = append(b, `{"models":[`...)
	default:
		b = append(b, `{"object":"list","data":[`...)
	}
	for i, id := range ids {
		if i > 0 {
			b = append(b, ',')
		}
		b = appendModel(b, f, id)
	}
	if f == formatAnthropic {
		b = append(b, `],"has_more":false,"first_id":`...)
		b = jsonstr.Append(b, ids[0])
		b = append(b, `,"last_id":`...)
		b = jsonstr.Append(b, ids[len(ids)-1])
		return append(b, '}')
	}
	return append(b, `]}`...)
}

// modelObject renders one model, for GET /v1/models/{id} and
// GET /v1beta/models/{model}.
func modelObject(f apiFormat, id string) []byte { return appendModel(nil, f, id) }

func appendModel(b []byte, f apiFormat, id string) []byte {
	switch f {
	case formatAnthropic:
		b = append(b, `{"type":"model","id":`...)
		b = jsonstr.Append(b, id)
		b = append(b, `,"display_name":`...)
		b = jsonstr.Append(b, id)
		return append(b, `,"created_at":"`+modelCreatedRFC+`"}`...)
	case formatGemini:
		b = append(b, `{"name":`...)
		b = jsonstr.Append(b, "models/"+id)
		b = append(b, `,"version":"001","displayName":`...)
		b = jsonstr.Append(b, id)
		return append(b, `,"inputTokenLimit":1048576,"outputTokenLimit":65536,"supportedGenerationMethods":["generateContent","countTokens","embedContent","batchEmbedContents"]}`...)
	}
	b = append(b, `{"id":`...)
	b = jsonstr.Append(b, id)
	return append(b, `,"object":"model","created":1700000000,"owned_by":"mock-upstream"}`...)
}
