package data

import (
	"context"
	"net/netip"
	"time"

	"github.com/lurus-switch/lurus-switch/gateway-service/internal/biz"
	"github.com/lurus-switch/lurus-switch/lurus-common/internalapi"
	"github.com/lurus-switch/lurus-switch/lurus-common/pricing"
)

// Billing is billing-service's internal API as the gateway uses it.
type Billing struct{ c *internalapi.Client }

// NewBilling returns the adapter over c.
func NewBilling(c *internalapi.Client) *Billing { return &Billing{c: c} }

// VerifyKey implements biz.KeyVerifier.
func (b *Billing) VerifyKey(ctx context.Context, key string) (biz.KeyInfo, error) {
	r, err := b.c.VerifyKey(ctx, key)
	if err != nil {
		return biz.KeyInfo{}, err
	}
	ki := biz.KeyInfo{KeyID: r.KeyID, UserID: r.UserID, UserGroup: r.UserGroup, UserActive: r.UserActive,
		Models: r.Models, SpendLimitMicros: r.SpendLimitMicros}
	if r.ExpiresAt != nil {
		ki.ExpiresAt = *r.ExpiresAt
	}
	for _, s := range r.AllowedIPs {
		if p, err := netip.ParsePrefix(s); err == nil {
			ki.AllowedIPs = append(ki.AllowedIPs, p.Masked())
		} else if a, err := netip.ParseAddr(s); err == nil {
			ki.AllowedIPs = append(ki.AllowedIPs, netip.PrefixFrom(a.Unmap(), a.Unmap().BitLen()))
		}
		// An entry that parses as neither is skipped; if none parses the
		// key allows no address, never every address.
	}
	if len(r.AllowedIPs) > 0 && len(ki.AllowedIPs) == 0 {
		ki.AllowedIPs = []netip.Prefix{netip.MustParsePrefix("0.0.0.0/32")}
	}
	return ki, nil
}

// LoadAccount implements biz.AccountLoader.
func (b *Billing) LoadAccount(ctx context.Context, userID string) error {
	return b.c.LoadAccount(ctx, userID)
}

// Prices fetches the price table.
func (b *Billing) Prices(ctx context.Context) (*pricing.Table, error) {
	pt, err := b.c.Prices(ctx)
	if err != nil {
		return nil, err
	}
	return pt.Table(), nil
}

// Providers is provider-service's snapshot route.
type Providers struct{ c *internalapi.Client }

// NewProviders returns the adapter over c.
func NewProviders(c *internalapi.Client) *Providers { return &Providers{c: c} }

// Snapshot fetches the provider snapshot.
func (p *Providers) Snapshot(ctx context.Context) (internalapi.Snapshot, error) {
	return p.c.Snapshot(ctx)
}

// NewInternalClient returns an internalapi client with the gateway's
// timeout.
func NewInternalClient(url, token string, timeout time.Duration) *internalapi.Client {
	return internalapi.NewClient(url, token, timeout)
}
