package data

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/lurus-switch/lurus-switch/lurus-common/apperr"
	"github.com/lurus-switch/lurus-switch/lurus-common/internalapi"
	"github.com/lurus-switch/lurus-switch/lurus-common/postgres"
	"github.com/lurus-switch/lurus-switch/provider-service/internal/biz"
	"github.com/lurus-switch/lurus-switch/provider-service/internal/keyring"
)

// Providers is the PostgreSQL store of providers and keys. It implements
// biz.ProviderStore, biz.KeyStore and biz.SnapshotSource.
type Providers struct {
	pool *pgxpool.Pool
	keys *keyring.Keyring
}

var (
	_ biz.ProviderStore  = (*Providers)(nil)
	_ biz.KeyStore       = (*Providers)(nil)
	_ biz.SnapshotSource = (*Providers)(nil)
)

// NewProviders returns the store.
func NewProviders(pool *pgxpool.Pool, keys *keyring.Keyring) *Providers {
	return &Providers{pool: pool, keys: keys}
}

const providerColumns = `id, name, type, base_url, api_version, models, model_mapping, priority, weight, enabled,
	connect_timeout_ms, first_byte_timeout_ms, idle_timeout_ms, total_timeout_ms, headers,
	allow_private_network, passthrough_only, created_at, updated_at`

const keyColumns = `id, provider_id, secret_key_id, nonce, ciphertext, masked, enabled, created_at, rpm_limit, tpm_limit`

func scanProvider(row pgx.Row) (biz.Provider, error) {
	var p biz.Provider
	err := row.Scan(&p.ID, &p.Name, &p.Type, &p.BaseURL, &p.APIVersion, &p.Models, &p.ModelMapping,
		&p.Priority, &p.Weight, &p.Enabled, &p.Timeouts.ConnectMs, &p.Timeouts.FirstByteMs,
		&p.Timeouts.IdleMs, &p.Timeouts.TotalMs, &p.Headers, &p.AllowPrivateNetwork, &p.PassthroughOnly, &p.CreatedAt, &p.UpdatedAt)
	p.CreatedAt, p.UpdatedAt = p.CreatedAt.UTC(), p.UpdatedAt.UTC()
	if p.ModelMapping == nil {
		p.ModelMapping = map[string]string{}
	}
	if p.Headers == nil {
		p.Headers = map[string]string{}
	}
	p.Keys = []biz.Key{}
	return p, err
}

// keyRow is a provider_keys row.
type keyRow struct {
	providerID string
	sealed     keyring.Sealed
	key        biz.Key
}

func scanKey(row pgx.Row) (keyRow, error) {
	var k keyRow
	err := row.Scan(&k.key.ID, &k.providerID, &k.sealed.KeyID, &k.sealed.Nonce, &k.sealed.Ciphertext,
		&k.key.Masked, &k.key.Enabled, &k.key.CreatedAt, &k.key.RPMLimit, &k.key.TPMLimit)
	k.key.CreatedAt = k.key.CreatedAt.UTC()
	return k, err
}

// open decrypts a key row; the row id is the associated data, so a
// ciphertext copied to another row does not open.
func (s *Providers) open(k keyRow) (string, error) {
	pt, err := s.keys.Open(k.sealed, []byte(k.key.ID))
	if err != nil {
		return "", fmt.Errorf("provider key %s: %w", k.key.ID, err)
	}
	return string(pt), nil
}

func orZero(v *int64) int64 {
	if v == nil {
		return 0
	}
	return *v
}

func bumpVersion(ctx context.Context, q postgres.Querier) (int64, error) {
	var v int64
	err := q.QueryRow(ctx, `UPDATE snapshot_version SET version = version + 1 RETURNING version`).Scan(&v)
	return v, err
}

func mapProviderErr(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, pgx.ErrNoRows):
		return apperr.Wrap(err, apperr.ReasonProviderNotFound, "provider not found")
	case postgres.IsUniqueViolation(err, "providers_name_key"):
		return apperr.Wrap(err, apperr.ReasonDuplicateName, "a provider with this name already exists")
	}
	var ae *apperr.Error
	if errors.As(err, &ae) {
		return err
	}
	return fmt.Errorf("providers: %w", err)
}

