package biz

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/lurus-switch/lurus-switch/lurus-common/apperr"
	"github.com/lurus-switch/lurus-switch/lurus-common/wire"
)

// translation is one request's protocol translation: the client's
// adapter and the client's body read once into the canonical request,
// shared by every translated attempt of the request.
type translation struct {
	client any
	req    wire.Request
}

// loadTranslation returns the request's translation, reading the body on
// first use. The body was already checked strictly (ParseRequest); the
// route decides the operation, and for Gemini the model and streaming.
// The output cap is the one the hold priced, per choice.
func loadTranslation(req *Request, info RequestInfo, x **translation) (*translation, error) {
	if *x != nil {
		return *x, nil
	}
	t := &translation{client: clientAdapter(req.Endpoint, req.GeminiSSE)}
	rd, ok := t.client.(wire.RequestReader)
	op, okOp := endpointOp(req.Endpoint)
	if !ok || !okOp {
		return nil, apperr.Newf(apperr.ReasonNoProvider, "%s calls are not translated", req.Endpoint)
	}
	t.req.Op = op
	if req.Endpoint.Format().routed() {
		t.req.Model, t.req.Stream = info.Model, info.Stream
	}
	if err := rd.ReadRequest(req.Body, &t.req); err != nil {
		return nil, err
	}
	t.req.Model = info.Model
	t.req.MaxOutputTokens = info.OutputCap
	*x = t
	return t, nil
}

// neutralHeader reports whether a client header may go to an upstream of
// another family: only what means the same to every vendor (never
// anthropic-version or anthropic-beta, which name Anthropic's API).
func neutralHeader(k string) bool {
	return strings.EqualFold(k, "Content-Type") || strings.EqualFold(k, "Accept") || strings.EqualFold(k, "User-Agent")
}

// buildTranslated makes the upstream call of translated candidate c: the
// upstream adapter writes URL, credential and body; the client's neutral
// headers and the provider's own come first, the writer's win. A field
// the upstream cannot express is 400 UNSUPPORTED_PARAMETER naming it.
func (r *Relay) buildTranslated(req *Request, info RequestInfo, c *Candidate, x **translation) (*UpstreamRequest, error) {
	t, err := loadTranslation(req, info, x)
	if err != nil {
		return nil, err
	}
	p := c.Provider
	wr, ok := upstreamAdapter(req.Endpoint, p.Type).(wire.RequestWriter)
	if !ok {
		return nil, apperr.Newf(apperr.ReasonNoProvider, "%s calls are not translated for %s providers", req.Endpoint, p.Type)
	}
	hr, err := wr.WriteRequest(&t.req, wire.Upstream{Type: p.Type, BaseURL: p.BaseURL, APIVersion: p.APIVersion,
		Secret: c.Key.Secret, Model: c.UpstreamModel})
	if err != nil {
		var un *wire.Unsupported
		if errors.As(err, &un) {
			return nil, apperr.New(apperr.ReasonUnsupportedParameter, un.Error())
		}
		return nil, err
	}
	u := &UpstreamRequest{Provider: p, Method: http.MethodPost, URL: hr.URL, Body: hr.Body, Timeouts: p.Timeouts,
		Headers: make([]Header, 0, len(req.Forward)+len(p.Headers)+len(hr.Headers))}
	for _, h := range req.Forward {
		if neutralHeader(h.Key) {
			u.Headers = append(u.Headers, h)
		}
	}
	for k, v := range p.Headers {
		u.Headers = append(u.Headers, Header{k, v})
	}
	for _, h := range hr.Headers {
		u.Headers = append(u.Headers, Header{h.Key, h.Value})
	}
	return u, nil
}

