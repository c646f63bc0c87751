package biz

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"net/netip"
	"strings"
	"sync"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/lurus-switch/lurus-switch/lurus-common/apperr"
	"github.com/lurus-switch/lurus-switch/lurus-common/authguard"
	"github.com/lurus-switch/lurus-switch/lurus-common/modelname"
	"github.com/lurus-switch/lurus-switch/lurus-common/requestid"
	"github.com/lurus-switch/lurus-switch/lurus-common/wire"
	"github.com/lurus-switch/lurus-switch/lurus-common/wire/adapters"
)

// RelayConfig tunes the relay.
type RelayConfig struct {
	MaxAttempts      int
	DrainTimeout     time.Duration
	MaxResponseBytes int
	// MaxChoices bounds n, best_of and candidateCount (400 above).
	MaxChoices int64
}

// Relay is the hot path use case: authenticate, authorize, route, admit,
// relay with failover, meter and emit.
type Relay struct {
	Cfg  RelayConfig
	Keys *KeyCache
	// Guard refuses client addresses with too many failed
	// authentications before their key is looked up (nil: no cap).
	Guard  *authguard.Guard
	Router *Router
	Prices *PriceBook
	// Leases admits requests against per-key leases in Redis.
	Leases   *Leases
	Upstream Upstream
	Budget   *RetryBudget
	Tokens   TokenCounter
	Events   EventSink
	// EventsLost reports whether outcomes are being lost now (nil: never);
	// billable requests are then refused 503 EVENTS_UNAVAILABLE, since
	// their usage could not be billed.
	EventsLost func() bool
	Metrics    Metrics
	Tracer     trace.Tracer
	// Tracing is on when spans are exported; otherwise a request makes
	// spans only to carry a trace context the client sent.
	Tracing bool
	Now     func() time.Time
	// Limits keeps the rate limits of keys, users and upstream keys (nil:
	// none); LimitCfg tunes their use and LimitErrors, when set, hears of
	// failed Charge and Finish calls (limits.go).
	Limits      Limiter
	LimitCfg    LimitConfig
	LimitErrors func(op string, err error)

	bufs sync.Pool      // *[]byte read buffers
	bg   sync.WaitGroup // rate-limit calls after the answer
}

// Request is one client call as the HTTP layer hands it over.
type Request struct {
	// ID is the gateway's own id of the request (a new ULID): the key of
	// its billing.usage and log.write, and X-Request-Id of the answer.
	ID string
	// ClientID is the client's valid X-Request-Id, echoed as
	// X-Client-Request-Id and logged; never the billing key.
	ClientID  string
	Endpoint  Endpoint
	PathModel string // Gemini: the model in the path
	GeminiSSE bool   // Gemini: alt=sse
	// Body is the request body. When ReadBody is set, Body is filled by
	// it only after the key is verified, so an unauthenticated caller's
	// upload is never read into the gateway's buffers; a ReadBody error
	// (413 BODY_TOO_LARGE, a broken upload) is the request's refusal.
	Body      []byte
	ReadBody  func() ([]byte, error)
	APIKey    string
	ClientIP  netip.Addr
	UserAgent string
	// Forward are the client headers allowed upstream (already filtered).
	Forward []Header
	Started time.Time
}

// HeaderClientRequestID echoes a client's own request id (OpenAI's name
// for it); a client may also send its id under this name.
const HeaderClientRequestID = "X-Client-Request-Id"

// setIDHeaders sets X-Request-Id, and X-Client-Request-Id when the
// client sent an id of its own.
func (req *Request) setIDHeaders(w ClientWriter) {
	w.SetHeader(requestid.Header, req.ID)
	if req.ClientID != "" {
		w.SetHeader(HeaderClientRequestID, req.ClientID)
	}
}

// readBody fills Body through ReadBody (once).
func (req *Request) readBody() error {
	if req.ReadBody == nil {
		return nil
	}
	b, err := req.ReadBody()
	req.Body, req.ReadBody = b, nil
	return err
}

