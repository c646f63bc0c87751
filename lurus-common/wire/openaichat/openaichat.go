// Package openaichat is the wire adapter of OpenAI chat completions
// (/v1/chat/completions) for the providers that speak it: OpenAI, Azure
// OpenAI and OpenAI-compatible servers (vLLM, DeepSeek, Ollama, …).
//
// It is used only on translation paths: when the client's format and the
// upstream's are both OpenAI chat the gateway relays bytes and nothing
// here runs. So it favours clarity over speed and uses encoding/json.
//
// What maps, what is refused and what is dropped:
//
//   - Read into the canonical request: system and developer messages
//     (as Request.System, in order), user, assistant and tool messages,
//     text and image_url parts (data URLs and http(s) URLs), assistant
//     tool_calls and reasoning_content, tools (function), tool_choice,
//     parallel_tool_calls, response_format (text, json_object,
//     json_schema), temperature, top_p, top_k (a compatible-server
//     extension), stop, max_completion_tokens / max_tokens (the smaller),
//     stream, stream_options.include_usage.
//   - Refused (Request.Refused, so a writer of another format answers 400
//     naming the field): logprobs, top_logprobs, presence_penalty,
//     frequency_penalty, logit_bias (they change sampling), n > 1 (a
//     canonical answer holds one choice), audio, modalities other than
//     text, prediction, web_search_options, reasoning_effort, verbosity,
//     functions / function_call (the deprecated spelling of tools),
//     input_audio and file parts, custom tools, allowed_tools tool choice,
//     and any field this package does not know: nobody can tell whether
//     dropping it would change the answer.
//   - Dropped as hints: user, seed, service_tier, metadata, store,
//     safety_identifier, prompt_cache_key, prompt_cache_retention,
//     stream_options.include_obfuscation, the name of a message, and a
//     tool's strict flag (the target follows the schema as best it can).
package openaichat

import (
	"github.com/lurus-switch/lurus-switch/lurus-common/wire"
)

// Adapter implements the wire interfaces for OpenAI chat completions. The
// zero value is ready to use; it holds no state (stream state lives in the
// decoders and encoders it makes).
type Adapter struct{}

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
	_ wire.Metered           = Completions{}
	_ wire.StreamCutter      = Completions{}
)
