package data

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/lurus-switch/lurus-switch/lurus-common/postgres"
	"github.com/lurus-switch/lurus-switch/provider-service/internal/keyring"
)

// KeyUsage counts stored provider keys per encryption key id.
type KeyUsage map[string]int

// CheckKeys proves the keyring opens what is stored: for every encryption
// key id found in provider_keys it decrypts one row. It fails, naming the
// key id, when that id is not in the keyring or its key is the wrong one,
// so a service with a wrong LURUS_SECRET_KEY refuses to start instead of
// serving a snapshot it cannot build. It returns how many rows each key id
// seals (rows under a previous key are what rotate-keys re-encrypts).
func (s *Providers) CheckKeys(ctx context.Context) (KeyUsage, error) {
	rows, err := s.pool.Query(ctx, `SELECT DISTINCT ON (secret_key_id) `+keyColumns+`,
		count(*) OVER (PARTITION BY secret_key_id) FROM provider_keys ORDER BY secret_key_id, id`)
	if err != nil {
		return nil, fmt.Errorf("check keys: %w", err)
	}
	usage := KeyUsage{}
	type sample struct {
		row keyRow
		n   int
	}
	samples, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (sample, error) {
		var sm sample
		err := r.Scan(&sm.row.key.ID, &sm.row.providerID, &sm.row.sealed.KeyID, &sm.row.sealed.Nonce,
			&sm.row.sealed.Ciphertext, &sm.row.key.Masked, &sm.row.key.Enabled, &sm.row.key.CreatedAt,
			&sm.row.key.RPMLimit, &sm.row.key.TPMLimit, &sm.n)
		return sm, err
	})
	if err != nil {
		return nil, fmt.Errorf("check keys: %w", err)
	}
	for _, sm := range samples {
		kid := sm.row.sealed.KeyID
		usage[kid] = sm.n
		if !s.keys.Has(kid) {
			return usage, fmt.Errorf("%d provider keys are encrypted under key id %q, which is neither LURUS_SECRET_KEY (key id %q) nor in LURUS_SECRET_KEYS_PREVIOUS: add it to LURUS_SECRET_KEYS_PREVIOUS",
				sm.n, kid, s.keys.CurrentID())
		}
		if _, err := s.open(sm.row); err != nil {
			if errors.Is(err, keyring.ErrWrongKey) {
				return usage, fmt.Errorf("the key configured for key id %q does not decrypt the %d provider keys stored under that id: wrong LURUS_SECRET_KEY or LURUS_SECRET_KEYS_PREVIOUS value", kid, sm.n)
			}
			return usage, err
		}
	}
	return usage, nil
}

// RotateKeys re-encrypts every provider key not sealed under the current
// key, in batches of batch rows, each batch in its own transaction. It
// returns how many rows it re-encrypted. Running it again is a no-op.
func (s *Providers) RotateKeys(ctx context.Context, batch int) (int, error) {
	current := s.keys.CurrentID()
	total := 0
	for {
		n := 0
		err := postgres.InTx(ctx, s.pool, func(tx pgx.Tx) error {
			rows, err := tx.Query(ctx, `SELECT `+keyColumns+` FROM provider_keys WHERE secret_key_id <> $1
				ORDER BY id LIMIT $2 FOR UPDATE`, current, batch)
			if err != nil {
				return err
			}
			keys, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (keyRow, error) { return scanKey(r) })
			if err != nil {
				return err
			}
			for _, k := range keys {
				secret, err := s.open(k)
				if err != nil {
					return err
				}
				sealed, err := s.keys.Seal([]byte(secret), []byte(k.key.ID))
				if err != nil {
					return err
				}
				if _, err := tx.Exec(ctx, `UPDATE provider_keys SET secret_key_id = $2, nonce = $3, ciphertext = $4 WHERE id = $1`,
					k.key.ID, sealed.KeyID, sealed.Nonce, sealed.Ciphertext); err != nil {
					return err
				}
			}
			n = len(keys)
			return nil
		})
		if err != nil {
			return total, fmt.Errorf("rotate keys: %w", err)
		}
		total += n
		if n < batch {
			return total, nil
		}
	}
}
