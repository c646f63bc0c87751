package biz

import (
	"errors"
	"strings"
	"unsafe"

	"github.com/tidwall/gjson"
	"github.com/tidwall/sjson"

	"github.com/lurus-switch/lurus-switch/lurus-common/apperr"
	"github.com/lurus-switch/lurus-switch/lurus-common/internalapi"
	"github.com/lurus-switch/lurus-switch/lurus-common/strictjson"
)

// RequestInfo is the one reading of a request body that authorization,
// routing, the hold and the upstream body all use. ParseRequest fills it
// from a body that strictjson accepted, so the gateway and an upstream
// that keeps the last of duplicate keys read the same values.
type RequestInfo struct {
	Model string
	// Stream is the body's "stream" (OpenAI, Anthropic) or the
	// streamGenerateContent action (Gemini).
	Stream bool
	// IncludeUsage is stream_options.include_usage as the client sent it.
	IncludeUsage bool
	// MaxOutput is the smallest output cap the client set in a field its
	// endpoint honours (0 when none; 0 and null mean unset, as they do to
	// Gemini). Fields the endpoint ignores (max_output_tokens on chat) are
	// not read: they cap nothing upstream.
	MaxOutput int64
	// Choices is how many outputs one request generates: OpenAI n (and
	// best_of on completions), Gemini candidateCount; at least 1.
	Choices int64
	// OutputCap is the output cap the hold prices (× Choices) and the
	// upstream body carries (RewriteRequest). The relay sets it with
	// PriceBook.OutputCap for endpoints with output; 0 otherwise.
	OutputCap int64

	// caps are the honoured cap fields the body holds, as sjson paths with
	// their values (0 for null); RewriteRequest sets each to OutputCap.
	caps  [2]capField
	ncaps int
	// geminiConfig is how the body spells Gemini's generation config
	// object ("" when it has none).
	geminiConfig string
}

type capField struct {
	path string
	val  int64
}

// HeldOutput is the output the hold prices: OutputCap × Choices.
func (info *RequestInfo) HeldOutput() int64 { return info.OutputCap * info.Choices }

// completionsDefaultMax is what OpenAI's legacy completions generate when
// max_tokens is absent (the API's documented default); the gateway sends
// it explicitly so every upstream stops there.
const completionsDefaultMax = 16

// field names the gateway reads. A key that is not spelled exactly like
// one of them but folds to it ("Model", "mod\u0065l", "ſtream") is refused:
// Go's encoding/json would take it for the field, Python would not.
const (
	fModel          = "model"
	fStream         = "stream"
	fStreamOptions  = "stream_options"
	fIncludeUsage   = "include_usage"
	fMaxTokens      = "max_tokens"
	fMaxCompletion  = "max_completion_tokens"
	fMaxOutput      = "max_output_tokens"
	fN              = "n"
	fBestOf         = "best_of"
	fGenConfig      = "generationConfig"
	fGenConfigSnake = "generation_config"
	fGemMaxOut      = "maxOutputTokens"
	fGemCandidates  = "candidateCount"
	fGemCandSnake   = "candidate_count"
)

// topFields lists the top-level fields read per endpoint.
var topFields = [...][]string{
	EndpointChatCompletions:       {fModel, fStream, fStreamOptions, fMaxCompletion, fMaxTokens, fN},
	EndpointCompletions:           {fModel, fStream, fStreamOptions, fMaxTokens, fN, fBestOf},
	EndpointEmbeddings:            {fModel},
	EndpointResponses:             {fModel, fStream, fMaxOutput},
	EndpointMessages:              {fModel, fStream, fMaxTokens},
	EndpointCountTokens:           {fModel},
	EndpointGenerateContent:       {fGenConfig, fGenConfigSnake},
	EndpointStreamGenerateContent: {fGenConfig, fGenConfigSnake},
	EndpointGeminiCountTokens:     nil,
	EndpointEmbedContent:          nil,
	EndpointBatchEmbedContents:    nil,
	EndpointModels:                nil,
}

