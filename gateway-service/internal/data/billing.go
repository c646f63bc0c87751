package data

import (
	"context"
	"time"

	"github.com/lurus-switch/lurus-switch/lurus-common/internalapi"
	"github.com/lurus-switch/lurus-switch/lurus-common/pricing"
)

// Billing is billing-service's internal API as the gateway uses it.
type Billing struct{ c *internalapi.Client }

// NewBilling returns the adapter over c.
func NewBilling(c *internalapi.Client) *Billing { return &Billing{c: c} }

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
