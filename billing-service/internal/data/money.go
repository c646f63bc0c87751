package data

import (
	"context"
	"fmt"

	"github.com/lurus-switch/lurus-switch/billing-service/internal/biz"
)

// ClaimIdemKey inserts the key row with ON CONFLICT DO NOTHING: a
// concurrent transaction inserting the same key waits on the unique index
// until this one ends. When the key was there, its row is read (see
// biz.AccountStore).
func (t storeTx) ClaimIdemKey(ctx context.Context, key, hash string) (biz.IdemRecord, bool, error) {
	tag, err := t.tx.Exec(ctx, `INSERT INTO idempotency_keys (idem_key, request_hash, status_code, response)
		VALUES ($1, $2, 0, '') ON CONFLICT (idem_key) DO NOTHING`, key, hash)
	if err != nil {
		return biz.IdemRecord{}, false, fmt.Errorf("data: claim idempotency key: %w", err)
	}
	if tag.RowsAffected() == 1 {
		return biz.IdemRecord{}, false, nil
	}
	var rec biz.IdemRecord
	if err := t.tx.QueryRow(ctx, `SELECT request_hash, status_code, response FROM idempotency_keys WHERE idem_key = $1`,
		key).Scan(&rec.RequestHash, &rec.Status, &rec.Body); err != nil {
		return biz.IdemRecord{}, false, fmt.Errorf("data: read idempotency key: %w", err)
	}
	return rec, true, nil
}

// AnswerIdemKey stores the answer in the key's row.
func (t storeTx) AnswerIdemKey(ctx context.Context, key string, status int, body []byte) error {
	_, err := t.tx.Exec(ctx, `UPDATE idempotency_keys SET status_code = $2, response = $3 WHERE idem_key = $1`,
		key, status, body)
	if err != nil {
		return fmt.Errorf("data: answer idempotency key: %w", err)
	}
	return nil
}
