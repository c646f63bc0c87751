package biz

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/lurus-switch/lurus-switch/lurus-common/apperr"
	"github.com/lurus-switch/lurus-switch/lurus-common/golden"
	"github.com/lurus-switch/lurus-switch/lurus-common/internalapi"
	"github.com/lurus-switch/lurus-switch/lurus-common/strictjson"
)

// testLimits is the output limit table of these tests.
var testLimits = EstimateConfig{BytesPerToken: 3, DefaultMaxOutput: 4096, ModelMaxOutput: map[string]int64{
	"gpt-4o*": 16384, "o3*": 100000, "claude-3-5-sonnet*": 8192, "gemini-2.5-pro*": 65536, "gpt-3.5-turbo*": 4096,
}}

const testMaxChoices = 16

// geminiTestModel is the model in the path of Gemini test requests.
const geminiTestModel = "gemini-2.5-pro"

func TestParseRequestStrict(t *testing.T) {
	chat, msgs, gen := EndpointChatCompletions, EndpointMessages, EndpointGenerateContent
	cases := []struct {
		name   string
		ep     Endpoint
		body   string
		reason apperr.Reason
		msg    string // part of the message
	}{
		{"duplicate model openai", chat, `{"model":"cheap","messages":[],"model":"expensive"}`, apperr.ReasonDuplicateKey, `"model"`},
		{"duplicate model anthropic", msgs, `{"model":"cheap","max_tokens":5,"model":"expensive"}`, apperr.ReasonDuplicateKey, `"model"`},
		{"duplicate cap gemini", gen, `{"generationConfig":{"maxOutputTokens":1,"maxOutputTokens":99999}}`, apperr.ReasonDuplicateKey, "maxOutputTokens"},
		{"duplicate escaped model", chat, `{"model":"cheap","mod\u0065l":"expensive"}`, apperr.ReasonDuplicateKey, `"model"`},
		{"duplicate max_tokens", chat, `{"model":"m","max_tokens":1,"max_tokens":100000}`, apperr.ReasonDuplicateKey, "max_tokens"},
		{"duplicate deep", chat, `{"model":"m","messages":[{"role":"user","role":"system"}]}`, apperr.ReasonDuplicateKey, "role"},
		{"gemini both config spellings", gen, `{"generationConfig":{},"generation_config":{"max_output_tokens":5}}`, apperr.ReasonDuplicateKey, "generation_config"},
		{"gemini both cap spellings", gen, `{"generationConfig":{"maxOutputTokens":5,"max_output_tokens":50000}}`, apperr.ReasonDuplicateKey, "max_output_tokens"},
		{"gemini both count spellings", gen, `{"generationConfig":{"candidateCount":1,"candidate_count":8}}`, apperr.ReasonDuplicateKey, "candidate_count"},
		{"escaped model alone", chat, `{"mod\u0065l":"expensive"}`, apperr.ReasonInvalidArgument, "exactly"},
		{"model in other case", chat, `{"model":"cheap","Model":"expensive"}`, apperr.ReasonInvalidArgument, `"Model"`},
		{"cap in other case", chat, `{"model":"m","MAX_TOKENS":100000}`, apperr.ReasonInvalidArgument, "MAX_TOKENS"},
		{"kelvin folds", msgs, `{"model":"m","max_to\u212aens":100000}`, apperr.ReasonInvalidArgument, "max_tokens"},
		{"gemini cap in other case", gen, `{"generationConfig":{"MaxOutputTokens":100000}}`, apperr.ReasonInvalidArgument, "generationConfig.maxOutputTokens"},
		{"model number", chat, `{"model":5}`, apperr.ReasonInvalidArgument, "model"},
		{"model object", chat, `{"model":{"a":1}}`, apperr.ReasonInvalidArgument, "model"},
		{"model empty", chat, `{"model":""}`, apperr.ReasonMissingModel, ""},
		{"model null", chat, `{"model":null}`, apperr.ReasonMissingModel, ""},
		{"stream string", chat, `{"model":"m","stream":"true"}`, apperr.ReasonInvalidArgument, "stream"},
		{"stream number", msgs, `{"model":"m","stream":1}`, apperr.ReasonInvalidArgument, "stream"},
		{"include_usage string", chat, `{"model":"m","stream":true,"stream_options":{"include_usage":"yes"}}`, apperr.ReasonInvalidArgument, "stream_options.include_usage"},
		{"stream_options not object", chat, `{"model":"m","stream_options":true}`, apperr.ReasonInvalidArgument, "stream_options"},
		{"cap exponent", chat, `{"model":"m","max_tokens":1e9}`, apperr.ReasonInvalidArgument, "max_tokens"},
		{"cap negative", chat, `{"model":"m","max_completion_tokens":-1}`, apperr.ReasonInvalidArgument, "max_completion_tokens"},
		{"cap fraction", msgs, `{"model":"m","max_tokens":1.5}`, apperr.ReasonInvalidArgument, "max_tokens"},
		{"cap point zero", msgs, `{"model":"m","max_tokens":100.0}`, apperr.ReasonInvalidArgument, "max_tokens"},
		{"cap string", EndpointResponses, `{"model":"m","max_output_tokens":"100"}`, apperr.ReasonInvalidArgument, "max_output_tokens"},
		{"cap huge", chat, `{"model":"m","max_tokens":99999999999999999999}`, apperr.ReasonInvalidArgument, "max_tokens"},
		{"gemini cap negative", gen, `{"generationConfig":{"maxOutputTokens":-5}}`, apperr.ReasonInvalidArgument, "generationConfig.maxOutputTokens"},
		{"gemini config not object", gen, `{"generationConfig":[1]}`, apperr.ReasonInvalidArgument, "generationConfig"},
		{"n too large", chat, `{"model":"m","n":17}`, apperr.ReasonInvalidArgument, "n must be at most 16"},
		{"n fraction", chat, `{"model":"m","n":2.5}`, apperr.ReasonInvalidArgument, "n"},
		{"best_of too large", EndpointCompletions, `{"model":"m","best_of":100}`, apperr.ReasonInvalidArgument, "best_of"},
		{"candidateCount too large", gen, `{"generationConfig":{"candidateCount":1000}}`, apperr.ReasonInvalidArgument, "candidateCount"},
		{"array body", chat, `[{"model":"m"}]`, apperr.ReasonMalformedJSON, "object"},
		{"two objects", chat, `{"model":"a"}{"model":"b"}`, apperr.ReasonMalformedJSON, ""},
		{"invalid utf8", chat, "{\"model\":\"m\xff\"}", apperr.ReasonMalformedJSON, ""},
		{"gemini array body", gen, `[]`, apperr.ReasonMalformedJSON, "object"},
		{"gemini count tokens duplicate", EndpointGeminiCountTokens, `{"contents":[],"contents":[]}`, apperr.ReasonDuplicateKey, "contents"},
		{"embeddings duplicate", EndpointEmbeddings, `{"model":"a","input":"x","input":"y"}`, apperr.ReasonDuplicateKey, "input"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := ParseRequest(c.ep, geminiTestModel, []byte(c.body), testMaxChoices)
			if apperr.ReasonOf(err) != c.reason {
				t.Fatalf("err %v, want %s", err, c.reason)
			}
			if apperr.KindOf(err) != apperr.KindInvalid {
				t.Fatalf("kind %v, want invalid (400)", apperr.KindOf(err))
			}
			if !strings.Contains(err.Error(), c.msg) {
				t.Fatalf("message %q does not name %q", err.Error(), c.msg)
			}
		})
	}
}

