package mockupstream

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/tidwall/gjson"
)

// DefaultAddr is where cmd/mock-upstream listens unless told otherwise.
const DefaultAddr = "127.0.0.1:18190"

// maxBodyBytes caps a request body; the gateway's own cap is 32 MiB.
// Bodies over maxPooledBody get a fresh buffer next time.
const (
	maxBodyBytes  = 64 << 20
	maxPooledBody = 1 << 20
)

// Options configure a Server. The zero value is ready to use.
type Options struct {
	// Defaults is the lowest control layer (the command-line flags).
	Defaults Settings
	// RequestLogCapacity bounds GET /__requests; 0 means
	// DefaultRequestLogCapacity.
	RequestLogCapacity int
	// Now stamps replies ("created" fields); nil means time.Now. Golden
	// tests fix it.
	Now func() time.Time
}

// Server is the mock upstream as an http.Handler: the provider APIs under
// /v1, /openai/deployments and /v1beta, the control API under /__, and
// GET /health. Use it with http.Server, or with httptest.NewServer in
// tests of the gateway. It is safe for concurrent use.
type Server struct {
	base      plan
	now       func() time.Time
	seq       atomic.Uint64
	scenarios scenarioStore
	log       *requestLog
	stats     stats
	pool      sync.Pool // *exchange
}

// New returns a Server, or an error when opts.Defaults are out of range.
func New(opts Options) (*Server, error) {
	s := &Server{base: basePlan(), now: opts.Now}
	if err := s.base.apply(&opts.Defaults); err != nil {
		return nil, fmt.Errorf("mockupstream: defaults: %w", err)
	}
	if s.now == nil {
		s.now = time.Now
	}
	capacity := opts.RequestLogCapacity
	if capacity <= 0 {
		capacity = DefaultRequestLogCapacity
	}
	s.log = newRequestLog(capacity)
	s.pool.New = func() any { return &exchange{buf: make([]byte, 0, 4096)} }
	return s, nil
}

// SetScenario stores (or replaces) the named scenario.
func (s *Server) SetScenario(name string, st Settings) error {
	if !validName(name) {
		return errors.New("scenario names are 1-128 of [A-Za-z0-9._-]")
	}
	var p plan
	if err := p.apply(&st); err != nil {
		return err
	}
	s.scenarios.update(name, &st)
	return nil
}

// DeleteScenario removes the named scenario; requests naming it then get
// the defaults, as if they named none.
func (s *Server) DeleteScenario(name string) { s.scenarios.update(name, nil) }

// Requests returns up to limit of the newest recorded requests, oldest
// first; limit <= 0 returns all that are kept.
func (s *Server) Requests(limit int) []RecordedRequest { return s.log.last(limit) }

// ResetRequests forgets the recorded requests.
func (s *Server) ResetRequests() { s.log.clear() }

// Stats returns the request counters.
func (s *Server) Stats() Stats { return s.stats.snapshot() }

// ResetStats zeroes the request counters (not the in-flight gauge).
func (s *Server) ResetStats() { s.stats.reset() }

// ServeHTTP dispatches to the control API or the provider APIs.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if id := r.Header.Get("X-Request-Id"); id != "" {
		w.Header().Set("X-Request-Id", id)
	}
	if r.URL.Path == "/health" || strings.HasPrefix(r.URL.Path, "/__") {
		s.serveControl(w, r)
		return
	}
	s.serveAPI(w, r)
}

// exchange is the state of one API request while it is answered. Pooled:
// its buffers are reused across requests.
type exchange struct {
	w      statusRecorder
	rc     *http.ResponseController
	ctx    context.Context
	format apiFormat
	plan   plan
	seq    uint64
	now    time.Time
	sent   int  // content chunks written
	cut    bool // the stream was dropped on purpose
	body   bytes.Buffer
	buf    []byte // render buffer
}

// statusRecorder remembers the status sent; Unwrap lets
// http.ResponseController reach the real writer to flush.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (w *statusRecorder) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusRecorder) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusRecorder) Unwrap() http.ResponseWriter { return w.ResponseWriter }