// Handle serves one relay request and emits its outcome.
func (r *Relay) Handle(ctx context.Context, req *Request, w ClientWriter) {
	o := &Outcome{
		RequestID: req.ID, ClientRequestID: req.ClientID, Format: req.Endpoint.Format(), Endpoint: req.Endpoint,
		StartedAt: req.Started, ClientIP: req.ClientIP, UserAgent: req.UserAgent,
		UsageSource: SourceNone, Status: StatusRejected,
	}
	req.setIDHeaders(w)
	span := trace.SpanFromContext(ctx) // no-op unless traced
	if r.traced(ctx) {
		ctx, span = r.Tracer.Start(ctx, "gateway "+req.Endpoint.String(), trace.WithSpanKind(trace.SpanKindServer))
	}
	o.Trace = span.SpanContext()
	if o.Trace.HasTraceID() {
		o.TraceID = o.Trace.TraceID().String()
	}
	err := r.handle(ctx, req, w, o)
	if err != nil {
		status, body := ErrorBody(o.Format, err)
		o.StatusCode, o.ErrorReason = status, string(apperr.ReasonOf(err))
		if v := apperr.RetryAfterHeader(err); v != "" {
			w.SetHeader("Retry-After", v)
		}
		if o.Status == StatusRejected || o.Status == "" {
			o.Status = StatusRejected
		}
		w.WriteBody(status, "application/json", body)
		span.SetStatus(codes.Error, o.ErrorReason)
	}
	r.finishLimits(o)
	o.FinishedAt = r.Now()
	span.SetAttributes(attribute.Int("http.status_code", o.StatusCode), attribute.String("lurus.model", o.Model),
		attribute.Int("lurus.attempts", o.Attempts))
	span.End()
	r.Metrics.Request(req.Endpoint.String(), o.metricModel(), o.ProviderID, o.StatusCode, o.FinishedAt.Sub(o.StartedAt))
	if o.UsageSource != SourceNone {
		r.Metrics.Tokens(o.Usage)
	}
	r.Events.Emit(o)
}

// MetricModelOther labels requests no provider entry matched.
const MetricModelOther = "other"

// metricModel is the model label of the request's metrics: the configured
// entry that matched, else "other"; never the caller's string, which any
// glob would let grow into unbounded series.
func (o *Outcome) metricModel() string {
	if o.ModelLabel == "" {
		return MetricModelOther
	}
	return o.ModelLabel
}

// traced reports whether spans are worth making for a request in ctx:
// they are exported, or the client sent a trace context that upstream
// and the events must carry on.
func (r *Relay) traced(ctx context.Context) bool {
	return r.Tracing || trace.SpanContextFromContext(ctx).IsValid()
}

// authenticate verifies the request's key and returns its info, refusing
// it with the reasons every service gives (keyauth.Cache.Verify); a
// client address throttled for failed authentications is refused first
// (429 RATE_LIMITED), without a lookup, and a failure here counts.
func (r *Relay) authenticate(ctx context.Context, req *Request) (KeyInfo, error) {
	if err := r.Guard.Check(req.ClientIP); err != nil {
		return KeyInfo{}, err
	}
	ki, err := r.Keys.Verify(ctx, req.APIKey)
	r.Guard.Observe(req.ClientIP, err)
	return ki, err
}

func (r *Relay) handle(ctx context.Context, req *Request, w ClientWriter, o *Outcome) error {
	ki, err := r.authenticate(ctx, req)
	if err != nil {
		return err
	}
	o.UserID, o.KeyID = ki.UserID, ki.KeyID
	if err := req.readBody(); err != nil {
		return err
	}

	info, err := ParseRequest(req.Endpoint, req.PathModel, req.Body, r.Cfg.MaxChoices)
	if err != nil {
		return err
	}
	if req.Endpoint.HasOutput() {
		info.OutputCap = r.Prices.OutputCap(info.Model, info.MaxOutput)
	}
	o.Model, o.Stream = info.Model, info.Stream
	if err := ki.AuthorizeModel(info.Model, req.ClientIP, r.Now()); err != nil {
		return err
	}
	var candBuf [8]Candidate
	cands, err := r.Router.Route(o.Format, info.Model, crossFamily[req.Endpoint], candBuf[:0])
	if err != nil {
		if r.countsLocally(req.Endpoint, o.Format, info.Model, err) {
			return r.countLocally(req, w, o, info)
		}
		return err
	}
	var h Hold
	if req.Endpoint.Billable() {
		if r.EventsLost != nil && r.EventsLost() {
			return apperr.New(apperr.ReasonEventsDown, "usage cannot be recorded now; retry later")
		}
		if h, err = r.hold(req, &ki, info); err != nil {
			return err
		}
	}
	if w, err = r.admitLimits(ctx, req, w, o, &ki, h.Tokens, h.HeldOutputTokens); err != nil {
		return err
	}
	if req.Endpoint.Billable() {
		adm, err := r.Leases.Admit(ctx, h)
		if err != nil {
			return err
		}
		o.Reserved, o.Admission, o.HeldOutputTokens = true, adm, h.HeldOutputTokens
	}
	return r.relay(ctx, req, w, o, info, cands)
}

