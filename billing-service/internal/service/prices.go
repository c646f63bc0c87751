package service

import (
	"net/http"
	"strconv"

	"github.com/gin-gonic/gin"

	"github.com/lurus-switch/lurus-switch/billing-service/internal/biz"
	"github.com/lurus-switch/lurus-switch/lurus-common/apperr"
	"github.com/lurus-switch/lurus-switch/lurus-common/internalapi"
	"github.com/lurus-switch/lurus-switch/lurus-common/modelglob"
	"github.com/lurus-switch/lurus-switch/lurus-common/pricing"
)

func checkPrice(p pricing.Price) error {
	if err := modelglob.Validate(p.ModelPattern); err != nil || p.ModelPattern == "" {
		return apperr.New(apperr.ReasonInvalidGlob, "model_pattern must be a model name or glob")
	}
	return p.CheckAmounts()
}

// CreatePrice is POST /api/v1/billing/prices.
func (s *Service) CreatePrice(c *gin.Context) {
	var p pricing.Price
	if err := bind(c, &p); err != nil {
		fail(c, err)
		return
	}
	p.ID = biz.NewID(biz.PrefixPrice)
	if err := checkPrice(p); err != nil {
		fail(c, err)
		return
	}
	s.priceChange(c, http.StatusCreated, p, func() (int64, error) { return s.Prices.CreatePrice(c.Request.Context(), p) })
}

// UpdatePrice is PUT /api/v1/billing/prices/{id}.
func (s *Service) UpdatePrice(c *gin.Context) {
	var p pricing.Price
	if err := bind(c, &p); err != nil {
		fail(c, err)
		return
	}
	p.ID = c.Param("id")
	if err := checkPrice(p); err != nil {
		fail(c, err)
		return
	}
	s.priceChange(c, http.StatusOK, p, func() (int64, error) { return s.Prices.UpdatePrice(c.Request.Context(), p) })
}

// DeletePrice is DELETE /api/v1/billing/prices/{id}.
func (s *Service) DeletePrice(c *gin.Context) {
	s.priceChange(c, http.StatusNoContent, nil, func() (int64, error) { return s.Prices.DeletePrice(c.Request.Context(), c.Param("id")) })
}

// multiplierRequest is the body of PUT /groups/{group}.
type multiplierRequest struct {
	MultiplierBps int64 `json:"multiplier_bps"`
}

// SetMultiplier is PUT /api/v1/billing/groups/{group}: the group's price
// multiplier in basis points (10000 = ×1).
func (s *Service) SetMultiplier(c *gin.Context) {
	var req multiplierRequest
	if err := bind(c, &req); err != nil {
		fail(c, err)
		return
	}
	g := c.Param("group")
	if !biz.ValidGroup(g) || req.MultiplierBps < 0 || req.MultiplierBps > 1000*pricing.BasisPoints {
		fail(c, apperr.New(apperr.ReasonInvalidArgument, "group must be 1-64 of [A-Za-z0-9_-] and multiplier_bps 0..10000000"))
		return
	}
	body := gin.H{"group": g, "multiplier_bps": req.MultiplierBps}
	s.priceChange(c, http.StatusOK, body, func() (int64, error) { return s.Prices.SetMultiplier(c.Request.Context(), g, req.MultiplierBps) })
}

// DeleteMultiplier is DELETE /api/v1/billing/groups/{group}.
func (s *Service) DeleteMultiplier(c *gin.Context) {
	s.priceChange(c, http.StatusNoContent, nil, func() (int64, error) { return s.Prices.DeleteMultiplier(c.Request.Context(), c.Param("group")) })
}

// priceChange runs a change, reloads the local table and announces the
// new version (price.changed) to the gateways.
func (s *Service) priceChange(c *gin.Context, status int, body any, change func() (int64, error)) {
	v, err := change()
	if err != nil {
		fail(c, err)
		return
	}
	if err := s.PriceBook.Refresh(c.Request.Context()); err != nil {
		s.Log.Warn("price table reload failed", "err", err)
	}
	s.propagate(c, biz.Effects{PriceVersion: v})
	c.Header("ETag", etag(v))
	if body == nil {
		c.Status(status)
		return
	}
	c.JSON(status, body)
}

func etag(v int64) string { return `"` + strconv.FormatInt(v, 10) + `"` }

// ListPrices is GET /api/v1/billing/prices: every price, the group
// multipliers, the default price and the table version.
func (s *Service) ListPrices(c *gin.Context) {
	set := s.PriceBook.Set()
	c.JSON(http.StatusOK, gin.H{"items": set.Prices, "next_cursor": nil, "version": set.Version,
		"group_multipliers_bps": set.Multipliers, "default": set.Default})
}

// InternalPrices is GET /internal/v1/prices for the gateway, with ETag /
// If-None-Match on the table version.
func (s *Service) InternalPrices(c *gin.Context) {
	set := s.PriceBook.Set()
	tag := etag(set.Version)
	c.Header("ETag", tag)
	if c.GetHeader("If-None-Match") == tag {
		c.Status(http.StatusNotModified)
		return
	}
	c.JSON(http.StatusOK, internalapi.PriceTable{Version: set.Version, Prices: set.Prices, Default: set.Default,
		GroupMultipliersBps: set.Multipliers})
}
