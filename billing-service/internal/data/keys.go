package data

import (
	"context"

	"github.com/jackc/pgx/v5"

	"github.com/lurus-switch/lurus-switch/billing-service/internal/biz"
	"github.com/lurus-switch/lurus-switch/lurus-common/apperr"
	"github.com/lurus-switch/lurus-switch/lurus-common/postgres"
)

const keyCols = `id, user_id, name, prefix, status, models, allowed_ips, expires_at,
	spend_limit_micros, spent_micros, created_at, updated_at, revoked_at, rpm_limit, tpm_limit, concurrency_limit`

func scanKey(row pgx.Row) (*biz.Key, error) {
	var k biz.Key
	err := row.Scan(&k.ID, &k.UserID, &k.Name, &k.Prefix, &k.Status, &k.Models, &k.AllowedIPs, &k.ExpiresAt,
		&k.SpendLimitMicros, &k.SpentMicros, &k.CreatedAt, &k.UpdatedAt, &k.RevokedAt, &k.RPM, &k.TPM, &k.Concurrency)
	if err != nil {
		return nil, err
	}
	return &k, nil
}

// CreateKey stores k with the keyed hash of its secret.
func (s *Store) CreateKey(ctx context.Context, k *biz.Key, hash string) error {
	_, err := s.pool.Exec(ctx, `INSERT INTO api_keys (id, user_id, name, key_hash, prefix, status, models,
		allowed_ips, expires_at, spend_limit_micros, created_at, updated_at, rpm_limit, tpm_limit, concurrency_limit)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $11, $12, $13, $14)`,
		k.ID, k.UserID, k.Name, hash, k.Prefix, k.Status, k.Models, k.AllowedIPs, k.ExpiresAt, k.SpendLimitMicros, k.CreatedAt,
		k.RPM, k.TPM, k.Concurrency)
	if postgres.IsForeignKeyViolation(err) {
		return apperr.Wrap(err, apperr.ReasonUserNotFound, "user not found")
	}
	return err
}

// GetKey returns a key by id (KEY_NOT_FOUND when there is none).
func (s *Store) GetKey(ctx context.Context, id string) (*biz.Key, error) {
	k, err := scanKey(s.pool.QueryRow(ctx, `SELECT `+keyCols+` FROM api_keys WHERE id = $1`, id))
	return k, postgres.MapError(err, apperr.ReasonKeyNotFound, apperr.ReasonConflict)
}

// ListKeys returns a user's keys, oldest first.
func (s *Store) ListKeys(ctx context.Context, userID string) ([]*biz.Key, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+keyCols+` FROM api_keys WHERE user_id = $1 ORDER BY created_at, id`, userID)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (*biz.Key, error) { return scanKey(r) })
}

// UpdateKey locks a key, lets fn change it and writes name, allow-lists,
// expiry, spend limit, rate limits and status back. Revoking sets revoked_at.
func (s *Store) UpdateKey(ctx context.Context, id string, fn func(k *biz.Key) error) (*biz.Key, error) {
	var k *biz.Key
	err := s.inTx(ctx, func(tx pgx.Tx) error {
		var err error
		k, err = scanKey(tx.QueryRow(ctx, `SELECT `+keyCols+` FROM api_keys WHERE id = $1 FOR UPDATE`, id))
		if err != nil {
			return postgres.MapError(err, apperr.ReasonKeyNotFound, apperr.ReasonConflict)
		}
		wasActive := k.Status == biz.KeyActive
		if err := fn(k); err != nil {
			return err
		}
		k.UpdatedAt = s.now().UTC()
		if wasActive && k.Status == biz.KeyRevoked {
			k.RevokedAt = &k.UpdatedAt
		}
		_, err = tx.Exec(ctx, `UPDATE api_keys SET name = $2, models = $3, allowed_ips = $4, expires_at = $5,
			spend_limit_micros = $6, status = $7, revoked_at = $8, updated_at = $9,
			rpm_limit = $10, tpm_limit = $11, concurrency_limit = $12 WHERE id = $1`,
			k.ID, k.Name, k.Models, k.AllowedIPs, k.ExpiresAt, k.SpendLimitMicros, k.Status, k.RevokedAt, k.UpdatedAt,
			k.RPM, k.TPM, k.Concurrency)
		return err
	})
	return k, err
}

// KeyByHash returns the key with this keyed hash and its user's id, status,
// group and rate limits (INVALID_CREDENTIALS when there is none).
func (s *Store) KeyByHash(ctx context.Context, hash string) (*biz.Key, *biz.User, error) {
	row := s.pool.QueryRow(ctx, `SELECT k.id, k.user_id, k.name, k.prefix, k.status, k.models, k.allowed_ips,
		k.expires_at, k.spend_limit_micros, k.spent_micros, k.created_at, k.updated_at, k.revoked_at,
		k.rpm_limit, k.tpm_limit, k.concurrency_limit,
		u.status, u.user_group, u.rpm_limit, u.tpm_limit, u.concurrency_limit
		FROM api_keys k JOIN users u ON u.id = k.user_id WHERE k.key_hash = $1`, hash)
	var k biz.Key
	var u biz.User
	err := row.Scan(&k.ID, &k.UserID, &k.Name, &k.Prefix, &k.Status, &k.Models, &k.AllowedIPs, &k.ExpiresAt,
		&k.SpendLimitMicros, &k.SpentMicros, &k.CreatedAt, &k.UpdatedAt, &k.RevokedAt,
		&k.RPM, &k.TPM, &k.Concurrency, &u.Status, &u.Group, &u.RPM, &u.TPM, &u.Concurrency)
	if errNotFound(err) {
		return nil, nil, apperr.New(apperr.ReasonInvalidCredentials, "invalid API key")
	}
	if err != nil {
		return nil, nil, err
	}
	u.ID = k.UserID
	return &k, &u, nil
}