// translatedError renders an upstream error body of provider type typ in
// the client's format with the same status: the upstream's message, the
// reason UPSTREAM_ERROR.
func translatedError(f Format, ep Endpoint, typ string, status int, body []byte) []byte {
	msg := "upstream error"
	if d, ok := upstreamAdapter(ep, typ).(wire.ErrorDecoder); ok {
		if m := d.DecodeError(body); m != "" {
			msg = m
		}
	}
	return f.family().errors.RenderError(status, string(apperr.ReasonUpstreamError), msg)
}

// respondTranslated answers the client from a translated attempt: a 4xx
// in the client's error format, a complete answer decoded and encoded
// again, or a stream translated event by event (streamTranslated). Usage
// is the upstream's, mapped field by field; without it the local count,
// as on pass-through.
func (r *Relay) respondTranslated(req *Request, w ClientWriter, o *Outcome, info RequestInfo, c *Candidate,
	t *translation, resp UpstreamResponse, t0 time.Time) error {
	status := resp.StatusCode()
	o.StatusCode = status
	copyResponseHeaders(resp, w)
	up := upstreamAdapter(req.Endpoint, c.Provider.Type)
	deadline := t0.Add(c.Provider.Timeouts.Total)
	if status/100 == 2 && info.Stream {
		return r.streamTranslated(req, w, o, c, t, up, resp, deadline)
	}
	bp := r.getBuf()
	defer r.putBuf(bp)
	body, err := r.readAnswer(resp, deadline, o, bp)
	if err != nil {
		return err
	}
	if status/100 != 2 {
		// The upstream refused the request itself (the client's fault):
		// its message in the client's format, nothing to bill.
		w.WriteBody(status, "application/json", translatedError(o.Format, req.Endpoint, c.Provider.Type, status, body))
		o.Status, o.ErrorReason = StatusRejected, string(apperr.ReasonUpstreamError)
		return nil
	}
	dec, _ := up.(wire.ResponseDecoder)
	enc, _ := t.client.(wire.ResponseEncoder)
	if dec == nil || enc == nil {
		return apperr.New(apperr.ReasonInternal, "no answer codec for a translated call")
	}
	ans, err := dec.DecodeResponse(body)
	if err != nil {
		o.Status = StatusUpstreamError
		return apperr.Wrap(err, apperr.ReasonUpstreamError, "upstream answer could not be read")
	}
	out, err := enc.EncodeResponse(ans, &t.req)
	if err != nil {
		return apperr.Wrap(err, apperr.ReasonInternal, "cannot encode the answer")
	}
	w.WriteBody(status, "application/json", out)
	o.Status = StatusOK
	r.settleUsage(req, o, usageOf(ans.Usage), ans.HasUsage, true, (*answerGen)(ans))
	return nil
}

// usageOf maps canonical usage to the gateway's (the same normalization).
func usageOf(u wire.Usage) Usage {
	return Usage{Prompt: u.Prompt, Completion: u.Completion, Cached: u.Cached, CacheWrite: u.CacheWrite, Reasoning: u.Reasoning}
}

// answerGen is a complete answer as the generated text it holds.
type answerGen wire.Response

// DeliveredText is the generated text of a complete answer (text,
// reasoning, tool-call arguments), for the local count when upstream gave
// no usage.
func (a *answerGen) DeliveredText() []byte {
	var out []byte
	for _, p := range a.Parts {
		switch {
		case p.Kind == wire.PartText || p.Kind == wire.PartReasoning:
			out = append(out, p.Text...)
		case p.Kind == wire.PartToolCall && p.ToolCall != nil:
			out = append(out, p.ToolCall.Arguments...)
		}
	}
	return out
}

