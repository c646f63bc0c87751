package data

import (
	"context"
	"time"

	"github.com/lurus-switch/lurus-switch/gateway-service/internal/biz"
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

// Snapshot fetches the provider snapshot, in the relay's terms.
func (p *Providers) Snapshot(ctx context.Context) (biz.Snapshot, error) {
	s, err := p.c.Snapshot(ctx)
	if err != nil {
		return biz.Snapshot{}, err
	}
	return ProviderSnapshot(s), nil
}

// ProviderSnapshot converts provider-service's snapshot into biz's form,
// ready for Router.Load. A timeout of 0 ms stays zero: the router's
// default.
func ProviderSnapshot(s internalapi.Snapshot) biz.Snapshot {
	out := biz.Snapshot{Version: s.Version, Providers: make([]*biz.Provider, 0, len(s.Providers))}
	ms := func(n int64) time.Duration { return time.Duration(max(n, 0)) * time.Millisecond }
	for _, ip := range s.Providers {
		p := &biz.Provider{ID: ip.ID, Name: ip.Name, Type: ip.Type, BaseURL: ip.BaseURL, APIVersion: ip.APIVersion,
			Priority: ip.Priority, Weight: ip.Weight, Models: ip.Models, ModelMapping: ip.ModelMapping,
			Timeouts: biz.Timeouts{Connect: ms(ip.Timeouts.ConnectMs), FirstByte: ms(ip.Timeouts.FirstByteMs),
				Idle: ms(ip.Timeouts.IdleMs), Total: ms(ip.Timeouts.TotalMs)},
			Headers: ip.Headers, AllowPrivateNetwork: ip.AllowPrivateNetwork, PassthroughOnly: ip.PassthroughOnly}
		for _, k := range ip.Keys {
			p.Keys = append(p.Keys, &biz.ProviderKey{ID: k.ID, Secret: k.Key, Limits: k.Limits()})
		}
		out.Providers = append(out.Providers, p)
	}
	return out
}

// NewInternalClient returns an internalapi client with the gateway's
// timeout.
func NewInternalClient(url, token string, timeout time.Duration) *internalapi.Client {
	return internalapi.NewClient(url, token, timeout)
}