// hold is the reservation a request needs: its estimated cost and tokens,
// with the output part priced at the cap upstream is told × choices.
func (r *Relay) hold(req *Request, ki *KeyInfo, info RequestInfo) (Hold, error) {
	out := info.HeldOutput()
	micros, tokens, err := r.Prices.Estimate(info.Model, ki.UserGroup, len(req.Body), out)
	if err != nil {
		return Hold{}, err
	}
	return Hold{ID: req.ID, UserID: ki.UserID, KeyID: ki.KeyID, KeyLimitMicros: ki.SpendLimitMicros,
		Micros: micros, Tokens: tokens, HeldOutputTokens: out}, nil
}

// failure is why an attempt was given up.
type failure uint8

const (
	failNone failure = iota
	failConnect
	failTimeout
	failStatus
	fail429
)

// retryable reports whether an upstream status moves on to the next
// candidate (and counts against the key's breaker).
func retryable(status int) bool {
	return status >= 500 || status == http.StatusTooManyRequests ||
		status == http.StatusUnauthorized || status == http.StatusForbidden
}

func (r *Relay) relay(ctx context.Context, req *Request, w ClientWriter, o *Outcome, info RequestInfo, cands []Candidate) error {
	r.Budget.Earn()
	var (
		last      failure
		all429    = true
		last429   []byte
		retryWait string
		tried     int
		xlate     *translation // read on the first translated attempt
		sat       upstreamSat  // upstream keys found at their rate limits
	)
	for i := range cands {
		c := &cands[i]
		if tried >= r.Cfg.MaxAttempts {
			break
		}
		// A key at its rate limit is skipped like an open breaker: it
		// costs neither an attempt nor retry budget.
		if ok, err := r.admitUpstream(ctx, req, o, c, &sat); err != nil {
			return err
		} else if !ok {
			continue
		}
		if tried > 0 {
			if !r.Budget.Spend() {
				r.dropUpstream(o)
				break
			}
			r.Metrics.Retry()
		}
		if !c.Key.Breaker.Allow() {
			r.dropUpstream(o)
			continue
		}
		tried++
		o.Attempts = tried
		o.ProviderID, o.UpstreamModel, o.ModelLabel = c.Provider.ID, c.UpstreamModel, c.Matched
		o.UpstreamFormat, o.Upstreamed = o.Format, true
		if c.Translate {
			o.UpstreamFormat = ProviderFormat(c.Provider.Type)
		}
		var (
			ureq *UpstreamRequest
			err  error
		)
		if c.Translate {
			ureq, err = r.buildTranslated(req, info, c, &xlate)
		} else {
			ureq, err = r.buildUpstream(req, info, c)
		}
		if err != nil { // nothing was sent: the key's health is unknown
			c.Key.Breaker.Cancel()
			r.dropUpstream(o)
			return err
		}
		actx, span := ctx, trace.SpanFromContext(ctx)
		if r.traced(ctx) {
			actx, span = r.Tracer.Start(ctx, "upstream "+c.Provider.Name, trace.WithSpanKind(trace.SpanKindClient),
				trace.WithAttributes(attribute.String("lurus.provider", c.Provider.ID), attribute.Int("lurus.attempt", tried)))
		}
		t0 := r.Now()
		resp, err := r.Upstream.Do(actx, ureq)
		if err != nil {
			c.Key.Breaker.Record(false)
			span.RecordError(err)
			span.SetStatus(codes.Error, "upstream error")
			span.End()
			r.Metrics.Upstream(c.Provider.ID, 0, r.Now().Sub(t0))
			r.dropUpstream(o)
			all429 = false
			if errors.Is(err, ErrUpstreamTimeout) {
				last = failTimeout
			} else {
				last = failConnect
			}
			continue
		}
		status := resp.StatusCode()
		span.SetAttributes(attribute.Int("http.status_code", status))
		if retryable(status) {
			c.Key.Breaker.Record(false)
			if status == http.StatusTooManyRequests {
				last = fail429
				last429, _ = readAll(nil, resp.Body(), 64<<10)
				if c.Translate {
					last429 = translatedError(o.Format, req.Endpoint, c.Provider.Type, status, last429)
				}
				retryWait = resp.Header("Retry-After")
			} else {
				last, all429 = failStatus, false
			}
			resp.Close()
			span.SetStatus(codes.Error, "upstream status")
			span.End()
			r.Metrics.Upstream(c.Provider.ID, status, r.Now().Sub(t0))
			r.dropUpstream(o)
			continue
		}
		c.Key.Breaker.Record(true)
		if c.Translate {
			err = r.respondTranslated(req, w, o, info, c, xlate, resp, t0)
		} else {
			err = r.respond(ctx, req, w, o, info, c, resp, t0)
		}
		resp.Close()
		span.End()
		r.Metrics.Upstream(c.Provider.ID, status, r.Now().Sub(t0))
		return err
	}
	o.Status = StatusUpstreamError
	switch {
	case tried == 0 && sat.refused:
		o.Status = StatusRejected
		return sat.err(w)
	case tried == 0:
		return apperr.New(apperr.ReasonCircuitOpen, "every provider of this model is failing; retry later")
	case last == fail429 && all429:
		o.StatusCode, o.ErrorReason = http.StatusTooManyRequests, string(apperr.ReasonUpstreamLimit)
		if retryWait != "" {
			w.SetHeader("Retry-After", retryWait)
		}
		if len(last429) == 0 {
			_, last429 = ErrorBody(o.Format, apperr.New(apperr.ReasonUpstreamLimit, "upstream rate limit"))
		}
		w.WriteBody(http.StatusTooManyRequests, "application/json", last429)
		return nil
	case last == failTimeout:
		return apperr.New(apperr.ReasonUpstreamTimeout, "upstream did not answer in time")
	case last == failConnect:
		return apperr.New(apperr.ReasonUpstreamUnavailable, "upstream could not be reached")
	default:
		return apperr.New(apperr.ReasonUpstreamError, "upstream failed")
	}
}

