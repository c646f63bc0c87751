// Package service is log-service's HTTP API: it turns requests into biz
// calls (parameters, credentials) and results into JSON. The routes are
// handed to internal/server, which owns the Kratos server.
package service

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/netip"
	"time"

	khttp "github.com/go-kratos/kratos/v2/transport/http"

	"github.com/lurus-switch/lurus-switch/log-service/internal/biz"
	"github.com/lurus-switch/lurus-switch/log-service/internal/metrics"
	"github.com/lurus-switch/lurus-switch/lurus-common/apperr"
	"github.com/lurus-switch/lurus-switch/lurus-common/authguard"
	"github.com/lurus-switch/lurus-switch/lurus-common/clientip"
	"github.com/lurus-switch/lurus-switch/lurus-common/edge"
	"github.com/lurus-switch/lurus-switch/lurus-common/internalapi"
	"github.com/lurus-switch/lurus-switch/lurus-common/keyauth"
)

// KeyAuthenticator verifies a user's API key and authorizes its use from
// a client address: keyauth.Cache, the one key authorization every service
// applies.
type KeyAuthenticator interface {
	Authenticate(ctx context.Context, key string, client netip.Addr) (keyauth.Info, error)
}

// Ingester writes batches exactly once (biz.Ingester).
type Ingester interface {
	Ingest(ctx context.Context, recs []biz.Record) (biz.IngestResult, error)
}

// Options configure the Service.
type Options struct {
	Queries  *biz.Queries
	Ingester Ingester
	Keys     KeyAuthenticator
	// ClientIP finds the client address behind http.trusted_proxies, for
	// keys' IP allow-lists.
	ClientIP clientip.Resolver
	// Guard refuses client addresses with too many failed
	// authentications before any credential is checked (nil: no cap).
	Guard           *authguard.Guard
	Metrics         *metrics.Metrics
	AdminToken      string
	InternalToken   string
	MaxBatchRecords int
}

// Service holds the route handlers.
type Service struct {
	o   Options
	now func() time.Time
}

// New returns the service.
func New(o Options) *Service { return &Service{o: o, now: time.Now} }

// Route is one route for the server to register.
type Route struct {
	Method  string
	Path    string // a Kratos (gorilla mux) template
	Handler khttp.HandlerFunc
}

// Routes returns the API routes (DESIGN.md §9).
func (s *Service) Routes() []Route {
	return []Route{
		{http.MethodGet, "/api/v1/logs", s.listLogs},
		{http.MethodGet, "/api/v1/logs/{request_id}", s.getLog},
		{http.MethodPost, "/api/v1/logs/batch", s.batch},
		{http.MethodGet, "/api/v1/stats/summary", s.summary},
		{http.MethodGet, "/api/v1/stats/hourly", s.series(biz.Hourly)},
		{http.MethodGet, "/api/v1/stats/daily", s.series(biz.Daily)},
		{http.MethodGet, "/api/v1/stats/models", s.top(biz.ByModel)},
		{http.MethodGet, "/api/v1/stats/providers", s.top(biz.ByProvider)},
		{http.MethodGet, "/api/v1/stats/users", s.top(biz.ByUser)},
	}
}

// principal authenticates a query route: the admin token, or a user's API
// key verified with billing-service and authorized like everywhere else
// (revoked 401 KEY_REVOKED, disabled user 403 USER_DISABLED, expired 403
// KEY_EXPIRED, address not allowed 403 IP_NOT_ALLOWED). A client address
// with too many failed authentications (a wrong admin token counts too) is
// refused first, 429 RATE_LIMITED with Retry-After (lurus-common/authguard).
func (s *Service) principal(r *http.Request) (biz.Principal, error) {
	client := s.o.ClientIP.FromRequest(r)
	if err := s.o.Guard.Check(client); err != nil {
		return biz.Principal{}, err
	}
	p, err := s.credential(r, client)
	s.o.Guard.Observe(client, err)
	return p, err
}

// credential checks the request's admin token or API key.
func (s *Service) credential(r *http.Request, client netip.Addr) (biz.Principal, error) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return biz.Principal{}, apperr.New(apperr.ReasonMissingCredentials, "Authorization: Bearer <admin token or API key> is required")
	}
	if internalapi.CheckBearer(h, s.o.AdminToken) {
		return biz.Principal{Admin: true}, nil
	}
	tok, ok := edge.BearerToken(h)
	if !ok {
		return biz.Principal{}, apperr.New(apperr.ReasonInvalidCredentials, "Authorization must be a Bearer credential")
	}
	info, err := s.o.Keys.Authenticate(r.Context(), tok, client)
	if err != nil {
		return biz.Principal{}, err
	}
	return biz.Principal{UserID: info.UserID, KeyID: info.KeyID}, nil
}