// geminiConfigFields are the fields read inside Gemini's generation config.
var geminiConfigFields = []string{fGemMaxOut, fMaxOutput, fGemCandidates, fGemCandSnake}

var streamOptionFields = []string{fIncludeUsage}

// ParseRequest checks body strictly and reads the fields that decide
// authorization, routing and price, once. pathModel is the model of a
// Gemini path ("" otherwise); maxChoices bounds n, best_of and
// candidateCount. Refusals (all 400): MALFORMED_JSON (not exactly one
// JSON object), DUPLICATE_KEY, MISSING_MODEL, INVALID_ARGUMENT naming the
// field (a model that is not a string, a stream that is not a boolean, a
// token count or multiplier that is not a non-negative integer, a
// multiplier above maxChoices, a read field spelled another way).
func ParseRequest(ep Endpoint, pathModel string, body []byte, maxChoices int64) (RequestInfo, error) {
	info := RequestInfo{Choices: 1}
	if err := strictjson.CheckObject(body); err != nil {
		var dup *strictjson.DuplicateKeyError
		if errors.As(err, &dup) {
			return info, apperr.Newf(apperr.ReasonDuplicateKey, "request body repeats the key %q", dup.Key)
		}
		if errors.Is(err, strictjson.ErrNotObject) {
			return info, apperr.New(apperr.ReasonMalformedJSON, "request body must be a JSON object")
		}
		return info, apperr.New(apperr.ReasonMalformedJSON, "request body is not valid JSON")
	}
	// A view of body, not a copy: everything kept from it is cloned.
	root := gjson.Parse(unsafe.String(unsafe.SliceData(body), len(body)))
	p := parser{info: info, maxChoices: maxChoices}
	routed := ep.Format().routed()
	if routed {
		p.info.Model = pathModel
		p.info.Stream = ep == EndpointStreamGenerateContent
	}
	if int(ep) < len(topFields) {
		p.object(root, "", topFields[ep], levelTop)
	}
	if p.err != nil {
		return p.info, p.err
	}
	if !routed && p.info.Model == "" {
		return p.info, apperr.New(apperr.ReasonMissingModel, "request has no model")
	}
	if err := checkModel(p.info.Model, routed); err != nil {
		return p.info, err
	}
	if ep == EndpointCompletions && p.info.ncaps == 0 {
		p.info.MaxOutput = completionsDefaultMax
	}
	return p.info, nil
}

// parser walks the objects the gateway reads, once each.
type parser struct {
	info       RequestInfo
	maxChoices int64
	err        error
	// seen is the spelling met in a Gemini config of the cap [0] and of
	// the candidate count [1].
	seen [2]string
}

// The objects parser reads.
const (
	levelTop = iota
	levelStreamOptions
	levelGeminiConfig
)

// object reads every member of o whose key is one of names (at level),
// after refusing keys that fold to a name without being spelled as it.
func (p *parser) object(o gjson.Result, prefix string, names []string, level int) {
	o.ForEach(func(k, v gjson.Result) bool {
		raw := k.Raw[1 : len(k.Raw)-1]
		for _, n := range names {
			if raw == n {
				switch level {
				case levelTop:
					p.top(n, v)
				case levelStreamOptions:
					p.info.IncludeUsage, p.err = readBool(fStreamOptions+"."+fIncludeUsage, v)
				case levelGeminiConfig:
					p.geminiConfig(prefix, n, v)
				}
				return p.err == nil
			}
		}
		for _, n := range names {
			if strings.EqualFold(k.Str, n) {
				p.err = apperr.Newf(apperr.ReasonInvalidArgument, "key %s must be written exactly %q (no escapes, same case)", k.Raw, prefix+n)
				return false
			}
		}
		return true
	})
}

