// Package service adapts Hertz requests to the relay use case: it reads
// the capped body, the key from each SDK's own header, the client address
// and the request id, and writes the relay's answer (JSON or a stream
// flushed per event) back through Hertz.
package service

import (
	"bytes"
	"context"
	"io"
	"net/netip"
	"sync"
	"time"

	"github.com/cloudwego/hertz/pkg/app"
	"github.com/cloudwego/hertz/pkg/network"
	"github.com/cloudwego/hertz/pkg/protocol"
	"github.com/cloudwego/hertz/pkg/protocol/http1/resp"
	"go.opentelemetry.io/otel"

	"github.com/lurus-switch/lurus-switch/gateway-service/internal/biz"
	"github.com/lurus-switch/lurus-switch/lurus-common/apperr"
	"github.com/lurus-switch/lurus-switch/lurus-common/clientip"
	"github.com/lurus-switch/lurus-switch/lurus-common/edge"
	"github.com/lurus-switch/lurus-switch/lurus-common/requestid"
)

// Config tunes the adapter.
type Config struct {
	MaxBodyBytes int
	// ClientIP finds the client behind server.trusted_proxies.
	ClientIP clientip.Resolver
}

// Relay serves the relay routes.
type Relay struct {
	cfg   Config
	relay *biz.Relay
	pool  sync.Pool // *bytes.Buffer
	// inflight counts handlers running, so shutdown can wait for them.
	inflight drain
}

// Wait refuses new requests from now on (503 SHUTTING_DOWN) and blocks
// until every in-flight request finished (and told the rate limits so) or
// ctx ends.
func (s *Relay) Wait(ctx context.Context) error {
	if err := s.inflight.wait(ctx); err != nil {
		return err
	}
	return s.relay.WaitBackground(ctx) // the rate-limit Finish of the last requests
}

// errShuttingDown answers a request that arrives once shutdown has begun.
var errShuttingDown = apperr.New(apperr.ReasonShuttingDown, "the gateway is shutting down; retry")

// refuse answers a request that arrives during shutdown, closing its
// connection so the client's retry goes to a fresh one.
func (s *Relay) refuse(ctx *app.RequestContext, f biz.Format) {
	ctx.SetConnectionClose()
	s.fail(ctx, f, errShuttingDown)
}

// NewRelay returns the adapter.
func NewRelay(cfg Config, r *biz.Relay) *Relay {
	s := &Relay{cfg: cfg, relay: r}
	s.pool.New = func() any { return new(bytes.Buffer) }
	return s
}

// maxPooledBuffer keeps huge request buffers out of the pool.
const maxPooledBuffer = 1 << 20

// forwardHeaders may go upstream from the client; everything else (its
// credentials, cookies, hop-by-hop and X-Forwarded-* headers) never does.
var forwardHeaders = []string{
	"Content-Type", "Accept", "User-Agent", "Anthropic-Version", "Anthropic-Beta", "Openai-Beta",
}

// Endpoint returns the handler of a fixed-path endpoint.
func (s *Relay) Endpoint(ep biz.Endpoint) func(context.Context, *app.RequestContext) {
	return func(c context.Context, ctx *app.RequestContext) { s.serve(c, ctx, ep, "") }
}

// Gemini serves POST /v1beta/models/{model}:{action}. The route is read
// from the path as the client sent it (URI().PathOriginal(), not Hertz's
// decoded and normalized path or its param), so the model segment is
// decoded exactly once, by biz.ParseGeminiPath; a bad model or action is
// refused with 400 in Gemini's format before anything else happens.
func (s *Relay) Gemini(c context.Context, ctx *app.RequestContext) {
	model, ep, err := biz.ParseGeminiPath(string(ctx.Request.URI().PathOriginal()))
	if err != nil {
		s.fail(ctx, biz.FormatGemini, err)
		return
	}
	s.serve(c, ctx, ep, model)
}

