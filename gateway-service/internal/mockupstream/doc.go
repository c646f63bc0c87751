// Package mockupstream impersonates the upstream LLM providers the gateway
// relays to, on their real wire formats, so that end-to-end tests can drive
// the gateway with the official SDKs and benchmarks can compare a call
// straight to the mock with the same call through the gateway.
//
// # Operations
//
//	OpenAI      POST /v1/chat/completions, /v1/completions, /v1/embeddings,
//	            /v1/responses; GET /v1/models, /v1/models/{id}
//	Azure       POST /openai/deployments/{deployment}/chat/completions,
//	            …/completions, …/embeddings; GET /openai/models (all need
//	            ?api-version=, else 404)
//	Anthropic   POST /v1/messages, /v1/messages/count_tokens; GET /v1/models
//	            (Anthropic form when the request has anthropic-version or
//	            x-api-key)
//	Gemini      POST /v1beta/models/{model}:generateContent,
//	            :streamGenerateContent (?alt=sse or the streamed JSON array),
//	            :countTokens, :embedContent, :batchEmbedContents;
//	            GET /v1beta/models, /v1beta/models/{model}; the same under /v1
//
// Any model name is accepted and echoed. Every response carries the
// request's X-Request-Id when it had one; streams flush after every event.
//
// # Content
//
// A reply is made of N chunks (default 5), chunk i being "tok<i> " (see
// ChunkText): "tok0 tok1 tok2 tok3 tok4 ". A stream sends one content event
// per chunk, so a lost, repeated or merged chunk shows in the text. When a
// chat or Messages request has tools (and tool_choice is not none), the
// reply is a call of the named or first tool with arguments
// {"input":"tok0 … "} (ToolArguments), streamed as N pieces
// (ToolArgumentPiece): OpenAI function.arguments deltas, Anthropic
// input_json_delta; Gemini sends the functionCall whole. Embeddings are
// DefaultEmbeddingDims values (or the requested dimensions), element k of
// input j being j+(k+1)/8.
//
// X-Mock-Tool-Call: <name> (Settings.ToolCall, scenario "tool_call")
// forces a tool call, whatever tools the request declares: every chat,
// Responses, Messages and Gemini generate reply calls function <name> with
// the fixed arguments {"city":"Paris","unit":"celsius"}
// (FixedToolArguments), and no text. Streamed, the arguments go out in
// FixedToolArgumentPieces(N): min(max(N,1),33) pieces of about equal
// length, each a content chunk (so gap, cut and hang apply to them):
//
//	OpenAI chat   message.tool_calls[{id,type:"function",function:{name,arguments}}],
//	              content null, finish_reason "tool_calls"; streamed: a first
//	              delta with tool_calls[{index:0,id,type,function:{name,
//	              arguments:""}}], then one arguments delta per piece
//	Responses     output [{type:"function_call",id:"fc_…",call_id:"call_…",
//	              name,arguments,status}]; streamed: output_item.added
//	              (arguments ""), function_call_arguments.delta per piece,
//	              function_call_arguments.done, output_item.done, completed
//	Anthropic     content [{type:"tool_use",id,name,input}], stop_reason
//	              "tool_use"; streamed: content_block_start with input {},
//	              input_json_delta partial_json per piece, content_block_stop,
//	              message_delta with stop_reason "tool_use"
//	Gemini        candidates[0].content.parts[{functionCall:{name,args}}],
//	              finishReason STOP; streamed as one chunk with the whole
//	              call, the finish reason and the full usage
//
// Usage is as for text (completion = N unless X-Mock-Usage says
// otherwise). Legacy completions and embeddings ignore the knob; "none"
// turns off a call set by a lower layer.
//
// # Token counts
//
// prompt is CountPromptTokens of the body: whitespace-separated words in
// the strings under "content", "text", "prompt", "input", "instructions"
// and "system" keys. completion is N. cached, cache_write and reasoning are
// 0. X-Mock-Usage overrides any of them. Each format writes them as they are:
//
//	OpenAI chat/completions  prompt_tokens=prompt, completion_tokens=completion,
//	                         total_tokens=prompt+completion,
//	                         prompt_tokens_details.cached_tokens=cached,
//	                         prompt_tokens_details.cache_write_tokens=cache_write (when > 0),
//	                         completion_tokens_details.reasoning_tokens=reasoning
//	OpenAI responses         input_tokens, input_tokens_details.cached_tokens,
//	                         output_tokens, output_tokens_details.reasoning_tokens,
//	                         total_tokens, likewise
//	OpenAI embeddings        prompt_tokens=total_tokens=prompt
//	Anthropic                input_tokens=prompt, cache_read_input_tokens=cached,
//	                         cache_creation_input_tokens=cache_write,
//	                         output_tokens=completion,
//	                         output_tokens_details.thinking_tokens=reasoning (when > 0);
//	                         message_start says output_tokens=min(1,completion),
//	                         message_delta repeats all counts with the final
//	                         output_tokens (cumulative, not to be summed)
//	Gemini                   promptTokenCount=prompt, candidatesTokenCount=completion,
//	                         totalTokenCount=prompt+completion+reasoning,
//	                         cachedContentTokenCount=cached and
//	                         thoughtsTokenCount=reasoning (each only when > 0);
//	                         streamed chunks before the last carry only
//	                         promptTokenCount and totalTokenCount=prompt
//
// Streams end as the real ones do: OpenAI with a finish_reason chunk, the
// usage chunk ("choices":[]) only when stream_options.include_usage is
// true, then "data: [DONE]"; Responses with response.completed carrying
// usage; Anthropic with message_delta (usage) and message_stop; Gemini
// with a last chunk holding an empty text part, finishReason STOP and the
// full usageMetadata.
//
// # Control
//
// Three layers, each overriding the one before: Options.Defaults (the
// command's flags), the scenario named by X-Mock-Scenario, and these
// request headers (see Settings for the JSON form a scenario takes):
//
//	X-Mock-Latency-Ms: 200      delay before the first byte
//	X-Mock-Chunks: 5            number of chunks
//	X-Mock-Gap-Ms: 10           pause between stream chunks
//	X-Mock-Status: 503          fail before the first byte, in the caller's format
//	                            (below 400: do not fail; a 429 carries Retry-After: 1)
//	X-Mock-Cut-After: 2         drop a stream after 2 content chunks ("off" to undo)
//	X-Mock-Hang: first_byte|mid|none
//	X-Mock-No-Usage: 1          omit usage everywhere
//	X-Mock-Usage: prompt=12,completion=34,cached=5,cache_write=2,reasoning=7
//	X-Mock-Fail-Rate: 0.5       answer 500 with that probability
//	X-Mock-Require-Key: sk-up   accept only this upstream key
//	X-Mock-Tool-Call: get_weather  reply with a call of this function ("none": off)
//	X-Mock-Scenario: name       apply the stored scenario (unknown: nothing)
//
// Upstream keys are read from Authorization: Bearer, api-key, x-api-key,
// x-goog-api-key and ?key=. A request without any is answered 401 in its
// format; with a required key, every key presented must equal it.
//
// The order of a request: control headers (400 if malformed), latency,
// first-byte hang, routing (404/405), key check (401), status and fail
// rate, body checks (413, 400), reply. A cut drops the connection without
// the terminating chunk (the client reads an unexpected EOF) after N
// content chunks, or after all of them when N is larger, always before the
// finish and usage events. A mid hang sends the status, the headers and the
// first chunk (half the body for a JSON reply) and then waits for the
// client to go; a first-byte hang waits for it before sending anything.
//
// # Control API
//
// It needs no key and is never recorded or counted:
//
//	GET    /health                 {"status":"ok"}
//	GET    /__requests?limit=N     {"items":[RecordedRequest…]}: the newest N
//	                               (default: all kept, up to the ring's
//	                               capacity, 1000 by default), oldest first;
//	                               each has the body as a string ("body",
//	                               its first 64 KiB, "body_truncated":true
//	                               when cut) besides its size ("body_bytes")
//	DELETE /__requests             forget them
//	GET    /__stats                Stats: total, in_flight, cut, by_path → status → count
//	DELETE /__stats                zero the counters
//	GET    /__scenarios            {"items":{"<name>":Settings…}}
//	GET    /__scenarios/<name>     Settings
//	PUT    /__scenarios/<name>     store Settings, e.g. {"status":503,"latency_ms":50}; 204
//	DELETE /__scenarios/<name>     remove it; 204
//
// Scenario names are 1-128 of [A-Za-z0-9._-]; unknown JSON fields are
// refused. Errors are {"error":{"reason":"STABLE_REASON","message":"…"}}.
package mockupstream
