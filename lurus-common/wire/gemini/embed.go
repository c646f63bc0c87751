package gemini

import (
	"encoding/json"
	"strings"

	"github.com/lurus-switch/lurus-switch/lurus-common/apperr"
	"github.com/lurus-switch/lurus-switch/lurus-common/wire"
)

// readEmbed reads embedContent ({content, outputDimensionality, …}) or
// batchEmbedContents ({requests:[{model, content, …}]}) into Input and
// Dimensions. The parts of one content are one input, their texts joined.
// taskType and title tune the vector for a use no other vendor knows; they
// are dropped as hints.
func readEmbed(top object, req *wire.Request) error {
	reqs, err := top.takeArray("requests")
	if err != nil {
		return err
	}
	if reqs == nil {
		return readOneEmbed(top, req, true)
	}
	req.Refused = top.refuseRest(req.Refused, "")
	for i, raw := range reqs {
		o, err := parseObject(raw, "requests[]")
		if err != nil {
			return err
		}
		if err := readOneEmbed(o, req, i == 0); err != nil {
			return err
		}
	}
	return nil
}

func readOneEmbed(o object, req *wire.Request, first bool) error {
	o.drop("model", "taskType", "title")
	var dims int64
	if _, err := o.takeInto("outputDimensionality", &dims); err != nil {
		return err
	}
	if first {
		req.Dimensions = dims
	} else if dims != req.Dimensions {
		// One size per call is all other vendors can say.
		req.Refused = append(req.Refused, "outputDimensionality")
	}
	c, err := o.takeObject("content")
	if err != nil {
		return err
	}
	if c == nil {
		return apperr.New(apperr.ReasonInvalidArgument, "embedding request without content")
	}
	c.drop("role")
	parts, err := c.takeArray("parts")
	if err != nil {
		return err
	}
	var text strings.Builder
	for _, raw := range parts {
		p, err := parseObject(raw, "content.parts[]")
		if err != nil {
			return err
		}
		var s string
		if _, err := p.takeInto("text", &s); err != nil {
			return err
		}
		text.WriteString(s)
		req.Refused = p.refuseRest(req.Refused, "content.parts.")
	}
	req.Refused = c.refuseRest(req.Refused, "content.")
	req.Refused = o.refuseRest(req.Refused, "")
	req.Input = append(req.Input, text.String())
	return nil
}

// embedBody is the batchEmbedContents body for model: one request per
// input, which serves a single input as well.
func embedBody(req *wire.Request, model string) ([]byte, error) {
	if len(req.Input) == 0 {
		return nil, apperr.New(apperr.ReasonInvalidArgument, "embedding request without input")
	}
	b := gBatchEmbedRequest{Requests: make([]gEmbedRequest, len(req.Input))}
	for i, in := range req.Input {
		b.Requests[i] = gEmbedRequest{
			Model:                "models/" + model,
			Content:              gContent{Parts: []gPart{{Text: &in}}},
			OutputDimensionality: req.Dimensions,
		}
	}
	return marshal(b)
}

// encodeEmbeddings writes embedContent's or batchEmbedContents' answer.
func (a Adapter) encodeEmbeddings(vs [][]float64) ([]byte, error) {
	if !a.Batch {
		if len(vs) != 1 {
			return nil, apperr.Newf(apperr.ReasonInternal, "embedContent answer with %d vectors", len(vs))
		}
		return marshal(gEmbedResponse{Embedding: &gValues{Values: nonNil(vs[0])}})
	}
	out := struct {
		Embeddings []gValues `json:"embeddings"`
	}{Embeddings: make([]gValues, len(vs))}
	for i, v := range vs {
		out.Embeddings[i].Values = nonNil(v)
	}
	return marshal(out)
}

func nonNil(v []float64) []float64 {
	if v == nil {
		return []float64{}
	}
	return v
}

// decodeEmbeddings reads either embedding answer; ok is false when body
// is neither.
func decodeEmbeddings(body []byte) (vs [][]float64, ok bool) {
	var e gEmbedResponse
	if json.Unmarshal(body, &e) != nil {
		return nil, false
	}
	switch {
	case e.Embedding != nil:
		return [][]float64{e.Embedding.Values}, true
	case e.Embeddings != nil:
		vs = make([][]float64, len(e.Embeddings))
		for i, v := range e.Embeddings {
			vs[i] = v.Values
		}
		return vs, true
	}
	return nil, false
}