// Models serves GET /v1/models (OpenAI, or Anthropic's list when the
// request carries Anthropic headers) and GET /v1beta/models (Gemini).
func (s *Relay) Models(f biz.Format) func(context.Context, *app.RequestContext) {
	return func(c context.Context, ctx *app.RequestContext) {
		if !s.inflight.enter() {
			s.refuse(ctx, f)
			return
		}
		defer s.inflight.leave()
		ff := f
		if f == biz.FormatOpenAI && (len(ctx.Request.Header.Peek("X-Api-Key")) > 0 || len(ctx.Request.Header.Peek("Anthropic-Version")) > 0) {
			ff = biz.FormatAnthropic
		}
		req := s.newRequest(ctx, ff)
		s.relay.ListModels(s.traceContext(c, ctx), req, ff, &writer{ctx: ctx})
	}
}

// NotFound answers unknown routes in the format the path implies.
func (s *Relay) NotFound(_ context.Context, ctx *app.RequestContext) {
	s.fail(ctx, biz.FormatForPath(string(ctx.Path())), apperr.New(apperr.ReasonRouteNotFound, "no such route"))
}

func (s *Relay) fail(ctx *app.RequestContext, f biz.Format, err error) {
	status, body := biz.ErrorBody(f, err)
	ctx.Response.Header.Set(requestid.Header, requestid.New())
	ctx.Data(status, "application/json", body)
}

func (s *Relay) serve(c context.Context, ctx *app.RequestContext, ep biz.Endpoint, pathModel string) {
	if !s.inflight.enter() {
		s.refuse(ctx, ep.Format())
		return
	}
	defer s.inflight.leave()
	var buf *bytes.Buffer
	defer func() {
		if buf != nil && buf.Cap() <= maxPooledBuffer {
			s.pool.Put(buf)
		}
	}()
	req := s.newRequest(ctx, ep.Format())
	req.Endpoint, req.PathModel = ep, pathModel
	// The body is read only once biz has verified the key.
	req.ReadBody = func() ([]byte, error) {
		buf = s.pool.Get().(*bytes.Buffer)
		buf.Reset()
		if err := s.readBody(ctx, buf); err != nil {
			ctx.SetConnectionClose()
			return nil, err
		}
		return buf.Bytes(), nil
	}
	req.GeminiSSE = string(ctx.QueryArgs().Peek("alt")) == "sse"
	for _, h := range forwardHeaders {
		if v := ctx.Request.Header.Peek(h); len(v) > 0 {
			req.Forward = append(req.Forward, biz.Header{Key: h, Value: string(v)})
		}
	}
	s.relay.Handle(s.traceContext(c, ctx), req, &writer{ctx: ctx})
}

func (s *Relay) traceContext(c context.Context, ctx *app.RequestContext) context.Context {
	if len(ctx.Request.Header.Peek("Traceparent")) == 0 {
		return c
	}
	return otel.GetTextMapPropagator().Extract(c, reqCarrier{&ctx.Request.Header})
}

// readBody reads the request body into buf, refusing more than the cap
// with 413 (in the caller's format, unlike Hertz's own plain-text 413).
func (s *Relay) readBody(ctx *app.RequestContext, buf *bytes.Buffer) error {
	tooLarge := apperr.Newf(apperr.ReasonBodyTooLarge, "request body exceeds %d bytes", s.cfg.MaxBodyBytes)
	if cl := ctx.Request.Header.ContentLength(); cl > s.cfg.MaxBodyBytes {
		return tooLarge
	}
	var r io.Reader
	if ctx.Request.IsBodyStream() {
		r = ctx.Request.BodyStream()
	} else {
		r = bytes.NewReader(ctx.Request.Body())
	}
	n, err := buf.ReadFrom(io.LimitReader(r, int64(s.cfg.MaxBodyBytes)+1))
	if err != nil {
		return apperr.Wrap(err, apperr.ReasonInvalidArgument, "cannot read the request body")
	}
	if n > int64(s.cfg.MaxBodyBytes) {
		return tooLarge
	}
	return nil
}

