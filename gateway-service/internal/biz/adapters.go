package biz

import (
	"github.com/lurus-switch/lurus-switch/lurus-common/internalapi"
	"github.com/lurus-switch/lurus-switch/lurus-common/wire"
	"github.com/lurus-switch/lurus-switch/lurus-common/wire/adapters"
	"github.com/lurus-switch/lurus-switch/lurus-common/wire/anthropic"
	"github.com/lurus-switch/lurus-switch/lurus-common/wire/gemini"
	"github.com/lurus-switch/lurus-switch/lurus-common/wire/openaichat"
	"github.com/lurus-switch/lurus-switch/lurus-common/wire/openaiembed"
	"github.com/lurus-switch/lurus-switch/lurus-common/wire/openairesponses"
)

// The gateway's table of wire adapters: which adapter reads a client's
// endpoint, and which writes an operation for a provider type. It is the
// only place the relay's translation path names a vendor; a pair with no
// adapter is simply not translated (the router leaves such providers out).

// endpointOp is the canonical operation of a translatable endpoint; ok is
// false for the legacy completions, the model list and none.
func endpointOp(ep Endpoint) (wire.Op, bool) {
	switch ep {
	case EndpointChatCompletions, EndpointResponses, EndpointMessages, EndpointGenerateContent, EndpointStreamGenerateContent:
		return wire.OpGenerate, true
	case EndpointEmbeddings, EndpointEmbedContent, EndpointBatchEmbedContents:
		return wire.OpEmbed, true
	case EndpointCountTokens, EndpointGeminiCountTokens:
		return wire.OpCountTokens, true
	}
	return 0, false
}

// clientAdapter is the adapter of the client's side of endpoint ep (nil
// when ep is never translated). geminiSSE is the client's alt=sse.
func clientAdapter(ep Endpoint, geminiSSE bool) any {
	switch ep {
	case EndpointChatCompletions:
		return openaichat.Adapter{}
	case EndpointResponses:
		return openairesponses.Adapter{}
	case EndpointEmbeddings:
		return openaiembed.Adapter{}
	case EndpointMessages, EndpointCountTokens:
		return anthropic.Adapter{}
	case EndpointGenerateContent, EndpointStreamGenerateContent, EndpointGeminiCountTokens, EndpointEmbedContent:
		return gemini.Adapter{Array: !geminiSSE}
	case EndpointBatchEmbedContents:
		return gemini.Adapter{Batch: true}
	}
	return nil
}

// upstreamAdapter is the adapter that writes endpoint ep's operation for
// a provider of type typ and reads its answers (nil: the provider type
// has no such operation, e.g. embeddings at Anthropic, count-tokens at
// OpenAI). Generate calls go to the shared registry's adapter of the
// type (the one provider-service's probe uses too).
func upstreamAdapter(ep Endpoint, typ string) any {
	op, ok := endpointOp(ep)
	if !ok {
		return nil
	}
	switch op {
	case wire.OpGenerate:
		a, _ := adapters.For(typ)
		return a
	case wire.OpEmbed:
		switch typ {
		case internalapi.TypeGemini:
			return gemini.Adapter{}
		case internalapi.TypeOpenAI, internalapi.TypeAzureOpenAI, internalapi.TypeOpenAICompatible:
			return openaiembed.Adapter{}
		}
	case wire.OpCountTokens:
		switch typ {
		case internalapi.TypeGemini:
			return gemini.Adapter{}
		case internalapi.TypeAnthropic:
			return anthropic.Adapter{}
		}
	}
	return nil
}

// crossFamily is the router's test, per endpoint, of whether a call can
// be translated for a provider of another family (nil: never). Built
// once, so routing allocates nothing for it.
var crossFamily = func() (t [EndpointModels + 1]func(providerType string) bool) {
	for ep := range t {
		ep := Endpoint(ep)
		if clientAdapter(ep, false) != nil {
			t[ep] = func(typ string) bool { return upstreamAdapter(ep, typ) != nil }
		}
	}
	return t
}()
