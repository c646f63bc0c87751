package openaiembed

import (
	"github.com/lurus-switch/lurus-switch/lurus-common/wire"
	"github.com/lurus-switch/lurus-switch/lurus-common/wire/openaichat"
)

// layout: chat's usage object, whose prompt count some compatible servers
// give only as total_tokens (an embedding has no output). No text.
var layout = wire.MeterLayout{
	BodyUsage:   "usage",
	StreamUsage: wire.Paths{Default: []string{"usage"}},
	Usage: append(append([]wire.UsageField(nil), openaichat.UsageFields...),
		wire.UsageField{Key: "total_tokens", Counter: wire.CounterPrompt, IfUnset: true}),
	BodyModel:   "model",
	StreamModel: wire.Paths{Default: []string{"model"}},
}

// MeterLayout describes embedding answers.
func (Adapter) MeterLayout() *wire.MeterLayout { return &layout }
