package service

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/lurus-switch/lurus-switch/billing-service/internal/biz"
	"github.com/lurus-switch/lurus-switch/lurus-common/apperr"
	"github.com/lurus-switch/lurus-switch/lurus-common/events"
	"github.com/lurus-switch/lurus-switch/lurus-common/events/natsbus"
	"github.com/lurus-switch/lurus-switch/lurus-common/internalapi"
)

// state builds a user's SyncState: PostgreSQL for balance, quota and the
// last event id, the Redis mirror for the amount held by open
// reservations (0 when Redis cannot answer).
func (s *Service) state(ctx context.Context, userID, source string) (internalapi.SyncState, error) {
	u, err := s.Users.GetUser(ctx, userID)
	if err != nil {
		return internalapi.SyncState{}, err
	}
	s.Metrics.BalanceChecks.WithLabelValues(source).Inc()
	now := s.opt.Now().UTC()
	if start := biz.PeriodStart(now); start.After(u.PeriodStart) { // rolled, not yet reset
		u.PeriodStart, u.QuotaUsedTokens = start, 0
	}
	st := internalapi.SyncState{UserID: u.ID, BalanceMicros: u.BalanceMicros, CreditLimitMicros: u.CreditLimitMicros,
		QuotaLimitTokens: u.QuotaLimitTokens, QuotaUsedTokens: u.QuotaUsedTokens, QuotaRemainingTokens: u.QuotaRemaining(),
		PeriodStart: u.PeriodStart, LastEventID: u.LastEventID, AsOf: now}
	if m, err := s.Admission.Get(ctx, userID); err == nil {
		st.ReservedMicros = max(0, m.ReservedMicros)
	} else {
		s.Log.Warn("reading reservations from redis failed", "err", err)
	}
	return st, nil
}

// SyncState is GET /api/v1/billing/sync/:user_id with the user's own key.
func (s *Service) SyncState(c *gin.Context) {
	id, ok := ownUser(c)
	if !ok {
		return
	}
	s.writeState(c, id, "sync")
}

// InternalSyncState is GET /internal/v1/sync/:user_id for sync-service.
func (s *Service) InternalSyncState(c *gin.Context) { s.writeState(c, c.Param("user_id"), "sync") }

func (s *Service) writeState(c *gin.Context, id, source string) {
	st, err := s.state(c.Request.Context(), id, source)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, st)
}

// LoadAccount is POST /internal/v1/admission/load: rewrite one user's
// Redis mirror from PostgreSQL (the gateway calls it when a reservation
// finds no mirror, e.g. after a Redis flush).
func (s *Service) LoadAccount(c *gin.Context) {
	var req internalapi.LoadAccountRequest
	if err := bind(c, &req); err != nil {
		fail(c, err)
		return
	}
	if !events.ValidToken(req.UserID) {
		fail(c, apperr.New(apperr.ReasonInvalidArgument, "user_id is required"))
		return
	}
	m, err := s.Mirrors.Mirror(c.Request.Context(), req.UserID)
	if err != nil {
		fail(c, err)
		return
	}
	s.Metrics.BalanceChecks.WithLabelValues("admission_load").Inc()
	if err := s.Prop.Propagate(c.Request.Context(), biz.Effects{Mirrors: []biz.Mirror{m}}); err != nil {
		fail(c, apperr.Wrap(err, apperr.ReasonAdmissionDown, "could not write the admission state"))
		return
	}
	c.Status(http.StatusNoContent)
}

// Stream is GET /api/v1/billing/sync/:user_id/stream: the user's events
// as Server-Sent Events, pushed as they are published. With Last-Event-ID
// (header, or last_event_id query for EventSource polyfills) the missed
// events are replayed first; when that id is unknown or too old — and on a
// first connection — an "event: sync_state" with the full state comes
// first. A ": keep-alive" comment is sent every KeepAlive. The stream ends
// when the client goes, on shutdown, or when the client reads too slowly.
// A user past sse.max_per_user open streams gets 429 RATE_LIMITED; a
// resume while sse.max_resumes run gets 503 UNAVAILABLE (both with
// Retry-After).
func (s *Service) Stream(c *gin.Context) {
	id, ok := ownUser(c)
	if !ok {
		return
	}
	ctx := c.Request.Context()
	last := c.GetHeader("Last-Event-ID")
	if last == "" {
		last = c.Query("last_event_id")
	}
	release, ok := s.opt.Streams.Acquire(id)
	if !ok {
		s.Metrics.RateLimited.WithLabelValues("user", "sse_streams").Inc()
		fail(c, apperr.Newf(apperr.ReasonRateLimited, "this user already has %d open streams; close one first", s.opt.Streams.Max()).
			WithRetryAfter(time.Second))
		return
	}
	defer release()
	sub, err := s.Feed.Subscribe(ctx, id, last)
	if errors.Is(err, natsbus.ErrReplayBusy) {
		s.Metrics.RateLimited.WithLabelValues("process", "resumes").Inc()
		fail(c, apperr.Wrap(err, apperr.ReasonUnavailable, "too many resumes in progress; retry shortly").WithRetryAfter(time.Second))
		return
	}
	if err != nil {
		fail(c, apperr.Wrap(err, apperr.ReasonUnavailable, "event stream unavailable"))
		return
	}
	defer sub.Close()
	s.Metrics.SSEClients.Inc()
	defer s.Metrics.SSEClients.Dec()

	h := c.Writer.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	h.Set("Connection", "keep-alive")
	h.Set("X-Accel-Buffering", "no")
	c.Status(http.StatusOK)
	w := c.Writer
	if !sub.Resumed {
		st, err := s.state(ctx, id, "sse")
		if err != nil {
			return
		}
		raw, _ := json.Marshal(st)
		if _, err := fmt.Fprintf(w, "event: sync_state\ndata: %s\n\n", raw); err != nil {
			return
		}
	}
	for _, env := range sub.Replay {
		if writeEvent(w, env) != nil {
			return
		}
	}
	w.Flush()
	tick := time.NewTicker(s.opt.KeepAlive)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-s.opt.Stop:
			return
		case env, ok := <-sub.C():
			if !ok {
				return
			}
			if writeEvent(w, env) != nil {
				return
			}
		case <-tick.C:
			if _, err := io.WriteString(w, ": keep-alive\n\n"); err != nil {
				return
			}
		}
		w.Flush()
	}
}

// writeEvent writes one SSE event: id = event id, event = type, data =
// the envelope.
func writeEvent(w io.Writer, env events.Envelope) error {
	raw, err := json.Marshal(env)
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "id: %s\nevent: %s\ndata: %s\n\n", env.ID, env.Type, raw)
	return err
}