// streamTranslated relays an upstream stream to the client in the
// client's format: each upstream SSE event is decoded into canonical
// events, which the client's encoder writes; one write (and flush) per
// upstream event that produced output. The usage is the last one upstream
// reported. The output allowance is defended as on pass-through (see
// xstream.over); a client that goes away leaves upstream read, bounded by
// DrainTimeout, so the real usage is known; an upstream that fails after
// bytes were sent ends the client's stream with an error event.
func (r *Relay) streamTranslated(req *Request, w ClientWriter, o *Outcome, c *Candidate, t *translation, up any,
	resp UpstreamResponse, deadline time.Time) error {
	sd, _ := up.(wire.StreamDecoder)
	se, _ := t.client.(wire.StreamEncoder)
	if sd == nil || se == nil {
		return apperr.New(apperr.ReasonInternal, "no stream codec for a translated call")
	}
	ct := "text/event-stream"
	if req.arrayStream() {
		ct = "application/json" // a streamed JSON array, as Gemini sends one
	}
	r.Metrics.StreamStarted()
	defer r.Metrics.StreamEnded()
	cs := r.startStream(req, w, o, resp.StatusCode(), ct, resp, deadline)
	s := &xstream{dec: sd.NewStreamDecoder(), enc: se.NewStreamEncoder(&t.req), held: o.HeldOutputTokens, tokens: r.Tokens,
		prompt: func() int64 { return r.Tokens.Count(PromptText(req.Body)) }, write: cs.write}
	cs.soFar = func() (Usage, bool) { return usageOf(s.usage), s.hasUsage }
	bp := r.getBuf()
	s.pump(cs.src, *bp)
	r.putBuf(bp)
	cs.end(s.clientErr, s.upstreamErr)
	if s.cut {
		o.Usage, o.UsageSource = s.cutUsage, SourceUpstream
		if !s.promptKnown() {
			o.UsageSource = SourceEstimated
		}
		r.Metrics.OutputCapEnforced(o.ProviderID)
		return nil
	}
	r.settleUsage(req, o, usageOf(s.usage), s.hasUsage, true, s)
	return nil
}

// errStreamUnreadable ends a translated stream whose upstream sent an
// event its decoder could not read.
var errStreamUnreadable = errors.New("upstream stream event could not be read")

// xstream is one translated stream in flight.
type xstream struct {
	dec    wire.EventDecoder
	enc    wire.EventEncoder
	write  func([]byte) error
	held   int64
	tokens TokenCounter
	prompt func() int64

	usage    wire.Usage
	hasUsage bool
	out      outputCount
	// delivered is the generated text that reached the client (bounded
	// by maxDelivered), for the local counts.
	delivered []byte
	events    []wire.Event
	scratch   []byte
	dst       []byte
	units     int

	cut         bool
	cutUsage    Usage
	upstreamErr error
	clientErr   error
}

func (s *xstream) send(b []byte) {
	if s.clientErr != nil || len(b) == 0 {
		return
	}
	if err := s.write(b); err != nil {
		s.clientErr = err
		return
	}
	s.units++
}

// DeliveredText is the generated text that reached the client.
func (s *xstream) DeliveredText() []byte { return s.delivered }

// promptKnown reports whether upstream has reported a prompt count.
func (s *xstream) promptKnown() bool { return s.hasUsage && s.usage.Prompt > 0 }

func (s *xstream) count(text []byte) int64 {
	if s.tokens == nil {
		return int64(len(text))
	}
	return s.tokens.Count(text)
}

// pump reads src to its end (or the cut), translating event by event.
func (s *xstream) pump(src io.Reader, buf []byte) {
	var fr SSEFramer
	for {
		n, err := src.Read(buf)
		if n > 0 {
			fr.Feed(buf[:n])
			for {
				_, doc, ok := fr.Next()
				if !ok {
					break
				}
				if len(doc) == 0 || bytes.Equal(doc, doneMark) {
					continue
				}
				if !s.unit(doc) {
					return
				}
			}
		}
		if err == nil {
			continue
		}
		if !errors.Is(err, io.EOF) {
			s.upstreamErr = err
		}
		break
	}
	if s.upstreamErr == nil {
		s.send(s.enc.End(s.dst[:0]))
		return
	}
	s.send(s.enc.Encode(s.dst[:0], wire.Event{Kind: wire.EventError, Text: ErrStreamCut.Error()}))
}

