// Package openaiembed is the wire adapter of OpenAI embeddings
// (/v1/embeddings) for OpenAI, Azure OpenAI and OpenAI-compatible
// providers. Embeddings translate with Gemini's embedContent and
// batchEmbedContents; this package reads and writes OpenAI's side.
//
// What maps, what is refused and what is dropped:
//
//   - Read: model, input as a string or an array of strings, dimensions,
//     encoding_format (float, or base64: the answer is then encoded as
//     the base64 of little-endian float32 values, as OpenAI does and as
//     the official Python SDK asks by default).
//   - Refused (Request.Refused): input given as token ids (an array of
//     integers or of integer arrays) — token ids belong to one tokenizer
//     and mean nothing to another model; any field this package does not
//     know.
//   - Dropped as a hint: user.
package openaiembed

import (
	"bytes"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"math"
	"slices"

	"github.com/lurus-switch/lurus-switch/lurus-common/apperr"
	"github.com/lurus-switch/lurus-switch/lurus-common/wire"
	"github.com/lurus-switch/lurus-switch/lurus-common/wire/openaichat"
)

// Adapter implements the wire interfaces for OpenAI embeddings. The zero
// value is ready to use.
type Adapter struct{}

// RenderError renders an error as on every OpenAI route.
func (Adapter) RenderError(status int, reason, message string) []byte {
	return openaichat.Adapter{}.RenderError(status, reason, message)
}

// DecodeError reads the message of an upstream error body as on chat
// completions.
func (Adapter) DecodeError(body []byte) string { return openaichat.Adapter{}.DecodeError(body) }

var (
	_ wire.RequestReader   = Adapter{}
	_ wire.RequestWriter   = Adapter{}
	_ wire.ResponseDecoder = Adapter{}
	_ wire.ResponseEncoder = Adapter{}
	_ wire.UsageReader     = Adapter{}
	_ wire.ErrorRenderer   = Adapter{}
	_ wire.ErrorDecoder    = Adapter{}
	_ wire.Metered         = Adapter{}
)

// TokenInput is the Refused name of input given as token ids.
const TokenInput = "input (token arrays)"

// ErrNotEmbed is returned by WriteRequest for a request that is not an
// embedding call.
var ErrNotEmbed = errors.New("openaiembed: only embedding requests are written as embeddings")

func invalidf(format string, args ...any) error {
	return apperr.Newf(apperr.ReasonInvalidArgument, format, args...)
}

