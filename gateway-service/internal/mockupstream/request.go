package mockupstream

import (
	"unicode"
	"unicode/utf8"

	"github.com/tidwall/gjson"
)

// requestInfo is what the mock reads from a request body. gjson reads the
// few fields it needs straight from the bytes, without reflection.
type requestInfo struct {
	model        string
	stream       bool
	includeUsage bool
	// tool is the name of the function to call; empty for a text reply.
	tool string
	// fixedArgs is set when the call was forced (Settings.ToolCall): its
	// arguments are FixedToolArguments.
	fixedArgs bool
	// promptTokens is CountPromptTokens of the body.
	promptTokens int
	// embeddings is the number of inputs of an embeddings request.
	embeddings int
	// dims is the requested embedding size, 0 for the default.
	dims int
	// base64 is OpenAI's encoding_format "base64".
	base64 bool
}

// toolArgs are the arguments of the reply's tool call for n chunks.
func (info *requestInfo) toolArgs(n int) toolArgs { return toolArgs{fixed: info.fixedArgs, n: n} }

// parseOpenAI reads an OpenAI (or Azure OpenAI) request body.
func parseOpenAI(body []byte, ep endpoint) requestInfo {
	root := gjson.ParseBytes(body)
	info := requestInfo{
		model:        root.Get("model").String(),
		stream:       root.Get("stream").Bool(),
		includeUsage: root.Get("stream_options.include_usage").Bool(),
		promptTokens: CountPromptTokens(body),
	}
	switch ep {
	case epChat:
		info.tool = openAIToolName(root)
	case epEmbeddings:
		in := root.Get("input")
		info.embeddings = 1
		if in.IsArray() {
			first := in.Get("0")
			if first.Exists() && first.Type != gjson.Number {
				info.embeddings = int(in.Get("#").Int())
			}
		}
		info.dims = int(root.Get("dimensions").Int())
		info.base64 = root.Get("encoding_format").String() == "base64"
	}
	return info
}

// openAIToolName picks the function a chat reply calls: the one tool_choice
// names, else the first function tool; none when tool_choice is "none".
func openAIToolName(root gjson.Result) string {
	choice := root.Get("tool_choice")
	if choice.String() == "none" {
		return ""
	}
	if name := choice.Get("function.name").String(); name != "" {
		return name
	}
	var name string
	root.Get("tools").ForEach(func(_, t gjson.Result) bool {
		name = t.Get("function.name").String()
		return name == ""
	})
	return name
}

// parseAnthropic reads an Anthropic Messages request body.
func parseAnthropic(body []byte) requestInfo {
	root := gjson.ParseBytes(body)
	info := requestInfo{
		model:        root.Get("model").String(),
		stream:       root.Get("stream").Bool(),
		promptTokens: CountPromptTokens(body),
	}
	choice := root.Get("tool_choice")
	switch {
	case choice.Get("type").String() == "none":
	case choice.Get("name").String() != "":
		info.tool = choice.Get("name").String()
	default:
		root.Get("tools").ForEach(func(_, t gjson.Result) bool {
			info.tool = t.Get("name").String()
			return info.tool == ""
		})
	}
	return info
}

// parseGemini reads a Gemini request body; the model comes from the path.
func parseGemini(body []byte, model string, ep endpoint) requestInfo {
	root := gjson.ParseBytes(body)
	info := requestInfo{model: model, promptTokens: CountPromptTokens(body)}
	switch ep {
	case epGenerate, epStreamGenerate:
		cfg := root.Get("toolConfig.functionCallingConfig")
		if cfg.Get("mode").String() == "NONE" {
			break
		}
		if allowed := cfg.Get("allowedFunctionNames.0").String(); allowed != "" {
			info.tool = allowed
			break
		}
		info.tool = root.Get("tools.#.functionDeclarations.0.name").Get("0").String()
	case epEmbedContent:
		info.embeddings = 1
		info.dims = int(root.Get("outputDimensionality").Int())
	case epBatchEmbed:
		info.embeddings = int(root.Get("requests.#").Int())
		info.dims = int(root.Get("requests.0.outputDimensionality").Int())
	}
	return info
}

// outputCapPaths are the fields that cap output in one API or another.
var outputCapPaths = [...]string{"max_tokens", "max_completion_tokens", "max_output_tokens",
	"generationConfig.maxOutputTokens", "generation_config.max_output_tokens"}

// outputCaps returns the cap fields body holds (nil when none).
func outputCaps(body []byte) map[string]int64 {
	var caps map[string]int64
	for _, p := range outputCapPaths {
		if v := gjson.GetBytes(body, p); v.Type == gjson.Number {
			if caps == nil {
				caps = map[string]int64{}
			}
			caps[p] = v.Int()
		}
	}
	return caps
}

// CountPromptTokens is the mock's deterministic prompt token count of a
// request body: the number of whitespace-separated words in every JSON
// string that is the value of a key named "content", "text", "prompt",
// "input", "instructions" or "system" (or an element, at any depth, of an
// array that is such a value), found anywhere in the body; a number in such
// an array (a token id) counts as one token. Objects under those keys are
// searched for the same keys again. So OpenAI message contents and content
// parts, completion prompts, embedding inputs, Responses input and
// instructions, Anthropic system and message blocks and Gemini parts all
// count, while roles, types, names and tool schemas do not.
func CountPromptTokens(body []byte) int {
	return countIn(gjson.ParseBytes(body))
}

func countIn(v gjson.Result) int {
	n := 0
	switch {
	case v.IsObject():
		v.ForEach(func(k, val gjson.Result) bool {
			switch k.Str {
			case "content", "text", "prompt", "input", "instructions", "system":
				n += countValue(val)
			default:
				n += countIn(val)
			}
			return true
		})
	case v.IsArray():
		v.ForEach(func(_, val gjson.Result) bool {
			n += countIn(val)
			return true
		})
	}
	return n
}

func countValue(v gjson.Result) int {
	switch {
	case v.Type == gjson.String:
		return countWords(v.Str)
	case v.Type == gjson.Number:
		return 1
	case v.IsArray():
		n := 0
		v.ForEach(func(_, val gjson.Result) bool {
			n += countValue(val)
			return true
		})
		return n
	case v.IsObject():
		return countIn(v)
	}
	return 0
}

// countWords counts whitespace-separated words like len(strings.Fields(s)),
// without allocating.
func countWords(s string) int {
	n := 0
	inWord := false
	for i := 0; i < len(s); {
		c := s[i]
		var space bool
		if c < utf8.RuneSelf {
			space = c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\v' || c == '\f'
			i++
		} else {
			r, size := utf8.DecodeRuneInString(s[i:])
			space = unicode.IsSpace(r)
			i += size
		}
		if !space && !inWord {
			n++
		}
		inWord = !space
	}
	return n
}
