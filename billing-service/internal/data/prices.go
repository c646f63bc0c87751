package data

import (
	"context"

	"github.com/jackc/pgx/v5"

	"github.com/lurus-switch/lurus-switch/billing-service/internal/biz"
	"github.com/lurus-switch/lurus-switch/lurus-common/apperr"
	"github.com/lurus-switch/lurus-switch/lurus-common/postgres"
	"github.com/lurus-switch/lurus-switch/lurus-common/pricing"
)

// Prices reads the whole price table in one snapshot.
func (s *Store) Prices(ctx context.Context) (biz.PriceSet, error) {
	set := biz.PriceSet{Multipliers: map[string]int64{}}
	err := postgres.InTxOptions(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, `SELECT version FROM price_version`).Scan(&set.Version); err != nil {
			return err
		}
		rows, err := tx.Query(ctx, `SELECT id, model_pattern, input_micros_per_mtok, output_micros_per_mtok,
			cached_input_micros_per_mtok, cache_write_micros_per_mtok FROM prices ORDER BY model_pattern`)
		if err != nil {
			return err
		}
		set.Prices, err = pgx.CollectRows(rows, func(r pgx.CollectableRow) (pricing.Price, error) {
			var p pricing.Price
			err := r.Scan(&p.ID, &p.ModelPattern, &p.InputMicrosPerMTok, &p.OutputMicrosPerMTok,
				&p.CachedInputMicrosPerMTok, &p.CacheWriteMicrosPerMTok)
			return p, err
		})
		if err != nil {
			return err
		}
		rows, err = tx.Query(ctx, `SELECT group_name, multiplier_bps FROM group_multipliers`)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var g string
			var bps int64
			if err := rows.Scan(&g, &bps); err != nil {
				return err
			}
			set.Multipliers[g] = bps
		}
		return rows.Err()
	})
	if set.Prices == nil {
		set.Prices = []pricing.Price{}
	}
	return set, err
}

// changePrices runs fn and bumps the price version in one transaction,
// returning the new version.
func (s *Store) changePrices(ctx context.Context, fn func(tx pgx.Tx) error) (int64, error) {
	var v int64
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		if err := fn(tx); err != nil {
			return err
		}
		return tx.QueryRow(ctx, `UPDATE price_version SET version = version + 1 RETURNING version`).Scan(&v)
	})
	return v, err
}

// CreatePrice inserts p (DUPLICATE_NAME when its pattern has a price).
func (s *Store) CreatePrice(ctx context.Context, p pricing.Price) (int64, error) {
	return s.changePrices(ctx, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO prices (id, model_pattern, input_micros_per_mtok, output_micros_per_mtok,
			cached_input_micros_per_mtok, cache_write_micros_per_mtok) VALUES ($1, $2, $3, $4, $5, $6)`,
			p.ID, p.ModelPattern, p.InputMicrosPerMTok, p.OutputMicrosPerMTok, p.CachedInputMicrosPerMTok, p.CacheWriteMicrosPerMTok)
		if postgres.IsUniqueViolation(err) {
			return apperr.Wrap(err, apperr.ReasonDuplicateName, "a price for this model pattern exists")
		}
		return err
	})
}

// UpdatePrice replaces the price with p.ID.
func (s *Store) UpdatePrice(ctx context.Context, p pricing.Price) (int64, error) {
	return s.changePrices(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `UPDATE prices SET model_pattern = $2, input_micros_per_mtok = $3,
			output_micros_per_mtok = $4, cached_input_micros_per_mtok = $5, cache_write_micros_per_mtok = $6,
			updated_at = now() WHERE id = $1`,
			p.ID, p.ModelPattern, p.InputMicrosPerMTok, p.OutputMicrosPerMTok, p.CachedInputMicrosPerMTok, p.CacheWriteMicrosPerMTok)
		if postgres.IsUniqueViolation(err) {
			return apperr.Wrap(err, apperr.ReasonDuplicateName, "a price for this model pattern exists")
		}
		return requireRow(tag.RowsAffected(), err, apperr.ReasonPriceNotFound)
	})
}

// DeletePrice removes a price.
func (s *Store) DeletePrice(ctx context.Context, id string) (int64, error) {
	return s.changePrices(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM prices WHERE id = $1`, id)
		return requireRow(tag.RowsAffected(), err, apperr.ReasonPriceNotFound)
	})
}

// SetMultiplier sets a group's multiplier in basis points.
func (s *Store) SetMultiplier(ctx context.Context, group string, bps int64) (int64, error) {
	return s.changePrices(ctx, func(tx pgx.Tx) error {
		_, err := tx.Exec(ctx, `INSERT INTO group_multipliers (group_name, multiplier_bps) VALUES ($1, $2)
			ON CONFLICT (group_name) DO UPDATE SET multiplier_bps = EXCLUDED.multiplier_bps, updated_at = now()`, group, bps)
		return err
	})
}

// DeleteMultiplier removes a group's multiplier (the group pays ×1).
func (s *Store) DeleteMultiplier(ctx context.Context, group string) (int64, error) {
	return s.changePrices(ctx, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM group_multipliers WHERE group_name = $1`, group)
		return requireRow(tag.RowsAffected(), err, apperr.ReasonNotFound)
	})
}

func requireRow(n int64, err error, notFound apperr.Reason) error {
	if err != nil {
		return err
	}
	if n == 0 {
		return apperr.New(notFound, "not found")
	}
	return nil
}
