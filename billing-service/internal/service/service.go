// Package service is billing-service's HTTP surface: Gin handlers for the
// admin, user-facing and internal routes. It converts JSON to domain calls
// and renders every error through apperr; the repositories are biz's
// interfaces, the after-commit propagation and the Redis and NATS readers
// small interfaces of its own.
package service

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/lurus-switch/lurus-switch/billing-service/internal/biz"
	"github.com/lurus-switch/lurus-switch/billing-service/internal/metrics"
	"github.com/lurus-switch/lurus-switch/lurus-common/admission"
	"github.com/lurus-switch/lurus-switch/lurus-common/apperr"
	"github.com/lurus-switch/lurus-switch/lurus-common/authguard"
	"github.com/lurus-switch/lurus-switch/lurus-common/clientip"
	"github.com/lurus-switch/lurus-switch/lurus-common/connlimit"
	"github.com/lurus-switch/lurus-switch/lurus-common/edge"
	"github.com/lurus-switch/lurus-switch/lurus-common/events/natsbus"
)

// Keys is the key repository; the user-key routes read it through
// Deps.Keys (tests wrap it to count lookups).
type Keys = biz.KeyRepo

// Propagator does the after-commit work (mirror, events, notifications).
type Propagator interface {
	Propagate(ctx context.Context, eff biz.Effects) error
}

// Admission reads the Redis mirror (reserved amounts).
type Admission interface {
	Get(ctx context.Context, userID string) (admission.State, error)
}

// Feed subscribes to a user's events (natsbus.Feed).
type Feed interface {
	Subscribe(ctx context.Context, userID, lastEventID string) (*natsbus.Subscription, error)
}

// Deps are the Service's collaborators.
type Deps struct {
	Users biz.UserRepo
	Money biz.MoneyRepo
	// Accounts changes accounts: admin changes, top-ups, adjustments.
	Accounts  *biz.Accounts
	Keys      Keys
	Prices    biz.PriceRepo
	Reports   biz.ReportRepo
	Mirrors   biz.MirrorRepo
	Prop      Propagator
	Admission Admission
	RateUsage RateUsage
	Feed      Feed
	PriceBook *biz.PriceBook
	Metrics   *metrics.Metrics
	Log       *slog.Logger
}

// Options are the Service's settings.
type Options struct {
	AdminToken    string
	InternalToken string
	KeyPepper     string
	// Limits turn stored rate limits into those in force (group
	// defaults, keys held under their users).
	Limits biz.LimitRules
	// ClientIP finds the client address for keys' IP allow-lists
	// (http.trusted_proxies).
	ClientIP  clientip.Resolver
	KeepAlive time.Duration // SSE keep-alive comment interval
	// Guard refuses client addresses with too many failed
	// authentications on the user-key routes, before any lookup.
	Guard *authguard.Guard
	// Streams caps each user's open SSE streams in this process.
	Streams *connlimit.Limiter
	// Stop is closed when the server shuts down: open SSE streams end.
	Stop <-chan struct{}
	Now  func() time.Time
}

// Service holds the handlers.
type Service struct {
	Deps
	opt Options
}

// New returns a Service.
func New(d Deps, o Options) *Service {
	if o.Now == nil {
		o.Now = time.Now
	}
	return &Service{Deps: d, opt: o}
}

// fail renders err as the JSON error body (lurus-common/edge, which also
// puts it on the request's log line) and aborts.
func fail(c *gin.Context, err error) {
	edge.WriteError(c.Writer, c.Request, err)
	c.Abort()
}

// bind decodes the JSON body strictly into dst: unknown fields and
// trailing data are refused; an oversized body is 413.
func bind(c *gin.Context, dst any) error {
	dec := json.NewDecoder(c.Request.Body)
	dec.DisallowUnknownFields()
	err := dec.Decode(dst)
	if err == nil && dec.More() {
		err = errors.New("trailing data after JSON body")
	}
	if err == nil {
		return nil
	}
	var mbe *http.MaxBytesError
	if errors.As(err, &mbe) {
		return apperr.New(apperr.ReasonBodyTooLarge, "request body too large")
	}
	if errors.Is(err, io.EOF) {
		return apperr.New(apperr.ReasonMalformedJSON, "request body is empty")
	}
	return apperr.Wrap(err, apperr.ReasonMalformedJSON, "malformed JSON: "+err.Error())
}

// page reads limit (1..500, default 50) and cursor.
func page(c *gin.Context) (biz.Page, error) {
	p := biz.Page{Limit: 50, Cursor: c.Query("cursor")}
	if s := c.Query("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil || n < 1 || n > 500 {
			return p, apperr.New(apperr.ReasonInvalidArgument, "limit must be 1..500")
		}
		p.Limit = n
	}
	return p, nil
}

// list is the body of every list route (DESIGN.md §9).
type list[T any] struct {
	Items      []T     `json:"items"`
	NextCursor *string `json:"next_cursor"`
}

func newList[T any](items []T, next string) list[T] {
	if items == nil {
		items = []T{}
	}
	l := list[T]{Items: items}
	if next != "" {
		l.NextCursor = &next
	}
	return l
}

// propagate runs the after-commit work; its failure is logged, not
// returned: the change is committed and the outbox sweeper and the next
// change (or a rebuild) repair what did not get through.
func (s *Service) propagate(c *gin.Context, eff biz.Effects) {
	if err := s.Prop.Propagate(c.Request.Context(), eff); err != nil {
		s.Log.Warn("after-commit propagation incomplete", "err", err, "request_id", edge.RequestID(c.Request.Context()))
	}
}