// Create implements biz.ProviderStore.
func (s *Providers) Create(ctx context.Context, spec biz.Spec) (biz.Provider, int64, error) {
	var (
		p biz.Provider
		v int64
	)
	err := postgres.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		var err error
		p, err = scanProvider(tx.QueryRow(ctx, `INSERT INTO providers (id, name, type, base_url, api_version, models,
			model_mapping, priority, weight, enabled, connect_timeout_ms, first_byte_timeout_ms, idle_timeout_ms,
			total_timeout_ms, headers, allow_private_network, passthrough_only)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)
			RETURNING `+providerColumns, append([]any{NewID("prv")}, specArgs(spec)...)...))
		if err != nil {
			return err
		}
		for _, k := range spec.Keys {
			key, err := s.insertKey(ctx, tx, p.ID, k)
			if err != nil {
				return err
			}
			p.Keys = append(p.Keys, key)
		}
		v, err = bumpVersion(ctx, tx)
		return err
	})
	return p, v, mapProviderErr(err)
}

func specArgs(s biz.Spec) []any {
	return []any{s.Name, s.Type, s.BaseURL, s.APIVersion, s.Models, s.ModelMapping, s.Priority, s.Weight,
		s.Enabled, s.Timeouts.ConnectMs, s.Timeouts.FirstByteMs, s.Timeouts.IdleMs, s.Timeouts.TotalMs,
		s.Headers, s.AllowPrivateNetwork, s.PassthroughOnly}
}

func (s *Providers) insertKey(ctx context.Context, q postgres.Querier, providerID string, k biz.KeyInput) (biz.Key, error) {
	id := NewID("pk")
	sealed, err := s.keys.Seal([]byte(k.Secret), []byte(id))
	if err != nil {
		return biz.Key{}, err
	}
	row, err := scanKey(q.QueryRow(ctx, `INSERT INTO provider_keys (id, provider_id, secret_key_id, nonce, ciphertext, masked, enabled,
		rpm_limit, tpm_limit)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9) RETURNING `+keyColumns,
		id, providerID, sealed.KeyID, sealed.Nonce, sealed.Ciphertext, biz.Mask(k.Secret), k.Enabled,
		orZero(k.RPMLimit), orZero(k.TPMLimit)))
	return row.key, err
}

// Update implements biz.ProviderStore.
func (s *Providers) Update(ctx context.Context, id string, change func(biz.Provider) (biz.Spec, error)) (biz.Provider, int64, error) {
	var (
		p biz.Provider
		v int64
	)
	err := postgres.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		cur, err := scanProvider(tx.QueryRow(ctx, `SELECT `+providerColumns+` FROM providers WHERE id = $1 FOR UPDATE`, id))
		if err != nil {
			return err
		}
		if err := s.attachKeys(ctx, tx, []*biz.Provider{&cur}); err != nil {
			return err
		}
		spec, err := change(cur)
		if err != nil {
			return err
		}
		p, err = scanProvider(tx.QueryRow(ctx, `UPDATE providers SET name = $2, type = $3, base_url = $4,
			api_version = $5, models = $6, model_mapping = $7, priority = $8, weight = $9, enabled = $10,
			connect_timeout_ms = $11, first_byte_timeout_ms = $12, idle_timeout_ms = $13, total_timeout_ms = $14,
			headers = $15, allow_private_network = $16, passthrough_only = $17, updated_at = now()
			WHERE id = $1 RETURNING `+providerColumns, append([]any{id}, specArgs(spec)...)...))
		if err != nil {
			return err
		}
		if p.Keys, err = s.replaceKeys(ctx, tx, cur, spec.Keys); err != nil {
			return err
		}
		v, err = bumpVersion(ctx, tx)
		return err
	})
	return p, v, mapProviderErr(err)
}

// replaceKeys makes the provider's key set equal to want: keys referenced
// by id are kept (with their enabled flag and the limits given updated),
// new secrets are added, every other key is deleted.
func (s *Providers) replaceKeys(ctx context.Context, tx pgx.Tx, cur biz.Provider, want []biz.KeyInput) ([]biz.Key, error) {
	existing := map[string]biz.Key{}
	for _, k := range cur.Keys {
		existing[k.ID] = k
	}
	out := []biz.Key{}
	kept := []string{}
	for _, k := range want {
		if k.ID == "" {
			continue
		}
		old, ok := existing[k.ID]
		if !ok {
			return nil, apperr.Newf(apperr.ReasonInvalidArgument, "key %s is not a key of provider %s", k.ID, cur.ID)
		}
		next := old
		next.Enabled = k.Enabled
		if k.RPMLimit != nil {
			next.RPMLimit = *k.RPMLimit
		}
		if k.TPMLimit != nil {
			next.TPMLimit = *k.TPMLimit
		}
		if next != old {
			if _, err := tx.Exec(ctx, `UPDATE provider_keys SET enabled = $2, rpm_limit = $3, tpm_limit = $4 WHERE id = $1`,
				k.ID, next.Enabled, next.RPMLimit, next.TPMLimit); err != nil {
				return nil, err
			}
			old = next
		}
		kept = append(kept, k.ID)
		out = append(out, old)
	}
	if _, err := tx.Exec(ctx, `DELETE FROM provider_keys WHERE provider_id = $1 AND NOT (id = ANY($2))`, cur.ID, kept); err != nil {
		return nil, err
	}
	for _, k := range want {
		if k.ID != "" {
			continue
		}
		key, err := s.insertKey(ctx, tx, cur.ID, k)
		if err != nil {
			return nil, err
		}
		out = append(out, key)
	}
	return out, nil
}