// unit translates one upstream event; false ends the stream (cut at the
// allowance, or an unreadable event).
func (s *xstream) unit(doc []byte) bool {
	s.events = s.events[:0]
	if err := s.dec.Decode(doc, func(ev wire.Event) { s.events = append(s.events, ev) }); err != nil {
		s.upstreamErr = errStreamUnreadable
		s.send(s.enc.Encode(s.dst[:0], wire.Event{Kind: wire.EventError, Text: ErrStreamCut.Error()}))
		return false
	}
	if s.held > 0 && s.over() {
		s.stop()
		return false
	}
	dst := s.dst[:0]
	for _, ev := range s.events {
		switch ev.Kind {
		case wire.EventUsage:
			s.usage, s.hasUsage = ev.Usage, true
		case wire.EventText, wire.EventReasoning, wire.EventToolArgs:
			if len(s.delivered)+len(ev.Text) <= maxDelivered {
				s.delivered = append(s.delivered, ev.Text...)
			}
		}
		dst = s.enc.Encode(dst, ev)
	}
	s.dst = dst
	s.send(dst)
	return true
}

// over reports whether delivering the events of this unit would take the
// output past the allowance: by upstream's own cumulative count, or by
// the count of generated text delivered (bytes first, then the local
// tokenizer, as StreamEditor does on pass-through).
func (s *xstream) over() bool {
	s.scratch = s.scratch[:0]
	for _, ev := range s.events {
		switch ev.Kind {
		case wire.EventUsage:
			if ev.Usage.Completion > s.held {
				return true
			}
		case wire.EventText, wire.EventReasoning, wire.EventToolArgs:
			s.scratch = append(s.scratch, ev.Text...)
		}
	}
	s.out.textOn = true
	return s.out.textOver(s.held, s.scratch, s.DeliveredText, s.count)
}

// stop ends a stream cut at its allowance the way the client's format
// ends one that reached its max tokens: finish "length", the usage billed
// and the format's end; the unit that went over is not delivered.
func (s *xstream) stop() {
	s.cut = true
	s.cutUsage = s.out.cutUsage(usageOf(s.usage), s.promptKnown(), s.prompt, s.held, s.DeliveredText, s.count)
	u := s.cutUsage
	dst := s.enc.Encode(s.dst[:0], wire.Event{Kind: wire.EventFinish, Finish: wire.FinishLength})
	dst = s.enc.Encode(dst, wire.Event{Kind: wire.EventUsage, Usage: u.wire()})
	s.send(s.enc.End(dst))
}

// countsLocally reports whether a count-tokens call that found no
// provider (err) is answered by the local tokenizer: the model is served,
// but only by providers whose API has no count call (OpenAI's family).
func (r *Relay) countsLocally(ep Endpoint, f Format, model string, err error) bool {
	op, ok := endpointOp(ep)
	return ok && op == wire.OpCountTokens && apperr.ReasonOf(err) == apperr.ReasonModelNotFound && r.Router.Lists(f, model)
}

// countLocally answers a count-tokens call with the local tokenizer's
// count of the prompt text, in the client's format. Nothing is billed.
func (r *Relay) countLocally(req *Request, w ClientWriter, o *Outcome, info RequestInfo) error {
	enc, ok := clientAdapter(req.Endpoint, req.GeminiSSE).(wire.ResponseEncoder)
	if !ok {
		return apperr.New(apperr.ReasonInternal, "no count-tokens encoder")
	}
	n := r.Tokens.Count(PromptText(req.Body))
	body, err := enc.EncodeResponse(&wire.Response{InputTokens: n}, &wire.Request{Op: wire.OpCountTokens, Model: info.Model})
	if err != nil {
		return apperr.Wrap(err, apperr.ReasonInternal, "cannot encode the count")
	}
	w.WriteBody(http.StatusOK, "application/json", body)
	o.StatusCode, o.Status = http.StatusOK, StatusOK
	return nil
}