// respond relays an accepted upstream response (2xx, or a 4xx that is the
// client's own fault, passed through as it is).
func (r *Relay) respond(ctx context.Context, req *Request, w ClientWriter, o *Outcome, info RequestInfo,
	c *Candidate, resp UpstreamResponse, t0 time.Time) error {
	status := resp.StatusCode()
	o.StatusCode = status
	copyResponseHeaders(resp, w)
	meter := NewMeter(req.Endpoint)
	rename := ""
	if c.UpstreamModel != info.Model && meter.lay.BodyModel != "" {
		rename = c.UpstreamModel
	}
	deadline := t0.Add(c.Provider.Timeouts.Total)
	ct := resp.Header("Content-Type")
	streaming := status/100 == 2 && info.Stream &&
		(strings.HasPrefix(ct, "text/event-stream") || req.Endpoint.Format().routed())
	if !streaming {
		bp := r.getBuf()
		defer r.putBuf(bp)
		body, err := r.readAnswer(resp, deadline, o, bp)
		if err != nil {
			return err
		}
		if status/100 == 2 {
			meter.Body(body)
			if _, ok := meter.Usage(); !ok {
				meter.Deliver(body) // kept only for the local count
			}
			if rename != "" {
				body = RenameModel(body, meter.lay.BodyModel, rename, info.Model)
			}
		}
		if ct == "" {
			ct = "application/json"
		}
		w.WriteBody(status, ct, body)
		o.Status = StatusOK
		if status/100 != 2 {
			// The upstream refused the request itself (a 4xx that is the
			// client's fault): passed through, nothing to bill.
			o.Status, o.ErrorReason = StatusRejected, string(apperr.ReasonUpstreamError)
		}
		r.finishUsage(req, o, meter, status/100 == 2)
		return nil
	}

	var fr Framer = &SSEFramer{}
	if req.arrayStream() {
		fr = NewArrayFramer()
	}
	if ct == "" {
		ct = "text/event-stream"
	}
	r.Metrics.StreamStarted()
	defer r.Metrics.StreamEnded()
	cs := r.startStream(req, w, o, status, ct, resp, deadline)
	cs.soFar = meter.Usage
	ed := &StreamEditor{Meter: meter, HideUsageChunk: info.InjectsUsage(req.Endpoint), From: rename, To: info.Model,
		HeldOutput: o.HeldOutputTokens, Tokens: r.Tokens, ClientUsage: info.IncludeUsage,
		PromptTokens: func() int64 { return r.Tokens.Count(PromptText(req.Body)) }}
	bp := r.getBuf()
	p := PumpStream(cs.src, fr, ed, req.Endpoint, cs.write, *bp)
	r.putBuf(bp)
	cs.end(p.ClientErr, p.UpstreamErr)
	if p.Cut {
		r.cutUsage(o, ed)
		return nil
	}
	r.finishUsage(req, o, meter, true)
	return nil
}