func (s *Server) serveAPI(w http.ResponseWriter, r *http.Request) {
	ex := s.pool.Get().(*exchange)
	ex.w = statusRecorder{ResponseWriter: w}
	ex.rc = http.NewResponseController(&ex.w)
	ex.ctx = r.Context()
	ex.seq = s.seq.Add(1)
	ex.now = s.now()
	ex.sent, ex.cut = 0, false
	ex.body.Reset()

	rt, routeErr := matchRoute(r)
	ex.format = rt.format

	var readErr error
	if r.Body != nil && r.Method != http.MethodGet {
		_, readErr = ex.body.ReadFrom(http.MaxBytesReader(w, r.Body, maxBodyBytes))
	}
	body := ex.body.Bytes()
	info := rt.parse(body)

	recBody, truncated := recordBody(body)
	rec := RecordedRequest{
		Seq:           ex.seq,
		Time:          ex.now,
		Method:        r.Method,
		Path:          r.URL.Path,
		URI:           r.RequestURI,
		Host:          r.Host,
		Headers:       r.Header.Clone(),
		BodyBytes:     len(body),
		Body:          recBody,
		BodyTruncated: truncated,
		Model:         info.model,
		OutputCaps:    outputCaps(body),
		Scenario:      r.Header.Get(HeaderScenario),
	}
	s.log.add(rec)
	s.stats.inFlight.Add(1)
	defer func() {
		s.stats.inFlight.Add(-1)
		s.stats.count(r.URL.Path, ex.w.status, ex.cut)
		s.log.finish(ex.seq, ex.w.status, ex.cut)
		if !ex.cut {
			// A panicking handler may still have the exchange in use on
			// its way out; only clean exits recycle it. Huge bodies do not
			// pin their buffer in the pool.
			ex.w, ex.rc, ex.ctx = statusRecorder{}, nil, nil
			if ex.body.Cap() > maxPooledBody {
				ex.body = bytes.Buffer{}
			}
			s.pool.Put(ex)
		}
	}()

	ex.plan = s.base
	if rec.Scenario != "" {
		if st, ok := s.scenarios.get(rec.Scenario); ok {
			_ = ex.plan.apply(&st) // checked when it was stored
		}
	}
	if hasControlHeaders(r.Header) {
		st, err := settingsFromHeaders(r.Header)
		if err == nil {
			err = ex.plan.apply(&st)
		}
		if err != nil {
			ex.writeError(http.StatusBadRequest, "mock control: "+err.Error())
			return
		}
	}

	if ex.plan.latency > 0 && sleep(ex.ctx, ex.plan.latency) != nil {
		return
	}
	if ex.plan.hang == hangFirstByte {
		<-ex.ctx.Done()
		return
	}
	if routeErr != nil {
		ex.writeError(routeErr.status, routeErr.msg)
		return
	}
	if reason := checkKeys(r, ex.plan.requireKey); reason != "" {
		ex.writeError(http.StatusUnauthorized, reason)
		return
	}
	if status := ex.plan.failNow(); status != 0 {
		ex.writeError(status, fmt.Sprintf("mock upstream failure (status %d)", status))
		return
	}
	if readErr != nil {
		ex.writeError(http.StatusRequestEntityTooLarge, "request body too large")
		return
	}
	if r.Method == http.MethodPost && !gjson.ValidBytes(body) {
		ex.writeError(http.StatusBadRequest, "request body is not valid JSON")
		return
	}
	if ex.plan.toolCall != "" {
		// Only the chat, Responses, Messages and generate replies read it.
		info.tool, info.fixedArgs = ex.plan.toolCall, true
	}
	if err := s.dispatch(ex, rt, info); err != nil && !errors.Is(err, context.Canceled) {
		// The reply was under way, so there is nothing left to tell the
		// client; the connection is most likely gone.
		return
	}
}

func (s *Server) dispatch(ex *exchange, rt route, info requestInfo) error {
	switch rt.ep {
	case epChat:
		return ex.openAIChat(info)
	case epCompletions:
		return ex.openAICompletion(info)
	case epEmbeddings:
		return ex.openAIEmbeddings(info)
	case epResponses:
		return ex.openAIResponses(info)
	case epModels:
		if rt.format == formatAnthropic {
			return ex.writeJSON(http.StatusOK, contentTypeJSON, anthropicModelList)
		}
		return ex.writeJSON(http.StatusOK, contentTypeJSON, openAIModelList)
	case epMessages:
		return ex.anthropicMessages(info)
	case epCountTokens:
		return ex.anthropicCountTokens(info)
	case epGenerate:
		return ex.geminiGenerate(info)
	case epStreamGenerate:
		return ex.geminiStream(info, rt.sse)
	case epGeminiCountTokens:
		return ex.geminiCountTokens(info)
	case epEmbedContent, epBatchEmbed:
		return ex.geminiEmbed(info, rt.ep == epBatchEmbed)
	case epGeminiModels:
		return ex.writeJSON(http.StatusOK, contentTypeGeminiJSON, geminiModelList)
	case epModel:
		return ex.writeJSON(http.StatusOK, contentTypeJSON, modelObject(rt.format, rt.model))
	}
	return nil
}

// endpoint is one provider operation.
type endpoint uint8

const (
	epNone endpoint = iota
	epChat
	epCompletions
	epEmbeddings
	epResponses
	epModels
	epMessages
	epCountTokens
	epGenerate
	epStreamGenerate
	epGeminiCountTokens
	epEmbedContent
	epBatchEmbed
	epGeminiModels
	epModel // one model, in the route's format
)

