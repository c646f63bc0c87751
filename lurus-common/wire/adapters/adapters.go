// Package adapters finds the wire adapter that speaks a provider type's
// API, so the gateway's relay and provider-service's probe ask one table
// instead of each keeping its own switch on the vendor. An adapter value
// implements some of the wire interfaces; As finds one of them by type
// assertion.
package adapters

import (
	"github.com/lurus-switch/lurus-switch/lurus-common/internalapi"
	"github.com/lurus-switch/lurus-switch/lurus-common/wire"
	"github.com/lurus-switch/lurus-switch/lurus-common/wire/anthropic"
	"github.com/lurus-switch/lurus-switch/lurus-common/wire/gemini"
	"github.com/lurus-switch/lurus-switch/lurus-common/wire/openaichat"
)

// generate maps a provider type to the adapter of its generate API (chat
// completions, Messages, generateContent).
var generate = map[string]any{
	internalapi.TypeOpenAI:           openaichat.Adapter{},
	internalapi.TypeAzureOpenAI:      openaichat.Adapter{},
	internalapi.TypeOpenAICompatible: openaichat.Adapter{},
	internalapi.TypeAnthropic:        anthropic.Adapter{},
	internalapi.TypeGemini:           gemini.Adapter{},
}

// For returns the adapter of providerType's generate API; ok is false for
// a type no adapter speaks (yet).
func For(providerType string) (adapter any, ok bool) {
	a, ok := generate[providerType]
	return a, ok
}

// As returns the ability T (wire.RequestWriter, wire.ErrorDecoder, …) of
// providerType's adapter; ok is false when there is no adapter or it
// lacks T.
func As[T any](providerType string) (T, bool) {
	a, ok := generate[providerType].(T)
	return a, ok
}

// Writer returns the writer of upstream requests for providerType.
func Writer(providerType string) (wire.RequestWriter, bool) {
	return As[wire.RequestWriter](providerType)
}

// ErrorDecoder returns the reader of providerType's error bodies.
func ErrorDecoder(providerType string) (wire.ErrorDecoder, bool) {
	return As[wire.ErrorDecoder](providerType)
}

// Locator returns what places calls at a providerType's API (URL and
// credential header), for every operation of its family.
func Locator(providerType string) (wire.Locator, bool) {
	return As[wire.Locator](providerType)
}