func TestParseRequestReads(t *testing.T) {
	chat, gen := EndpointChatCompletions, EndpointGenerateContent
	cases := []struct {
		name            string
		ep              Endpoint
		body            string
		stream          bool
		maxOut, choices int64
	}{
		{"chat smaller of two honoured caps", chat, `{"model":"m","max_tokens":50,"max_completion_tokens":200}`, false, 50, 1},
		{"chat ignores max_output_tokens", chat, `{"model":"m","max_output_tokens":1,"stream":true}`, true, 0, 1},
		{"chat zero cap is unset", chat, `{"model":"m","max_completion_tokens":0}`, false, 0, 1},
		{"chat n", chat, `{"model":"m","n":4}`, false, 0, 4},
		{"chat n zero counts once", chat, `{"model":"m","n":0}`, false, 0, 1},
		{"chat n null", chat, `{"model":"m","n":null,"stream":null}`, false, 0, 1},
		{"completions default 16", EndpointCompletions, `{"model":"m","prompt":"x"}`, false, 16, 1},
		{"completions best_of over n", EndpointCompletions, `{"model":"m","n":2,"best_of":5,"max_tokens":7}`, false, 7, 5},
		{"completions null cap", EndpointCompletions, `{"model":"m","max_tokens":null}`, false, 0, 1},
		{"responses ignores max_tokens", EndpointResponses, `{"model":"m","max_tokens":5}`, false, 0, 1},
		{"messages", EndpointMessages, `{"model":"m","max_tokens":30,"stream":true}`, true, 30, 1},
		{"gemini camel", gen, `{"generationConfig":{"maxOutputTokens":11,"candidateCount":3}}`, false, 11, 3},
		{"gemini snake", gen, `{"generation_config":{"max_output_tokens":12,"candidate_count":2}}`, false, 12, 2},
		{"gemini stream action", EndpointStreamGenerateContent, `{"stream":false}`, true, 0, 1},
		{"gemini ignores top-level fields", gen, `{"maxOutputTokens":1,"n":100}`, false, 0, 1},
		{"escaped keys elsewhere are fine", chat, `{"model":"m","messages":[{"r\u006fle":"user"}]}`, false, 0, 1},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			info, err := ParseRequest(c.ep, geminiTestModel, []byte(c.body), testMaxChoices)
			if err != nil {
				t.Fatal(err)
			}
			if info.Stream != c.stream || info.MaxOutput != c.maxOut || info.Choices != c.choices {
				t.Fatalf("stream %v max %d choices %d, want %v %d %d", info.Stream, info.MaxOutput, info.Choices, c.stream, c.maxOut, c.choices)
			}
		})
	}
}