// route is a matched request: its format, operation and path parameters.
type route struct {
	format apiFormat
	ep     endpoint
	// model is the Gemini model or the Azure deployment from the path.
	model string
	// sse is Gemini's ?alt=sse.
	sse bool
}

// routeError is a request that matches no operation.
type routeError struct {
	status int
	msg    string
}

func (e *routeError) Error() string { return e.msg }

// matchRoute maps a request to its operation. The paths are the vendors'
// own, as their SDKs build them from the documented base URLs.
func matchRoute(r *http.Request) (route, *routeError) {
	p := r.URL.Path
	want := http.MethodPost
	var rt route
	switch {
	case p == "/v1/chat/completions":
		rt.ep = epChat
	case p == "/v1/completions":
		rt.ep = epCompletions
	case p == "/v1/embeddings":
		rt.ep = epEmbeddings
	case p == "/v1/responses":
		rt.ep = epResponses
	case p == "/v1/models":
		rt.ep, want = epModels, http.MethodGet
		rt.format = modelsFormat(r)
	case p == "/v1/messages":
		rt.format, rt.ep = formatAnthropic, epMessages
	case p == "/v1/messages/count_tokens":
		rt.format, rt.ep = formatAnthropic, epCountTokens
	case p == "/openai/models":
		// Azure OpenAI's model list (what provider-service's probe calls).
		rt.ep, want = epModels, http.MethodGet
		if r.URL.Query().Get("api-version") == "" {
			return rt, &routeError{http.StatusNotFound, "Resource not found: Azure OpenAI needs the api-version query parameter"}
		}
	case strings.HasPrefix(p, "/openai/deployments/"):
		dep, op, _ := strings.Cut(p[len("/openai/deployments/"):], "/")
		rt.model = dep
		switch op {
		case "chat/completions":
			rt.ep = epChat
		case "completions":
			rt.ep = epCompletions
		case "embeddings":
			rt.ep = epEmbeddings
		}
		if rt.ep != epNone && dep != "" && r.URL.Query().Get("api-version") == "" {
			return rt, &routeError{http.StatusNotFound, "Resource not found: Azure OpenAI needs the api-version query parameter"}
		}
	case p == "/v1beta/models":
		rt.format, rt.ep, want = formatGemini, epGeminiModels, http.MethodGet
	case strings.HasPrefix(p, "/v1/models/") && !strings.Contains(p, ":"):
		// OpenAI's and Anthropic's model retrieval; with a colon it is
		// Gemini's v1 API, below.
		rt.ep, want, rt.model = epModel, http.MethodGet, p[len("/v1/models/"):]
		rt.format = modelsFormat(r)
	case strings.HasPrefix(p, "/v1beta/models/") || strings.HasPrefix(p, "/v1/models/"):
		rt.format = formatGemini
		_, rest, _ := strings.Cut(p[1:], "/models/")
		model, action, hasAction := strings.Cut(rest, ":")
		rt.model = model
		if !hasAction {
			rt.ep, want = epModel, http.MethodGet
			break
		}
		switch action {
		case "generateContent":
			rt.ep = epGenerate
		case "streamGenerateContent":
			rt.ep = epStreamGenerate
			rt.sse = r.URL.Query().Get("alt") == "sse"
		case "countTokens":
			rt.ep = epGeminiCountTokens
		case "embedContent":
			rt.ep = epEmbedContent
		case "batchEmbedContents":
			rt.ep = epBatchEmbed
		}
	default:
		if strings.HasPrefix(p, "/v1beta/") {
			rt.format = formatGemini
		}
	}
	if rt.ep == epNone || rt.model == "" && (rt.ep == epModel || strings.HasPrefix(p, "/openai/deployments/") || rt.format == formatGemini && rt.ep != epGeminiModels) {
		rt.ep = epNone
		return rt, &routeError{http.StatusNotFound, "mock upstream: no such operation: " + r.Method + " " + p}
	}
	if r.Method != want {
		return rt, &routeError{http.StatusMethodNotAllowed, "mock upstream: " + p + " takes " + want}
	}
	return rt, nil
}

// modelsFormat tells an Anthropic client from an OpenAI one on the model
// routes the two APIs share.
func modelsFormat(r *http.Request) apiFormat {
	if r.Header.Get("Anthropic-Version") != "" || r.Header.Get("X-Api-Key") != "" {
		return formatAnthropic
	}
	return formatOpenAI
}

// parse reads the request body as the route's format.
func (rt route) parse(body []byte) requestInfo {
	switch rt.format {
	case formatAnthropic:
		return parseAnthropic(body)
	case formatGemini:
		return parseGemini(body, rt.model, rt.ep)
	}
	info := parseOpenAI(body, rt.ep)
	if info.model == "" {
		info.model = rt.model
	}
	return info
}