func (s *Service) listLogs(ctx khttp.Context) error {
	return s.query(ctx, listParams, func(c context.Context, p biz.Principal, req biz.Request) (any, error) {
		return s.o.Queries.List(c, p, req)
	})
}

func (s *Service) getLog(ctx khttp.Context) error {
	p, err := s.principal(ctx.Request())
	if err != nil {
		return err
	}
	if len(ctx.Request().URL.Query()) > 0 {
		return apperr.New(apperr.ReasonInvalidArgument, "this route takes no query parameters")
	}
	e, err := s.o.Queries.Get(ctx, p, ctx.Vars().Get("request_id"))
	if err != nil {
		return err
	}
	return ctx.JSON(http.StatusOK, e)
}

func (s *Service) summary(ctx khttp.Context) error {
	return s.query(ctx, summaryParams, func(c context.Context, p biz.Principal, req biz.Request) (any, error) {
		return s.o.Queries.Summary(c, p, req)
	})
}

func (s *Service) series(g biz.Granularity) khttp.HandlerFunc {
	return func(ctx khttp.Context) error {
		return s.query(ctx, seriesParams, func(c context.Context, p biz.Principal, req biz.Request) (any, error) {
			return s.o.Queries.Series(c, p, g, req)
		})
	}
}

func (s *Service) top(d biz.Dimension) khttp.HandlerFunc {
	return func(ctx khttp.Context) error {
		return s.query(ctx, topParams, func(c context.Context, p biz.Principal, req biz.Request) (any, error) {
			return s.o.Queries.Top(c, p, d, req)
		})
	}
}

// query is the shape of every GET query route: authenticate, parse the
// parameters the route allows, run, answer JSON.
func (s *Service) query(ctx khttp.Context, allowed map[string]bool, run func(context.Context, biz.Principal, biz.Request) (any, error)) error {
	p, err := s.principal(ctx.Request())
	if err != nil {
		return err
	}
	req, err := parseRequest(ctx.Request().URL.Query(), allowed)
	if err != nil {
		return err
	}
	out, err := run(ctx, p, req)
	if err != nil {
		return err
	}
	return ctx.JSON(http.StatusOK, out)
}

// BatchRequest is the body of POST /api/v1/logs/batch: log.write records.
type BatchRequest struct {
	Records []biz.Record `json:"records"`
}

// BatchResponse says what a batch did.
type BatchResponse struct {
	Received   int `json:"received"`
	Inserted   int `json:"inserted"`
	Duplicates int `json:"duplicates"`
}

// batch is POST /api/v1/logs/batch (internal token): every record is
// validated before anything is written; records whose request id is
// already stored are skipped, so a producer may retry a batch freely.
func (s *Service) batch(ctx khttp.Context) error {
	r := ctx.Request()
	if err := edge.CheckToken(r.Header.Get("Authorization"), s.o.InternalToken); err != nil {
		return err
	}
	var body BatchRequest
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		var tooLarge *http.MaxBytesError
		if errors.As(err, &tooLarge) {
			return apperr.Newf(apperr.ReasonBodyTooLarge, "request body exceeds %d bytes", tooLarge.Limit)
		}
		return apperr.New(apperr.ReasonMalformedJSON, "body must be {\"records\":[...log.write records...]}")
	}
	switch n := len(body.Records); {
	case n == 0:
		return apperr.New(apperr.ReasonInvalidArgument, "records must not be empty")
	case n > s.o.MaxBatchRecords:
		return apperr.Newf(apperr.ReasonBodyTooLarge, "at most %d records per batch", s.o.MaxBatchRecords)
	}
	now := s.now()
	for i := range body.Records {
		if err := body.Records[i].Validate(now); err != nil {
			return apperr.Newf(biz.ReasonInvalidRecord, "records[%d]: %s", i, apperr.From(err).Message)
		}
	}
	start := time.Now()
	res, err := s.o.Ingester.Ingest(ctx, body.Records)
	s.o.Metrics.ObserveFlush(metrics.SourceHTTP, res, time.Since(start), err)
	if err != nil {
		return err
	}
	return ctx.JSON(http.StatusOK, BatchResponse{Received: res.Received, Inserted: res.Inserted, Duplicates: res.Duplicates})
}
