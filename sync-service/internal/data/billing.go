package data

import (
	"context"
	"fmt"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"github.com/lurus-switch/lurus-switch/lurus-common/apperr"
	"github.com/lurus-switch/lurus-switch/lurus-common/internalapi"

	"github.com/lurus-switch/lurus-switch/sync-service/internal/biz"
)

// Billing reaches billing-service's internal routes.
type Billing struct {
	client *internalapi.Client
}

// NewBilling returns a Billing calling baseURL with the internal token.
func NewBilling(baseURL, internalToken string, timeout time.Duration) *Billing {
	return &Billing{client: internalapi.NewClient(baseURL, internalToken, timeout)}
}

// VerifyKey implements biz.KeyVerifier with POST /internal/v1/keys/verify.
func (b *Billing) VerifyKey(ctx context.Context, key string) (biz.Identity, error) {
	r, err := b.client.VerifyKey(ctx, key)
	if err != nil {
		return biz.Identity{}, internalError(err)
	}
	ident := biz.Identity{UserID: r.UserID, KeyID: r.KeyID, Active: r.UserActive, ExpiresAt: r.ExpiresAt}
	for _, s := range r.AllowedIPs {
		p, err := parsePrefix(s)
		if err != nil {
			// A malformed entry must not widen the allow-list: it admits nothing.
			continue
		}
		ident.AllowedIPs = append(ident.AllowedIPs, p)
	}
	if len(r.AllowedIPs) > 0 && len(ident.AllowedIPs) == 0 {
		ident.AllowedIPs = []netip.Prefix{{}} // an invalid prefix: contains no address
	}
	if r.UserID == "" {
		return biz.Identity{}, apperr.Internal(fmt.Errorf("billing verify: answer without user id"))
	}
	return ident, nil
}

// SyncState reads a user's full state with GET /internal/v1/sync/<user_id>.
func (b *Billing) SyncState(ctx context.Context, userID string) (internalapi.SyncState, error) {
	s, err := b.client.SyncState(ctx, userID)
	if err != nil {
		return internalapi.SyncState{}, internalError(err)
	}
	return s, nil
}

// Ping checks billing answers its health route (readiness).
func (b *Billing) Ping(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, b.client.BaseURL+"/health", nil)
	if err != nil {
		return err
	}
	resp, err := b.client.HTTP.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("billing /health: status %d", resp.StatusCode)
	}
	return nil
}

// internalError keeps billing's apperr answers (a refused key) and turns
// anything else (an undecodable body) into an unavailable dependency.
func internalError(err error) error {
	if apperr.KindOf(err) != apperr.KindInternal {
		return err
	}
	return apperr.Wrap(err, apperr.ReasonDependencyDown, "billing-service answered unexpectedly")
}

func parsePrefix(s string) (netip.Prefix, error) {
	if !strings.Contains(s, "/") {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return netip.Prefix{}, err
		}
		return netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()), nil
	}
	p, err := netip.ParsePrefix(s)
	if err != nil {
		return netip.Prefix{}, err
	}
	if a := p.Addr(); a.Is4In6() {
		// ::ffff:a.b.c.d/N is the IPv4 prefix a.b.c.d/(N-96), the form
		// client addresses are compared in.
		if p.Bits() < 96 {
			return netip.Prefix{}, fmt.Errorf("prefix %s is wider than the IPv4-mapped range", s)
		}
		return netip.PrefixFrom(a.Unmap(), p.Bits()-96).Masked(), nil
	}
	return p.Masked(), nil
}