// readAnswer reads a complete upstream answer into *bp (a grown buffer
// is kept for the next one) and sets the TTFB.
func (r *Relay) readAnswer(resp UpstreamResponse, deadline time.Time, o *Outcome, bp *[]byte) ([]byte, error) {
	body, err := readAll((*bp)[:0], &deadlineReader{r: resp.Body(), deadline: deadline, now: r.Now}, r.Cfg.MaxResponseBytes)
	if cap(body) > cap(*bp) {
		*bp = body[:cap(body)]
	}
	if err != nil {
		o.Status = StatusUpstreamError
		return nil, upstreamReadError(err)
	}
	o.TTFB = r.Now().Sub(o.StartedAt)
	return body, nil
}

// clientStream is the client's side of a relayed stream: the upstream
// body read under its deadline, and the writes to the client.
type clientStream struct {
	r     *Relay
	req   *Request
	w     ClientWriter
	o     *Outcome
	src   *deadlineReader
	err   error // the first failed write (or start)
	wrote bool
	// soFar is the usage upstream reported so far, for the running
	// total a rate-limited stream charges.
	soFar func() (Usage, bool)
}

// startStream sends the stream's status and headers (unbuffered, not
// cached). When the client is already gone, upstream is read on only
// for DrainTimeout.
func (r *Relay) startStream(req *Request, w ClientWriter, o *Outcome, status int, ct string, resp UpstreamResponse,
	deadline time.Time) *clientStream {
	w.SetHeader("X-Accel-Buffering", "no")
	w.SetHeader("Cache-Control", "no-cache")
	cs := &clientStream{r: r, req: req, w: w, o: o, src: &deadlineReader{r: resp.Body(), deadline: deadline, now: r.Now}}
	if cs.err = w.StartStream(status, ct); cs.err != nil {
		cs.src.tighten(r.Now().Add(r.Cfg.DrainTimeout))
	}
	return cs
}

// write sends one unit (and flushes it); the first one sets the TTFB.
func (cs *clientStream) write(b []byte) error {
	if cs.err != nil {
		return cs.err
	}
	r := cs.r
	if !cs.wrote {
		cs.wrote = true
		cs.o.TTFB = r.Now().Sub(cs.o.StartedAt)
		r.Metrics.TTFB(cs.req.Endpoint.String(), cs.o.TTFB)
	}
	if cs.o.lim.open() {
		r.streamTick(&cs.o.lim, cs.soFar)
	}
	if err := cs.w.WriteChunk(b); err != nil {
		cs.err = err
		// Keep reading upstream, bounded, so the real usage is known.
		cs.src.tighten(r.Now().Add(r.Cfg.DrainTimeout))
		return err
	}
	return nil
}

// end sets the outcome's status from how the stream ended.
func (cs *clientStream) end(clientErr, upstreamErr error) {
	o := cs.o
	switch {
	case clientErr != nil || cs.err != nil:
		o.Status = StatusClientCancelled
	case upstreamErr != nil:
		o.Status = StatusUpstreamError
		o.ErrorReason = string(apperr.ReasonUpstreamError)
		if errors.Is(upstreamErr, ErrUpstreamTimeout) {
			o.ErrorReason = string(apperr.ReasonUpstreamTimeout)
		}
	default:
		o.Status = StatusOK
	}
}

