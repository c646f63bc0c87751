package biz

import (
	"context"
	"sync/atomic"

	"github.com/lurus-switch/lurus-switch/lurus-common/pricing"
)

// PriceSet is the whole price table as stored: prices, group multipliers
// (basis points) and the version that changes with either.
type PriceSet struct {
	Version     int64
	Prices      []pricing.Price
	Multipliers map[string]int64
	// Default prices models no price matches (nil: they are refused).
	Default *pricing.Price
}

// PriceSource loads the price table.
type PriceSource interface {
	Prices(ctx context.Context) (PriceSet, error)
}

// PriceBook keeps the price table in memory for settlement and the
// internal prices route, and reloads it when told prices changed.
type PriceBook struct {
	src PriceSource
	def *pricing.Price
	cur atomic.Pointer[priceState]
}

type priceState struct {
	set   PriceSet
	table *pricing.Table
}

// NewPriceBook returns a book over src with def as the default price
// (nil: none). Call Refresh before use.
func NewPriceBook(src PriceSource, def *pricing.Price) *PriceBook {
	return &PriceBook{src: src, def: def}
}

// Refresh reloads the table. A version older than the one held is ignored.
func (b *PriceBook) Refresh(ctx context.Context) error {
	set, err := b.src.Prices(ctx)
	if err != nil {
		return err
	}
	set.Default = b.def
	st := &priceState{set: set, table: pricing.NewTable(set.Prices, set.Default, set.Multipliers, set.Version)}
	for {
		old := b.cur.Load()
		if old != nil && old.set.Version > set.Version {
			return nil
		}
		if b.cur.CompareAndSwap(old, st) {
			return nil
		}
	}
}

// Table is the current pricing table (nil before the first Refresh).
func (b *PriceBook) Table() *pricing.Table {
	if st := b.cur.Load(); st != nil {
		return st.table
	}
	return nil
}

// Set is the current price set.
func (b *PriceBook) Set() PriceSet {
	if st := b.cur.Load(); st != nil {
		return st.set
	}
	return PriceSet{}
}
