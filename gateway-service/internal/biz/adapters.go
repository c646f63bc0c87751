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

// family is what the gateway asks of a format's adapter outside any one
// endpoint: its error bodies, the error that ends a client stream, its
// model list.
type family struct {
	errors wire.ErrorRenderer
	// streamError frames a stream's error: [0] in SSE, [1] in a streamed
	// JSON array.
	streamError [2]wire.StreamErrorWriter
	models      wire.ModelLister
}

// families holds each format's family adapter, by Format.
var families = [...]family{
	FormatOpenAI:    newFamily(openaichat.Adapter{}, openaichat.Adapter{}),
	FormatAnthropic: newFamily(anthropic.Adapter{}, anthropic.Adapter{}),
	FormatGemini:    newFamily(gemini.Adapter{}, gemini.Adapter{Array: true}),
}

// familyAdapter is the abilities every family adapter has.
type familyAdapter interface {
	wire.ErrorRenderer
	wire.StreamErrorWriter
	wire.ModelLister
}

func newFamily(sse, array familyAdapter) family {
	return family{errors: sse, streamError: [2]wire.StreamErrorWriter{sse, array}, models: sse}
}

func (f Format) family() *family { return &families[f.info()] }

// relayed is what the gateway asks of the adapter of an endpoint it
// relays as bytes: where answers hold usage, text and the model, and how
// a stream cut at its allowance ends (nil: the endpoint does not stream).
type relayed struct {
	layout *wire.MeterLayout
	cutter wire.StreamCutter
}

// relays holds each endpoint's, by Endpoint. The legacy completions are
// only ever relayed; they have an adapter for that alone.
var relays = func() (t [EndpointModels + 1]relayed) {
	for ep := range t {
		a := clientAdapter(Endpoint(ep), true)
		if Endpoint(ep) == EndpointCompletions {
			a = openaichat.Completions{}
		}
		t[ep].layout = &wire.MeterLayout{}
		if m, ok := a.(wire.Metered); ok {
			t[ep].layout = m.MeterLayout()
		}
		t[ep].cutter, _ = a.(wire.StreamCutter)
	}
	return t
}()

func (ep Endpoint) relayed() *relayed { return &relays[ep] }
