package gemini

import "encoding/json"

// The JSON shapes the writer and the encoders produce and the decoders
// read. Decoding an upstream answer with them is fine (encoding/json's
// leniency does no harm there); client bodies are read with object.

type gContent struct {
	Parts []gPart `json:"parts"`
	Role  string  `json:"role,omitempty"`
}

type gPart struct {
	// Text is a pointer so that the empty text of a last stream chunk is
	// written, as Gemini does.
	Text             *string    `json:"text,omitempty"`
	Thought          bool       `json:"thought,omitempty"`
	InlineData       *gBlob     `json:"inlineData,omitempty"`
	FileData         *gFile     `json:"fileData,omitempty"`
	FunctionCall     *gCall     `json:"functionCall,omitempty"`
	FunctionResponse *gFuncResp `json:"functionResponse,omitempty"`
	ThoughtSignature string     `json:"thoughtSignature,omitempty"`
}

type gBlob struct {
	MimeType string `json:"mimeType"`
	Data     string `json:"data"`
}

type gFile struct {
	MimeType string `json:"mimeType,omitempty"`
	FileURI  string `json:"fileUri"`
}

type gCall struct {
	ID   string          `json:"id,omitempty"`
	Name string          `json:"name"`
	Args json.RawMessage `json:"args,omitempty"`
}

type gFuncResp struct {
	Name     string          `json:"name"`
	Response json.RawMessage `json:"response"`
}

type gTool struct {
	FunctionDeclarations []gFunc `json:"functionDeclarations"`
}

type gFunc struct {
	Name        string          `json:"name"`
	Description string          `json:"description,omitempty"`
	Parameters  json.RawMessage `json:"parameters,omitempty"`
}

type gToolConfig struct {
	FunctionCallingConfig gCallingConfig `json:"functionCallingConfig"`
}

type gCallingConfig struct {
	Mode                 string   `json:"mode"`
	AllowedFunctionNames []string `json:"allowedFunctionNames,omitempty"`
}

type gGenConfig struct {
	StopSequences    []string        `json:"stopSequences,omitempty"`
	ResponseMimeType string          `json:"responseMimeType,omitempty"`
	ResponseSchema   json.RawMessage `json:"responseSchema,omitempty"`
	CandidateCount   int             `json:"candidateCount,omitempty"`
	MaxOutputTokens  int64           `json:"maxOutputTokens,omitempty"`
	Temperature      *float64        `json:"temperature,omitempty"`
	TopP             *float64        `json:"topP,omitempty"`
	TopK             *int64          `json:"topK,omitempty"`
}

type gGenerateRequest struct {
	// Model is set only inside countTokens' generateContentRequest.
	Model             string       `json:"model,omitempty"`
	Contents          []gContent   `json:"contents"`
	SystemInstruction *gContent    `json:"systemInstruction,omitempty"`
	Tools             []gTool      `json:"tools,omitempty"`
	ToolConfig        *gToolConfig `json:"toolConfig,omitempty"`
	GenerationConfig  *gGenConfig  `json:"generationConfig,omitempty"`
}

type gCountRequest struct {
	Contents               []gContent        `json:"contents,omitempty"`
	GenerateContentRequest *gGenerateRequest `json:"generateContentRequest,omitempty"`
}

type gEmbedRequest struct {
	Model                string   `json:"model"`
	Content              gContent `json:"content"`
	OutputDimensionality int64    `json:"outputDimensionality,omitempty"`
}

type gBatchEmbedRequest struct {
	Requests []gEmbedRequest `json:"requests"`
}

type gResponse struct {
	Candidates     []gCandidate     `json:"candidates"`
	PromptFeedback *gPromptFeedback `json:"promptFeedback,omitempty"`
	UsageMetadata  *gUsage          `json:"usageMetadata,omitempty"`
	ModelVersion   string           `json:"modelVersion,omitempty"`
	ResponseID     string           `json:"responseId,omitempty"`
}

type gPromptFeedback struct {
	BlockReason string `json:"blockReason,omitempty"`
}

type gCandidate struct {
	Content      *gContent `json:"content,omitempty"`
	FinishReason string    `json:"finishReason,omitempty"`
	Index        int       `json:"index"`
}

// gUsage is usageMetadata. Proto3 JSON leaves zero counts out except the
// prompt's and the total.
type gUsage struct {
	PromptTokenCount        int64 `json:"promptTokenCount"`
	CandidatesTokenCount    int64 `json:"candidatesTokenCount,omitempty"`
	TotalTokenCount         int64 `json:"totalTokenCount"`
	CachedContentTokenCount int64 `json:"cachedContentTokenCount,omitempty"`
	ToolUsePromptTokenCount int64 `json:"toolUsePromptTokenCount,omitempty"`
	ThoughtsTokenCount      int64 `json:"thoughtsTokenCount,omitempty"`
}

type gValues struct {
	Values []float64 `json:"values"`
}

// gEmbedResponse is both embedding answers (one field set).
type gEmbedResponse struct {
	Embedding  *gValues  `json:"embedding,omitempty"`
	Embeddings []gValues `json:"embeddings,omitempty"`
}

type gCountResponse struct {
	TotalTokens int64 `json:"totalTokens"`
}