func TestOutputCap(t *testing.T) {
	b := NewPriceBook(EstimateConfig{BytesPerToken: 3, DefaultMaxOutput: 4096, ModelMaxOutput: map[string]int64{
		"gpt-4o*": 16384, "gpt-4o-mini*": 9000, "claude-*": 8192, "claude-?-opus*": 4096, "claude-3-opus*": 2000,
	}})
	cases := []struct {
		model  string
		client int64
		want   int64
	}{
		{"gpt-4o", 0, 16384},
		{"gpt-4o", 100, 100},
		{"gpt-4o", 1 << 40, 16384},
		{"gpt-4o-mini-2024", 0, 9000}, // more specific pattern
		{"claude-3-opus-x", 0, 2000},  // more literal characters
		{"unknown", 0, 4096},          // default
		{"unknown", 5000, 4096},
	}
	for _, c := range cases {
		if got := b.OutputCap(c.model, c.client); got != c.want {
			t.Errorf("OutputCap(%s, %d) = %d, want %d", c.model, c.client, got, c.want)
		}
	}
	// Equally specific patterns: the smaller limit, whatever the map order.
	tie := NewPriceBook(EstimateConfig{BytesPerToken: 3, DefaultMaxOutput: 1, ModelMaxOutput: map[string]int64{"a*": 10, "*b": 20}})
	for i := 0; i < 20; i++ {
		if got := tie.OutputCap("ab", 0); got != 10 {
			t.Fatalf("tie: %d", got)
		}
	}
}