func (p *parser) top(name string, v gjson.Result) {
	info := &p.info
	switch name {
	case fModel:
		switch v.Type {
		case gjson.String:
			info.Model = strings.Clone(v.Str)
		case gjson.Null:
		default:
			p.err = apperr.New(apperr.ReasonInvalidArgument, "model must be a string")
		}
	case fStream:
		info.Stream, p.err = readBool(name, v)
	case fStreamOptions:
		if p.mustObject(name, v) {
			p.object(v, fStreamOptions+".", streamOptionFields, levelStreamOptions)
		}
	case fMaxTokens, fMaxCompletion, fMaxOutput:
		p.cap("", name, name, v)
	case fN, fBestOf:
		p.choices("", name, v)
	case fGenConfig, fGenConfigSnake:
		if info.geminiConfig != "" {
			p.err = apperr.Newf(apperr.ReasonDuplicateKey, "request body has both %s and %s", fGenConfig, fGenConfigSnake)
			return
		}
		if !p.mustObject(name, v) {
			return
		}
		info.geminiConfig = name
		prefix := fGenConfig + "."
		if name == fGenConfigSnake {
			prefix = fGenConfigSnake + "."
		}
		p.object(v, prefix, geminiConfigFields, levelGeminiConfig)
	}
}

// geminiConfig reads field n of the generation config (prefix names it).
func (p *parser) geminiConfig(prefix, n string, v gjson.Result) {
	i := 0
	if n == fGemCandidates || n == fGemCandSnake {
		i = 1
	}
	if p.seen[i] != "" {
		p.err = apperr.Newf(apperr.ReasonDuplicateKey, "request body has both %s%s and %s%s", prefix, p.seen[i], prefix, n)
		return
	}
	p.seen[i] = n
	if i == 1 {
		p.choices(prefix, n, v)
		return
	}
	p.cap(prefix, n, geminiPath(p.info.geminiConfig, n), v)
}

// geminiPath is the sjson path of field n in config object cfg, from
// constants so that no path is built per request.
func geminiPath(cfg, n string) string {
	switch {
	case cfg == fGenConfig && n == fGemMaxOut:
		return fGenConfig + "." + fGemMaxOut
	case cfg == fGenConfig:
		return fGenConfig + "." + fMaxOutput
	case n == fGemMaxOut:
		return fGenConfigSnake + "." + fGemMaxOut
	}
	return fGenConfigSnake + "." + fMaxOutput
}

func (p *parser) mustObject(name string, v gjson.Result) bool {
	switch {
	case v.IsObject():
		return true
	case v.Type != gjson.Null:
		p.err = apperr.Newf(apperr.ReasonInvalidArgument, "%s must be an object", name)
	}
	return false
}

// cap records an honoured output cap field (prefix+name, at sjson path).
func (p *parser) cap(prefix, name, path string, v gjson.Result) {
	n, err := readCount(prefix, name, v)
	if err != nil {
		p.err = err
		return
	}
	info := &p.info
	if info.ncaps < len(info.caps) {
		info.caps[info.ncaps] = capField{path: path, val: n}
		info.ncaps++
	}
	if n > 0 && (info.MaxOutput == 0 || n < info.MaxOutput) {
		info.MaxOutput = n
	}
}

// choices records a multiplier: the request generates the largest of
// them (best_of ≥ n on completions).
func (p *parser) choices(prefix, name string, v gjson.Result) {
	n, err := readCount(prefix, name, v)
	switch {
	case err != nil:
		p.err = err
	case n > p.maxChoices:
		p.err = apperr.Newf(apperr.ReasonInvalidArgument, "%s%s must be at most %d", prefix, name, p.maxChoices)
	case n > p.info.Choices:
		p.info.Choices = n
	}
}

// maxCountDigits keeps a count below 10^18, far from int64 overflow.
const maxCountDigits = 18