func (s *Relay) newRequest(ctx *app.RequestContext, f biz.Format) *biz.Request {
	return &biz.Request{
		ID:        requestid.New(),
		ClientID:  clientRequestID(ctx),
		APIKey:    apiKey(ctx, f),
		ClientIP:  s.clientIP(ctx),
		UserAgent: string(ctx.Request.Header.UserAgent()),
		Started:   time.Now(),
	}
}

// apiKey reads the Lurus key the way each SDK sends it: Authorization:
// Bearer (OpenAI), x-api-key (Anthropic), x-goog-api-key (Gemini); any of
// these headers is accepted on any route. ?key= (the Gemini SDKs' other
// way) is read only on /v1beta routes: elsewhere no SDK sends it, and a
// key in a URL ends up in access logs and browser histories, so it is
// ignored there (the request is then unauthenticated unless a header
// carries a key).
func apiKey(ctx *app.RequestContext, f biz.Format) string {
	if k := edge.APIKey(func(name string) string { return string(ctx.Request.Header.Peek(name)) }); k != "" {
		return k
	}
	if f == biz.FormatGemini { // the /v1beta routes, and only they
		if v := ctx.QueryArgs().Peek("key"); len(v) > 0 {
			return string(v)
		}
	}
	return ""
}

// clientIP is the client address (lurus-common/clientip) from Hertz's
// peer address and X-Forwarded-For lines.
func (s *Relay) clientIP(ctx *app.RequestContext) netip.Addr {
	peer := clientip.Peer(ctx.RemoteAddr())
	if !s.cfg.ClientIP.Trusts(peer) {
		return peer // the common case: no header is read
	}
	lines := ctx.Request.Header.PeekAll(clientip.Header)
	xff := make([]string, len(lines))
	for i, v := range lines {
		xff[i] = string(v)
	}
	return s.cfg.ClientIP.Resolve(peer, xff...)
}

// clientRequestID is the client's own X-Request-Id (or X-Client-Request-Id)
// when it is a valid UUID or ULID. It is echoed and logged, never used as
// the request id: billing settles each request id once, so an id the
// client chooses could make every repeat of it free.
func clientRequestID(ctx *app.RequestContext) string {
	for _, h := range []string{requestid.Header, biz.HeaderClientRequestID} {
		if v := string(ctx.Request.Header.Peek(h)); requestid.Valid(v) {
			return v
		}
	}
	return ""
}

// writer is biz.ClientWriter over a Hertz request context.
type writer struct {
	ctx *app.RequestContext
	w   network.ExtWriter
}

func (w *writer) SetHeader(k, v string) { w.ctx.Response.Header.Set(k, v) }

func (w *writer) WriteBody(status int, ct string, body []byte) {
	w.ctx.Response.SetStatusCode(status)
	w.ctx.Response.Header.SetContentType(ct)
	w.ctx.Response.SetBody(body) // a copy into Hertz's pooled buffer: the caller reuses body
}

func (w *writer) StartStream(status int, ct string) error {
	w.ctx.Response.SetStatusCode(status)
	w.ctx.Response.Header.SetContentType(ct)
	w.w = resp.NewChunkedBodyWriter(&w.ctx.Response, w.ctx.GetWriter())
	w.ctx.Response.HijackWriter(w.w)
	return nil
}

func (w *writer) WriteChunk(p []byte) error {
	if _, err := w.w.Write(p); err != nil {
		return err
	}
	return w.w.Flush()
}

// reqCarrier reads W3C trace headers from a Hertz request.
type reqCarrier struct{ h *protocol.RequestHeader }

func (c reqCarrier) Get(k string) string { return string(c.h.Peek(k)) }
func (c reqCarrier) Set(k, v string)     { c.h.Set(k, v) }
func (c reqCarrier) Keys() []string      { return []string{"traceparent", "tracestate"} }