// requestEndpoints maps a testdata/requests file prefix to its endpoint;
// "chat_compat_" files are sent to an openai_compatible provider.
var requestEndpoints = map[string]Endpoint{
	"chat": EndpointChatCompletions, "completions": EndpointCompletions, "responses": EndpointResponses,
	"embeddings": EndpointEmbeddings, "messages": EndpointMessages, "countTokens": EndpointCountTokens,
	"generate": EndpointGenerateContent, "streamGenerate": EndpointStreamGenerateContent,
}

// readRequests returns the bodies in testdata/requests whose name starts
// with prefix + "_", by file name.
func readRequests(t testing.TB, prefix string) map[string][]byte {
	files, err := filepath.Glob(filepath.Join("testdata", "requests", prefix+"_*.json"))
	if err != nil || len(files) == 0 {
		t.Fatalf("no request files for %s: %v", prefix, err)
	}
	out := map[string][]byte{}
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		out[filepath.Base(f)] = b
	}
	return out
}

// prepare parses body and sets its output cap as the relay does.
func prepare(book *PriceBook, ep Endpoint, body []byte) (RequestInfo, error) {
	info, err := ParseRequest(ep, geminiTestModel, body, testMaxChoices)
	if err == nil && ep.HasOutput() {
		info.OutputCap = book.OutputCap(info.Model, info.MaxOutput)
	}
	return info, err
}

// TestRequestGolden runs every body in testdata/requests through the
// reading and the rewrite the relay does, and compares what was read and
// the upstream body with the .golden file beside it.
func TestRequestGolden(t *testing.T) {
	book := NewPriceBook(testLimits)
	for prefix, ep := range requestEndpoints {
		for name, body := range readRequests(t, prefix) {
			t.Run(name, func(t *testing.T) {
				typ := internalapi.TypeOpenAI
				if strings.HasPrefix(name, "chat_compat_") {
					typ = internalapi.TypeOpenAICompatible
				}
				info, err := prepare(book, ep, body)
				if err != nil {
					t.Fatal(err)
				}
				out, err := RewriteRequest(ep, info, info.Model, typ, bytes.Clone(body))
				if err != nil {
					t.Fatal(err)
				}
				if err := strictjson.CheckObject(out); err != nil {
					t.Fatalf("rewritten body: %v", err)
				}
				got := fmt.Sprintf("model=%s stream=%v include_usage=%v max_output=%d choices=%d output_cap=%d held_output=%d\n%s",
					info.Model, info.Stream, info.IncludeUsage, info.MaxOutput, info.Choices, info.OutputCap, info.HeldOutput(), out)
				golden.Bytes(t, filepath.Join("requests", name+".golden"), []byte(got))
			})
		}
	}
}

func TestParseRequestDoesNotCopyBody(t *testing.T) {
	body := readRequests(t, "chat")["chat_typical.json"]
	n := testing.AllocsPerRun(50, func() {
		if _, err := ParseRequest(EndpointChatCompletions, "", body, testMaxChoices); err != nil {
			t.Fatal(err)
		}
	})
	if n > 1 { // the model name is cloned
		t.Fatalf("ParseRequest allocates %v times", n)
	}
}

// honoured lists, per endpoint, the object path and the keys of the
// fields that cap output, as a last-key-wins upstream reads them.
var honoured = map[Endpoint]struct {
	obj  []string // config objects ("" = top level)
	caps []string
	mult []string
}{
	EndpointChatCompletions:       {[]string{""}, []string{fMaxCompletion, fMaxTokens}, []string{fN}},
	EndpointCompletions:           {[]string{""}, []string{fMaxTokens}, []string{fN, fBestOf}},
	EndpointResponses:             {[]string{""}, []string{fMaxOutput}, nil},
	EndpointMessages:              {[]string{""}, []string{fMaxTokens}, nil},
	EndpointGenerateContent:       {[]string{fGenConfig, fGenConfigSnake}, []string{fGemMaxOut, fMaxOutput}, []string{fGemCandidates, fGemCandSnake}},
	EndpointStreamGenerateContent: {[]string{fGenConfig, fGenConfigSnake}, []string{fGemMaxOut, fMaxOutput}, []string{fGemCandidates, fGemCandSnake}},
	EndpointEmbeddings:            {},
}