// ReadRequest reads an embeddings body into req (Op OpEmbed).
func (Adapter) ReadRequest(body []byte, req *wire.Request) error {
	var top map[string]json.RawMessage
	if err := json.Unmarshal(body, &top); err != nil || top == nil {
		return apperr.New(apperr.ReasonMalformedJSON, "request body must be a JSON object")
	}
	keys := make([]string, 0, len(top))
	for k := range top {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	refuse := func(f string) {
		if !slices.Contains(req.Refused, f) {
			req.Refused = append(req.Refused, f)
		}
	}
	for _, k := range keys {
		raw := top[k]
		if bytes.Equal(raw, []byte("null")) && k != "input" {
			continue
		}
		switch k {
		case "model":
			if json.Unmarshal(raw, &req.Model) != nil {
				return invalidf("model must be a string")
			}
		case "input":
			input, tokens, err := readInput(raw)
			if err != nil {
				return err
			}
			if tokens {
				refuse(TokenInput)
			}
			req.Input = input
		case "dimensions":
			if json.Unmarshal(raw, &req.Dimensions) != nil || req.Dimensions < 1 {
				return invalidf("dimensions must be a positive integer")
			}
		case "encoding_format":
			var f string
			_ = json.Unmarshal(raw, &f)
			switch f {
			case "float":
				req.EmbedBase64 = false
			case "base64":
				req.EmbedBase64 = true
			default:
				return invalidf("encoding_format must be float or base64")
			}
		case "user":
		default:
			refuse(k)
		}
	}
	if req.Model == "" {
		return apperr.New(apperr.ReasonMissingModel, "request has no model")
	}
	if len(req.Input) == 0 && !slices.Contains(req.Refused, TokenInput) {
		return invalidf("input must be a non-empty string or array of strings")
	}
	return nil
}

// readInput reads input: a string, an array of strings, or token ids
// (tokens true, no text).
func readInput(raw json.RawMessage) (input []string, tokens bool, err error) {
	var s string
	if json.Unmarshal(raw, &s) == nil {
		if s == "" {
			return nil, false, invalidf("input must not be empty")
		}
		return []string{s}, false, nil
	}
	var many []string
	if json.Unmarshal(raw, &many) == nil {
		for _, s := range many {
			if s == "" {
				return nil, false, invalidf("input must not hold empty strings")
			}
		}
		return many, false, nil
	}
	var ids []int64
	var idLists [][]int64
	if json.Unmarshal(raw, &ids) == nil || json.Unmarshal(raw, &idLists) == nil {
		return nil, true, nil
	}
	return nil, false, invalidf("input must be a string or an array of strings")
}

// embedRequest is the body WriteRequest builds.
type embedRequest struct {
	Model          string   `json:"model"`
	Input          []string `json:"input"`
	Dimensions     int64    `json:"dimensions,omitempty"`
	EncodingFormat string   `json:"encoding_format"`
}

// WriteRequest writes req as an embeddings call for an openai,
// openai-compatible or azure-openai provider, always asking for floats
// (the client's encoding is the encoder's business).
func (Adapter) WriteRequest(req *wire.Request, u wire.Upstream) (*wire.HTTPRequest, error) {
	if req.Op != wire.OpEmbed {
		return nil, ErrNotEmbed
	}
	loc, err := openaichat.Adapter{}.Locate(u, wire.Call{Path: "/embeddings"})
	if err != nil {
		return nil, err
	}
	if len(req.Refused) > 0 {
		return nil, &wire.Unsupported{Field: req.Refused[0], Target: openaichat.Target(u.Type)}
	}
	body, err := json.Marshal(embedRequest{Model: u.Model, Input: req.Input, Dimensions: req.Dimensions, EncodingFormat: "float"})
	if err != nil {
		return nil, err
	}
	return &wire.HTTPRequest{URL: loc.URL, Body: body, Headers: []wire.Header{
		loc.Auth, {Key: "Content-Type", Value: "application/json"}}}, nil
}

// embedResponse is OpenAI's embeddings answer.
type embedResponse struct {
	Object string      `json:"object"`
	Data   []embedding `json:"data"`
	Model  string      `json:"model"`
	Usage  *usage      `json:"usage,omitempty"`
}

type embedding struct {
	Object string `json:"object"`
	Index  int    `json:"index"`
	// Embedding is a JSON array of numbers, or a base64 string.
	Embedding json.RawMessage `json:"embedding"`
}

type usage struct {
	PromptTokens int64 `json:"prompt_tokens"`
	TotalTokens  int64 `json:"total_tokens"`
}

func (u *usage) prompt() int64 {
	if u.PromptTokens == 0 {
		return u.TotalTokens
	}
	return u.PromptTokens
}

// DecodeResponse decodes an embeddings answer, the vectors in input
// order (by index). A base64 vector is decoded too.
func (Adapter) DecodeResponse(body []byte) (*wire.Response, error) {
	var r embedResponse
	if err := json.Unmarshal(body, &r); err != nil {
		return nil, err
	}
	resp := &wire.Response{Model: r.Model, Embeddings: make([][]float64, len(r.Data))}
	for _, d := range r.Data {
		if d.Index < 0 || d.Index >= len(r.Data) || resp.Embeddings[d.Index] != nil {
			return nil, errors.New("openaiembed: embedding indexes are not 0..n-1")
		}
		v, err := decodeVector(d.Embedding)
		if err != nil {
			return nil, err
		}
		resp.Embeddings[d.Index] = v
	}
	if r.Usage != nil {
		resp.Usage, resp.HasUsage = wire.Usage{Prompt: r.Usage.prompt()}, true
	}
	return resp, nil
}

func decodeVector(raw json.RawMessage) ([]float64, error) {
	var v []float64
	if json.Unmarshal(raw, &v) == nil && v != nil {
		return v, nil
	}
	var s string
	if err := json.Unmarshal(raw, &s); err != nil {
		return nil, errors.New("openaiembed: an embedding is neither numbers nor base64")
	}
	b, err := base64.StdEncoding.DecodeString(s)
	if err != nil || len(b)%4 != 0 {
		return nil, errors.New("openaiembed: a base64 embedding is not float32 values")
	}
	v = make([]float64, len(b)/4)
	for i := range v {
		v[i] = float64(math.Float32frombits(binary.LittleEndian.Uint32(b[4*i:])))
	}
	return v, nil
}

func encodeBase64(v []float64) string {
	b := make([]byte, 4*len(v))
	for i, f := range v {
		binary.LittleEndian.PutUint32(b[4*i:], math.Float32bits(float32(f)))
	}
	return base64.StdEncoding.EncodeToString(b)
}

// EncodeResponse encodes resp for the client under its model name, as
// floats or, when the client asked encoding_format base64, as base64.
// usage is always written, as OpenAI does (the SDKs expect it): the
// upstream's count, or the count the caller put into resp.Usage when
// upstream gave none (Gemini embedContent reports no usage).
func (Adapter) EncodeResponse(resp *wire.Response, req *wire.Request) ([]byte, error) {
	out := embedResponse{Object: "list", Data: make([]embedding, len(resp.Embeddings)), Model: req.Model,
		Usage: &usage{PromptTokens: resp.Usage.Prompt, TotalTokens: resp.Usage.Prompt}}
	for i, v := range resp.Embeddings {
		var raw []byte
		var err error
		if req.EmbedBase64 {
			raw, err = json.Marshal(encodeBase64(v))
		} else {
			if v == nil {
				v = []float64{}
			}
			raw, err = json.Marshal(v)
		}
		if err != nil {
			return nil, err // NaN or infinity: not JSON
		}
		out.Data[i] = embedding{Object: "embedding", Index: i, Embedding: raw}
	}
	return json.Marshal(out)
}

// ReadUsage reads the usage of an embeddings answer: prompt_tokens (or
// total_tokens, which equals it, when a compatible server sends only
// that). Embeddings have no completion tokens.
func (Adapter) ReadUsage(data []byte) (wire.Usage, bool) {
	var doc struct {
		Usage *usage `json:"usage"`
	}
	if json.Unmarshal(data, &doc) != nil || doc.Usage == nil {
		return wire.Usage{}, false
	}
	return wire.Usage{Prompt: doc.Usage.prompt()}, true
}