// readCount reads a non-negative JSON integer written as digits only
// (null reads as 0). 1e3, 1.0, -1 and "100" are refused: readers
// disagree on them.
func readCount(prefix, name string, v gjson.Result) (int64, error) {
	if v.Type == gjson.Null {
		return 0, nil
	}
	raw := v.Raw
	ok := v.Type == gjson.Number && len(raw) > 0 && (raw == "0" || raw[0] != '0')
	if ok && len(raw) > maxCountDigits {
		return 0, apperr.Newf(apperr.ReasonInvalidArgument, "%s%s is too large", prefix, name)
	}
	var n int64
	for i := 0; ok && i < len(raw); i++ {
		c := raw[i]
		ok = c >= '0' && c <= '9'
		n = n*10 + int64(c-'0')
	}
	if !ok {
		return 0, apperr.Newf(apperr.ReasonInvalidArgument, "%s%s must be a non-negative integer", prefix, name)
	}
	return n, nil
}

func readBool(name string, v gjson.Result) (bool, error) {
	switch v.Type {
	case gjson.True:
		return true, nil
	case gjson.False, gjson.Null:
		return false, nil
	}
	return false, apperr.Newf(apperr.ReasonInvalidArgument, "%s must be a boolean", name)
}

// InjectsUsage reports whether the upstream request must get
// stream_options.include_usage=true (OpenAI chat and completions streams
// the client did not ask usage for).
func (info RequestInfo) InjectsUsage(ep Endpoint) bool {
	return info.Stream && !info.IncludeUsage && (ep == EndpointChatCompletions || ep == EndpointCompletions)
}

// capPath is the field an endpoint's output cap is added as when the
// body has none. Chat completions: max_completion_tokens for OpenAI and
// Azure (max_tokens is deprecated there and refused by reasoning
// models); max_tokens for openai_compatible providers, the field every
// compatible server (vLLM, Ollama, DeepSeek, …) knows.
func capPath(ep Endpoint, providerType string, info *RequestInfo) string {
	switch ep {
	case EndpointChatCompletions:
		if providerType == internalapi.TypeOpenAICompatible {
			return fMaxTokens
		}
		return fMaxCompletion
	case EndpointCompletions, EndpointMessages:
		return fMaxTokens
	case EndpointResponses:
		return fMaxOutput
	case EndpointGenerateContent, EndpointStreamGenerateContent:
		if info.geminiConfig == fGenConfigSnake {
			return fGenConfigSnake + "." + fGemMaxOut
		}
		return fGenConfig + "." + fGemMaxOut
	}
	return ""
}

// RewriteRequest returns body edited for upstream, as a new slice (body
// itself when there is nothing to change; body is never written to): the
// model alias becomes the upstream name (OpenAI and Anthropic bodies; a
// Gemini model lives in the path), usage is requested on OpenAI streams,
// and the output cap the hold priced (info.OutputCap) is written into
// every honoured cap field the body has, or added in the endpoint's field
// (capPath) when it has none. Nothing else of the body is touched.
func RewriteRequest(ep Endpoint, info RequestInfo, upstreamModel, providerType string, body []byte) ([]byte, error) {
	var err error
	set := func(path string, v any) {
		if err == nil {
			body, err = sjson.SetBytes(body, path, v)
		}
	}
	if !ep.Format().routed() && upstreamModel != info.Model {
		set(fModel, upstreamModel)
	}
	if info.InjectsUsage(ep) {
		set(fStreamOptions+"."+fIncludeUsage, true)
	}
	if ep.HasOutput() && info.OutputCap > 0 {
		for _, c := range info.caps[:info.ncaps] {
			if c.val != info.OutputCap {
				set(c.path, info.OutputCap)
			}
		}
		if info.ncaps == 0 {
			set(capPath(ep, providerType, &info), info.OutputCap)
		}
	}
	if err != nil {
		return nil, apperr.Wrap(err, apperr.ReasonMalformedJSON, "cannot rewrite the request body")
	}
	return body, nil
}

// RenameModel rewrites the model field at path of a response document
// from the upstream name back to the one the client asked for. doc is
// returned unchanged when the field is absent or holds another name.
func RenameModel(doc []byte, path, from, to string) []byte {
	v := gjson.GetBytes(doc, path)
	if v.Type != gjson.String || v.Str != from {
		return doc
	}
	out, err := sjson.SetBytes(doc, path, to)
	if err != nil {
		return doc
	}
	return out
}
