package data

import (
	"context"

	"github.com/jackc/pgx/v5"

	"github.com/lurus-switch/lurus-switch/billing-service/internal/biz"
	"github.com/lurus-switch/lurus-switch/lurus-common/apperr"
	"github.com/lurus-switch/lurus-switch/lurus-common/postgres"
)

// Mirrors returns the admission state of up to limit users with id >
// after, in id order, with the spend of every key: one step of a full
// rebuild of the Redis mirror. An empty result ends the rebuild.
func (s *Store) Mirrors(ctx context.Context, after string, limit int) ([]biz.Mirror, error) {
	return s.mirrors(ctx, `WHERE id > $1 ORDER BY id LIMIT $2`, after, limit)
}

// Mirror returns one user's admission state (USER_NOT_FOUND when none).
func (s *Store) Mirror(ctx context.Context, userID string) (biz.Mirror, error) {
	ms, err := s.mirrors(ctx, `WHERE id = $1`, userID)
	if err != nil {
		return biz.Mirror{}, err
	}
	if len(ms) == 0 {
		return biz.Mirror{}, apperr.New(apperr.ReasonUserNotFound, "user not found")
	}
	return ms[0], nil
}

// mirrors reads users selected by where (with args) and their key spends
// in one snapshot.
func (s *Store) mirrors(ctx context.Context, where string, args ...any) ([]biz.Mirror, error) {
	var out []biz.Mirror
	err := postgres.InTxOptions(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		out = nil
		rows, err := tx.Query(ctx, `SELECT `+userCols+` FROM users `+where, args...)
		if err != nil {
			return err
		}
		us, err := collectUsers(rows)
		if err != nil || len(us) == 0 {
			return err
		}
		idx := make(map[string]int, len(us))
		ids := make([]string, len(us))
		for i, u := range us {
			m := biz.MirrorOf(u)
			m.KeySpentMicros = map[string]int64{}
			out = append(out, m)
			idx[u.ID], ids[i] = i, u.ID
		}
		rows, err = tx.Query(ctx, `SELECT user_id, id, spent_micros FROM api_keys WHERE user_id = ANY($1)`, ids)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var uid, kid string
			var spent int64
			if err := rows.Scan(&uid, &kid, &spent); err != nil {
				return err
			}
			out[idx[uid]].KeySpentMicros[kid] = spent
		}
		return rows.Err()
	})
	return out, err
}
