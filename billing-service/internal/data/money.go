package data

import (
	"context"
	"encoding/json"

	"github.com/jackc/pgx/v5"

	"github.com/lurus-switch/lurus-switch/billing-service/internal/biz"
	"github.com/lurus-switch/lurus-switch/lurus-common/apperr"
)

// Post books r in one transaction with its idempotency key: the key row
// is inserted first, so a concurrent request with the same key waits for
// this one and then replays its result. Failures write nothing.
func (s *Store) Post(ctx context.Context, r biz.PostRequest) (biz.PostResult, error) {
	var res biz.PostResult
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		res = biz.PostResult{}
		tag, err := tx.Exec(ctx, `INSERT INTO idempotency_keys (idem_key, request_hash, status_code, response)
			VALUES ($1, $2, 0, '') ON CONFLICT (idem_key) DO NOTHING`, r.IdemKey, r.RequestHash)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			var hash string
			if err := tx.QueryRow(ctx, `SELECT request_hash, status_code, response FROM idempotency_keys WHERE idem_key = $1`,
				r.IdemKey).Scan(&hash, &res.Status, &res.Body); err != nil {
				return err
			}
			if hash != r.RequestHash {
				return apperr.New(apperr.ReasonIdemKeyReused, "Idempotency-Key was already used with a different request")
			}
			res.Replayed = true
			return nil
		}
		var entry biz.LedgerEntry
		acct, err := s.lockedAccount(ctx, tx, r.UserID, func(a *biz.Account) error {
			var err error
			entry, err = a.Post(r.Kind, r.AmountMicros, r.Note)
			return err
		})
		if err != nil {
			return err
		}
		res.Status = 201
		if res.Body, err = json.Marshal(entry); err != nil {
			return err
		}
		res.Effects = biz.EffectsOf(acct)
		_, err = tx.Exec(ctx, `UPDATE idempotency_keys SET status_code = $2, response = $3 WHERE idem_key = $1`,
			r.IdemKey, res.Status, res.Body)
		return err
	})
	return res, err
}
