package service

import (
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"github.com/lurus-switch/lurus-switch/billing-service/internal/biz"
	"github.com/lurus-switch/lurus-switch/lurus-common/apperr"
)

// usageFilter reads user_id, model, from and to (RFC 3339).
func usageFilter(c *gin.Context) (biz.UsageFilter, error) {
	f := biz.UsageFilter{UserID: c.Query("user_id"), Model: c.Query("model")}
	for _, q := range []struct {
		name string
		dst  *time.Time
	}{{"from", &f.From}, {"to", &f.To}} {
		if s := c.Query(q.name); s != "" {
			t, err := time.Parse(time.RFC3339, s)
			if err != nil {
				return f, apperr.Newf(apperr.ReasonInvalidTimeRange, "%s must be an RFC 3339 time", q.name)
			}
			*q.dst = t
		}
	}
	if !f.From.IsZero() && !f.To.IsZero() && !f.From.Before(f.To) {
		return f, apperr.New(apperr.ReasonInvalidTimeRange, "from must be before to")
	}
	return f, nil
}

// Usage is GET /api/v1/billing/usage?user_id&model&from&to&limit&cursor.
func (s *Service) Usage(c *gin.Context) {
	f, err := usageFilter(c)
	if err != nil {
		fail(c, err)
		return
	}
	p, err := page(c)
	if err != nil {
		fail(c, err)
		return
	}
	items, next, err := s.Reports.Usage(c.Request.Context(), f, p)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, newList(items, next))
}

// Stats is GET /api/v1/billing/stats/usage?user_id&model&from&to&limit:
// requests, tokens and cost per user, model and UTC day.
func (s *Service) Stats(c *gin.Context) {
	f, err := usageFilter(c)
	if err != nil {
		fail(c, err)
		return
	}
	limit := 1000
	if v := c.Query("limit"); v != "" {
		if limit, err = strconv.Atoi(v); err != nil || limit < 1 || limit > 10000 {
			fail(c, apperr.New(apperr.ReasonInvalidArgument, "limit must be 1..10000"))
			return
		}
	}
	items, err := s.Reports.UsageStats(c.Request.Context(), f, limit)
	if err != nil {
		fail(c, err)
		return
	}
	c.JSON(http.StatusOK, newList(items, ""))
}