// decodeStd decodes doc as encoding/json does into a map (last key wins).
func decodeStd(t *testing.T, doc []byte) map[string]any {
	t.Helper()
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber()
	var m map[string]any
	if err := dec.Decode(&m); err != nil {
		t.Fatalf("encoding/json refuses an accepted body: %v: %q", err, doc)
	}
	return m
}

// stdRead reads what an upstream decoding with encoding/json would use:
// the caps it honours (smallest > 0), the multiplier (largest), whether
// any cap field is present.
func stdRead(t *testing.T, ep Endpoint, m map[string]any) (capv, mult int64, present int) {
	h := honoured[ep]
	mult = 1
	for _, o := range h.obj {
		obj := m
		if o != "" {
			sub, ok := m[o].(map[string]any)
			if !ok {
				continue
			}
			obj = sub
		}
		for _, k := range h.caps {
			v, ok := obj[k]
			if !ok {
				continue
			}
			present++
			if n := jsonInt(t, v); n > 0 && (capv == 0 || n < capv) {
				capv = n
			}
		}
		for _, k := range h.mult {
			if v, ok := obj[k]; ok {
				mult = max(mult, jsonInt(t, v))
			}
		}
	}
	return capv, mult, present
}

func jsonInt(t *testing.T, v any) int64 {
	if v == nil {
		return 0
	}
	n, err := v.(json.Number).Int64()
	if err != nil {
		t.Fatalf("accepted count %v is not an integer", v)
	}
	return n
}

// checkAgreement is the property of the request fuzz targets: reading
// never panics, and an accepted body means to encoding/json what it means
// to the gateway, before and after the rewrite.
func checkAgreement(t *testing.T, ep Endpoint, body []byte) {
	book := NewPriceBook(testLimits)
	info, err := prepare(book, ep, body)
	if err != nil {
		if k := apperr.KindOf(err); k != apperr.KindInvalid {
			t.Fatalf("refusal of kind %v: %v", k, err)
		}
		return
	}
	m := decodeStd(t, body)
	if ep.Format() != FormatGemini {
		if s, _ := m["model"].(string); s != info.Model || s == "" {
			t.Fatalf("model: gateway %q, encoding/json %v", info.Model, m["model"])
		}
		if ep.HasOutput() && (m["stream"] == true) != info.Stream {
			t.Fatalf("stream: gateway %v, encoding/json %v", info.Stream, m["stream"])
		}
	}
	capv, mult, _ := stdRead(t, ep, m)
	if ep == EndpointCompletions && capv == 0 && info.ncaps == 0 {
		capv = completionsDefaultMax
	}
	if capv != info.MaxOutput || mult != info.Choices {
		t.Fatalf("cap/choices: gateway %d/%d, encoding/json %d/%d", info.MaxOutput, info.Choices, capv, mult)
	}

	const upstreamModel = "upstream-model"
	out, err := RewriteRequest(ep, info, upstreamModel, internalapi.TypeOpenAI, bytes.Clone(body))
	if err != nil {
		t.Fatalf("rewrite: %v", err)
	}
	if err := strictjson.CheckObject(out); err != nil {
		t.Fatalf("rewritten body: %v: %q", err, out)
	}
	again, err := ParseRequest(ep, geminiTestModel, out, testMaxChoices)
	if err != nil {
		t.Fatalf("rewritten body refused: %v: %q", err, out)
	}
	m2 := decodeStd(t, out)
	capv2, mult2, present := stdRead(t, ep, m2)
	if ep.HasOutput() {
		if present == 0 || capv2 != info.OutputCap || again.MaxOutput != info.OutputCap {
			t.Fatalf("upstream cap %d (%d fields), gateway reads %d, held %d: %q", capv2, present, again.MaxOutput, info.OutputCap, out)
		}
		if mult2 != info.Choices {
			t.Fatalf("upstream choices %d, held %d", mult2, info.Choices)
		}
	} else if !bytes.Equal(out, body) && ep.Format() == FormatGemini {
		t.Fatalf("body without output changed: %q", out)
	}
	if ep.Format() != FormatGemini && m2["model"] != upstreamModel {
		t.Fatalf("upstream model %v", m2["model"])
	}
	// Nothing else changed.
	for k, v := range m {
		switch k {
		case fModel, fStreamOptions, fMaxCompletion, fMaxTokens, fMaxOutput, fGenConfig, fGenConfigSnake:
			continue
		}
		if !reflect.DeepEqual(m2[k], v) {
			t.Fatalf("field %s changed: %v → %v", k, v, m2[k])
		}
	}
}