// cutUsage bills a stream cut at its output allowance: the prompt as
// upstream reported it (else counted locally, usage_source "estimated")
// and the output delivered (StreamEditor.CutUsage).
func (r *Relay) cutUsage(o *Outcome, ed *StreamEditor) {
	u, promptFromUpstream := ed.CutUsage()
	o.Usage, o.UsageSource = u, SourceUpstream
	if !promptFromUpstream {
		o.UsageSource = SourceEstimated
	}
	r.Metrics.OutputCapEnforced(o.ProviderID)
}

// finishUsage sets the outcome's usage: upstream's own when it gave any,
// else a local count of the prompt and what was delivered (estimated),
// else none.
func (r *Relay) finishUsage(req *Request, o *Outcome, m *Meter, delivered bool) {
	u, ok := m.Usage()
	r.settleUsage(req, o, u, ok, delivered, m)
}

// generated is what holds the text delivered to a client (a Meter, a
// translated stream or answer).
type generated interface{ DeliveredText() []byte }

// settleUsage sets the outcome's usage from upstream's own u when ok,
// else, when an answer was delivered on a billable endpoint, from a
// local count of the prompt and of the generated text.
func (r *Relay) settleUsage(req *Request, o *Outcome, u Usage, ok, delivered bool, text generated) {
	if ok {
		o.Usage, o.UsageSource = u, SourceUpstream
		if o.HeldOutputTokens > 0 && u.Completion > o.HeldOutputTokens {
			r.Metrics.UsageOverHold(o.ProviderID) // billed in full; the alert names the provider
		}
		return
	}
	if !delivered || !req.Endpoint.Billable() {
		return
	}
	u = Usage{Prompt: r.Tokens.Count(PromptText(req.Body))}
	if req.Endpoint.HasOutput() {
		u.Completion = r.Tokens.Count(text.DeliveredText())
	}
	o.Usage, o.UsageSource = u, SourceEstimated
}

func upstreamReadError(err error) error {
	if errors.Is(err, ErrUpstreamTimeout) {
		return apperr.Wrap(err, apperr.ReasonUpstreamTimeout, "upstream did not answer in time")
	}
	return apperr.Wrap(err, apperr.ReasonUpstreamError, "upstream response failed")
}

func (r *Relay) getBuf() *[]byte {
	if b, ok := r.bufs.Get().(*[]byte); ok {
		return b
	}
	b := make([]byte, 32<<10)
	return &b
}

// maxPooledRead keeps buffers grown by huge responses out of the pool.
const maxPooledRead = 1 << 20

func (r *Relay) putBuf(b *[]byte) {
	if cap(*b) <= maxPooledRead {
		r.bufs.Put(b)
	}
}

// errResponseTooLarge is readAll's error for an answer over its limit.
var errResponseTooLarge = errors.New("upstream response too large")

// readAll appends what r holds to buf, up to limit bytes in all; more is
// errResponseTooLarge. The bytes land in buf's spare capacity (a pooled
// buffer) while they fit; a larger answer grows a new slice, which is
// returned. On a read error it returns what was read with the error.
func readAll(buf []byte, r io.Reader, limit int) ([]byte, error) {
	b := bytes.NewBuffer(buf)
	// One byte past the limit tells "exactly limit" from "more".
	_, err := b.ReadFrom(io.LimitReader(r, int64(limit-len(buf))+1))
	if b.Len() > limit {
		return nil, errResponseTooLarge
	}
	return b.Bytes(), err
}

// deadlineReader fails reads after a deadline (the total timeout, or the
// drain bound once the client is gone). Each read itself is bounded by
// the transport's idle timeout, so a deadline is overrun by at most that.
type deadlineReader struct {
	r        io.Reader
	deadline time.Time
	now      func() time.Time
}

func (d *deadlineReader) tighten(t time.Time) {
	if t.Before(d.deadline) {
		d.deadline = t
	}
}

func (d *deadlineReader) Read(p []byte) (int, error) {
	if !d.now().Before(d.deadline) {
		return 0, ErrUpstreamTimeout
	}
	return d.r.Read(p)
}