// Delete implements biz.ProviderStore.
func (s *Providers) Delete(ctx context.Context, id string) (int64, error) {
	var v int64
	err := postgres.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		tag, err := tx.Exec(ctx, `DELETE FROM providers WHERE id = $1`, id)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return pgx.ErrNoRows
		}
		v, err = bumpVersion(ctx, tx)
		return err
	})
	return v, mapProviderErr(err)
}

// Get implements biz.ProviderStore.
func (s *Providers) Get(ctx context.Context, id string) (biz.Provider, error) {
	p, err := scanProvider(s.pool.QueryRow(ctx, `SELECT `+providerColumns+` FROM providers WHERE id = $1`, id))
	if err != nil {
		return biz.Provider{}, mapProviderErr(err)
	}
	if err := s.attachKeys(ctx, s.pool, []*biz.Provider{&p}); err != nil {
		return biz.Provider{}, mapProviderErr(err)
	}
	return p, nil
}

// List implements biz.ProviderStore.
func (s *Providers) List(ctx context.Context, pg biz.Page) ([]biz.Provider, error) {
	rows, err := s.pool.Query(ctx, `SELECT `+providerColumns+` FROM providers
		WHERE ($1 = '' OR type = $1) AND ($2::boolean IS NULL OR enabled = $2) AND id > $3
		ORDER BY id LIMIT $4`, pg.Type, pg.Enabled, pg.After, pg.Limit)
	if err != nil {
		return nil, mapProviderErr(err)
	}
	out, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (biz.Provider, error) { return scanProvider(r) })
	if err != nil {
		return nil, mapProviderErr(err)
	}
	ptrs := make([]*biz.Provider, len(out))
	for i := range out {
		ptrs[i] = &out[i]
	}
	return out, mapProviderErr(s.attachKeys(ctx, s.pool, ptrs))
}

// attachKeys loads the keys of ps in one query.
func (s *Providers) attachKeys(ctx context.Context, q postgres.Querier, ps []*biz.Provider) error {
	if len(ps) == 0 {
		return nil
	}
	byID := make(map[string]*biz.Provider, len(ps))
	ids := make([]string, len(ps))
	for i, p := range ps {
		byID[p.ID], ids[i] = p, p.ID
	}
	rows, err := q.Query(ctx, `SELECT `+keyColumns+` FROM provider_keys WHERE provider_id = ANY($1) ORDER BY provider_id, id`, ids)
	if err != nil {
		return err
	}
	keys, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (keyRow, error) { return scanKey(r) })
	if err != nil {
		return err
	}
	for _, k := range keys {
		p := byID[k.providerID]
		p.Keys = append(p.Keys, k.key)
	}
	return nil
}

// AddKey implements biz.KeyStore.
func (s *Providers) AddKey(ctx context.Context, providerID string, k biz.KeyInput) (biz.Key, int64, error) {
	var (
		key biz.Key
		v   int64
	)
	err := postgres.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		var n int
		err := tx.QueryRow(ctx, `UPDATE providers SET updated_at = now() WHERE id = $1
			RETURNING (SELECT count(*) FROM provider_keys WHERE provider_id = $1)`, providerID).Scan(&n)
		if err != nil {
			return err
		}
		if n >= biz.MaxKeys {
			return apperr.Newf(apperr.ReasonInvalidArgument, "a provider has at most %d keys", biz.MaxKeys)
		}
		if key, err = s.insertKey(ctx, tx, providerID, k); err != nil {
			return err
		}
		v, err = bumpVersion(ctx, tx)
		return err
	})
	return key, v, mapProviderErr(err)
}

// DeleteKey implements biz.KeyStore.
func (s *Providers) DeleteKey(ctx context.Context, providerID, keyID string) (int64, error) {
	var v int64
	err := postgres.InTx(ctx, s.pool, func(tx pgx.Tx) error {
		var dummy string
		if err := tx.QueryRow(ctx, `UPDATE providers SET updated_at = now() WHERE id = $1 RETURNING id`, providerID).Scan(&dummy); err != nil {
			return err
		}
		tag, err := tx.Exec(ctx, `DELETE FROM provider_keys WHERE id = $1 AND provider_id = $2`, keyID, providerID)
		if err != nil {
			return err
		}
		if tag.RowsAffected() == 0 {
			return apperr.New(apperr.ReasonKeyNotFound, "provider key not found")
		}
		v, err = bumpVersion(ctx, tx)
		return err
	})
	return v, mapProviderErr(err)
}