// fuzzRequests seeds a fuzz target with the golden request bodies of
// prefix and with duplicate- and escaped-key variants.
func fuzzRequests(f *testing.F, ep Endpoint, prefix string) {
	for _, b := range readRequests(f, prefix) {
		f.Add(b)
	}
	for _, s := range []string{
		`{"model":"gpt-4o","model":"o3","max_tokens":1,"max_tokens":100000}`,
		`{"model":"gpt-4o","mod\u0065l":"o3"}`,
		`{"mod\u0065l":"o3"}`,
		`{"model":"gpt-4o","max_tok\u0065ns":100000,"max_completion_tokens":5,"n":2,"best_of":3}`,
		`{"model":"gpt-4o","MAX_TOKENS":9,"stream":true,"stream_options":{"include_usage":false}}`,
		`{"model":"gpt-4o","max_output_tokens":1,"max_tokens":null}`,
		`{"generationConfig":{"maxOutputTokens":1,"max\u004futputTokens":99999,"candidateCount":2}}`,
		`{"generation_config":{"max_output_tokens":7},"generationConfig":null}`,
		`{"generationConfig":null}`,
	} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, body []byte) { checkAgreement(t, ep, body) })
}

func FuzzParseOpenAIChat(f *testing.F)        { fuzzRequests(f, EndpointChatCompletions, "chat") }
func FuzzParseOpenAICompletions(f *testing.F) { fuzzRequests(f, EndpointCompletions, "completions") }
func FuzzParseOpenAIResponses(f *testing.F)   { fuzzRequests(f, EndpointResponses, "responses") }
func FuzzParseOpenAIEmbeddings(f *testing.F)  { fuzzRequests(f, EndpointEmbeddings, "embeddings") }
func FuzzParseAnthropicMessages(f *testing.F) { fuzzRequests(f, EndpointMessages, "messages") }
func FuzzParseGeminiGenerate(f *testing.F)    { fuzzRequests(f, EndpointGenerateContent, "generate") }

// The strict check replaces gjson.ValidBytes on the hot path; these
// compare the two on a typical chat body of about 2 KB.
func BenchmarkStrictCheckChat(b *testing.B) {
	body := readRequests(b, "chat")["chat_typical.json"]
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if err := strictjson.CheckObject(body); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkGJSONValidChat(b *testing.B) {
	body := readRequests(b, "chat")["chat_typical.json"]
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if !gjson.ValidBytes(body) {
			b.Fatal("invalid")
		}
	}
}

func BenchmarkParseRequestChat(b *testing.B) {
	body := readRequests(b, "chat")["chat_typical.json"]
	b.SetBytes(int64(len(body)))
	b.ReportAllocs()
	for b.Loop() {
		if _, err := ParseRequest(EndpointChatCompletions, "", body, testMaxChoices); err != nil {
			b.Fatal(err)
		}
	}
}