// responseHeaderAllowed lists the upstream response headers a client
// sees; everything else (Set-Cookie, hop-by-hop, server details) stays.
func responseHeaderAllowed(k []byte) bool {
	hasPrefix := func(p string) bool { return len(k) > len(p) && strings.EqualFold(string(k[:len(p)]), p) }
	switch {
	case strings.EqualFold(string(k), "Retry-After"):
		return true
	case hasPrefix("x-ratelimit-"):
		return true
	case hasPrefix("openai-") && !strings.EqualFold(string(k), "openai-organization"):
		return true
	case hasPrefix("anthropic-"):
		return true
	}
	return false
}

func copyResponseHeaders(resp UpstreamResponse, w ClientWriter) {
	resp.VisitHeaders(func(k, v []byte) {
		if responseHeaderAllowed(k) {
			w.SetHeader(string(k), string(v))
		}
	})
}

// buildUpstream makes the request for candidate c: headers from the
// client's allowed ones, the provider's own, the upstream credential and
// the headers the provider's API needs that the client did not send; the
// URL and credential placed by the provider type's adapter (locate); the
// body with the model alias and usage request rewritten.
func (r *Relay) buildUpstream(req *Request, info RequestInfo, c *Candidate) (*UpstreamRequest, error) {
	body, err := RewriteRequest(req.Endpoint, info, c.UpstreamModel, c.Provider.Type, req.Body)
	if err != nil {
		return nil, err
	}
	p := c.Provider
	u := &UpstreamRequest{Provider: p, Method: http.MethodPost, Body: body, Timeouts: p.Timeouts,
		Headers: make([]Header, 0, len(req.Forward)+len(p.Headers)+3)}
	u.Headers = append(u.Headers, req.Forward...)
	for k, v := range p.Headers {
		u.Headers = append(u.Headers, Header{k, v})
	}
	loc, err := locate(p, req.Endpoint, c.UpstreamModel, c.Key.Secret, req.GeminiSSE)
	if err != nil {
		return nil, err
	}
	u.URL = loc.URL
	u.Headers = append(u.Headers, Header(loc.Auth))
	if d, ok := adapters.As[wire.HeaderDefaulter](p.Type); ok {
		for _, h := range d.DefaultHeaders() {
			if !hasHeader(req.Forward, h.Key) {
				u.Headers = append(u.Headers, Header(h))
			}
		}
	}
	return u, nil
}

// hasHeader reports whether hs holds a header named key.
func hasHeader(hs []Header, key string) bool {
	for _, h := range hs {
		if strings.EqualFold(h.Key, key) {
			return true
		}
	}
	return false
}

// UpstreamURL is the URL of endpoint ep for provider p and upstream model
// model (locate).
func UpstreamURL(p *Provider, ep Endpoint, model string, geminiSSE bool) (string, error) {
	loc, err := locate(p, ep, model, "", geminiSSE)
	return loc.URL, err
}

// locate places endpoint ep for provider p, upstream model model and
// credential secret: the adapter of p's type builds the URL and the
// credential header, as its writer does for translated calls. The
// endpoint that priced and admitted the call is the only source of the
// operation in the URL (a path suffix, or the Gemini action after the
// model segment), so what is billed is what upstream runs. A model that
// goes into the path (the Azure deployment, the Gemini model) must follow
// the lurus-common/modelname grammar and is escaped as exactly one
// segment ('/', ':', '?', '#', '%' all encoded); the only query is the one
// the adapter sets: api-version (Azure) and alt=sse (Gemini, from the
// client's parsed query, never from its path).
func locate(p *Provider, ep Endpoint, model, secret string, geminiSSE bool) (wire.Location, error) {
	l, ok := adapters.Locator(p.Type)
	if !ok {
		return wire.Location{}, apperr.Newf(apperr.ReasonNoProvider, "no adapter places calls for %s providers", p.Type)
	}
	loc, err := l.Locate(wire.Upstream{Type: p.Type, BaseURL: p.BaseURL, APIVersion: p.APIVersion, Secret: secret, Model: model},
		wire.Call{Path: endpointInfo[ep].op, SSE: geminiSSE})
	if err != nil {
		return wire.Location{}, err
	}
	if loc.PathModel {
		if err := modelname.Check(model); err != nil {
			return wire.Location{}, apperr.New(apperr.ReasonInvalidModelName, "the upstream model cannot be put in the provider's URL: "+err.Error())
		}
	}
	return loc, nil
}