// Secrets implements biz.KeyStore.
func (s *Providers) Secrets(ctx context.Context, providerID string) (biz.Provider, []biz.KeySecret, error) {
	p, err := scanProvider(s.pool.QueryRow(ctx, `SELECT `+providerColumns+` FROM providers WHERE id = $1`, providerID))
	if err != nil {
		return biz.Provider{}, nil, mapProviderErr(err)
	}
	rows, err := s.pool.Query(ctx, `SELECT `+keyColumns+` FROM provider_keys WHERE provider_id = $1 ORDER BY id`, providerID)
	if err != nil {
		return biz.Provider{}, nil, mapProviderErr(err)
	}
	keys, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (keyRow, error) { return scanKey(r) })
	if err != nil {
		return biz.Provider{}, nil, mapProviderErr(err)
	}
	out := make([]biz.KeySecret, len(keys))
	for i, k := range keys {
		secret, err := s.open(k)
		if err != nil {
			return biz.Provider{}, nil, err
		}
		p.Keys = append(p.Keys, k.key)
		out[i] = biz.KeySecret{Key: k.key, Secret: secret}
	}
	return p, out, nil
}

// Version implements biz.SnapshotSource.
func (s *Providers) Version(ctx context.Context) (int64, error) {
	var v int64
	if err := s.pool.QueryRow(ctx, `SELECT version FROM snapshot_version`).Scan(&v); err != nil {
		return 0, fmt.Errorf("snapshot version: %w", err)
	}
	return v, nil
}

// Load implements biz.SnapshotSource: one repeatable-read transaction, so
// the version matches the providers read.
func (s *Providers) Load(ctx context.Context) (internalapi.Snapshot, error) {
	snap := internalapi.Snapshot{Providers: []internalapi.Provider{}}
	err := postgres.InTxOptions(ctx, s.pool, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, `SELECT version, now() FROM snapshot_version`).Scan(&snap.Version, &snap.GeneratedAt); err != nil {
			return err
		}
		snap.GeneratedAt = snap.GeneratedAt.UTC().Truncate(time.Millisecond)
		rows, err := tx.Query(ctx, `SELECT `+providerColumns+` FROM providers WHERE enabled ORDER BY priority DESC, id`)
		if err != nil {
			return err
		}
		ps, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (biz.Provider, error) { return scanProvider(r) })
		if err != nil {
			return err
		}
		rows, err = tx.Query(ctx, `SELECT `+keyColumns+` FROM provider_keys k WHERE k.enabled
			AND EXISTS (SELECT 1 FROM providers p WHERE p.id = k.provider_id AND p.enabled) ORDER BY k.provider_id, k.id`)
		if err != nil {
			return err
		}
		keys, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (keyRow, error) { return scanKey(r) })
		if err != nil {
			return err
		}
		byProvider := map[string][]internalapi.ProviderKey{}
		for _, k := range keys {
			secret, err := s.open(k)
			if err != nil {
				return err
			}
			byProvider[k.providerID] = append(byProvider[k.providerID], internalapi.ProviderKey{ID: k.key.ID, Key: secret,
				RPMLimit: k.key.RPMLimit, TPMLimit: k.key.TPMLimit})
		}
		for _, p := range ps {
			snap.Providers = append(snap.Providers, toSnapshotProvider(p, byProvider[p.ID]))
		}
		return nil
	})
	if err != nil {
		return internalapi.Snapshot{}, fmt.Errorf("load snapshot: %w", err)
	}
	return snap, nil
}

func toSnapshotProvider(p biz.Provider, keys []internalapi.ProviderKey) internalapi.Provider {
	if keys == nil {
		keys = []internalapi.ProviderKey{}
	}
	return internalapi.Provider{
		ID: p.ID, Name: p.Name, Type: p.Type, BaseURL: p.BaseURL, APIVersion: p.APIVersion, Keys: keys,
		Models: p.Models, ModelMapping: p.ModelMapping, Priority: p.Priority, Weight: p.Weight,
		Timeouts: internalapi.Timeouts{ConnectMs: p.Timeouts.ConnectMs, FirstByteMs: p.Timeouts.FirstByteMs,
			IdleMs: p.Timeouts.IdleMs, TotalMs: p.Timeouts.TotalMs},
		Headers: p.Headers, AllowPrivateNetwork: p.AllowPrivateNetwork, PassthroughOnly: p.PassthroughOnly,
	}
}
