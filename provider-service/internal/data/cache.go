package data

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/lurus-switch/lurus-switch/provider-service/internal/biz"
	"github.com/lurus-switch/lurus-switch/provider-service/internal/keyring"
)

// SnapshotCache keeps the encoded gateway snapshot in one Redis hash. The
// snapshot holds decrypted upstream keys, so it is stored sealed with the
// keyring (associated data: its version): Redis never holds a plaintext
// upstream key either.
type SnapshotCache struct {
	rdb  *redis.Client
	keys *keyring.Keyring
	key  string
	ttl  time.Duration
}

var (
	_ biz.SnapshotCache = (*SnapshotCache)(nil)
	_ biz.Changed       = (*SnapshotCache)(nil)
)

// NewSnapshotCache returns the cache at Redis key prefix+"snapshot".
func NewSnapshotCache(rdb *redis.Client, keys *keyring.Keyring, prefix string, ttl time.Duration) *SnapshotCache {
	return &SnapshotCache{rdb: rdb, keys: keys, key: prefix + "snapshot", ttl: ttl}
}

// Key is the Redis key of the cached snapshot.
func (c *SnapshotCache) Key() string { return c.key }

func snapshotAAD(v int64) []byte { return []byte("snapshot:" + strconv.FormatInt(v, 10)) }

// Get implements biz.SnapshotCache. An entry sealed under a key id the
// keyring no longer holds is a miss.
func (c *SnapshotCache) Get(ctx context.Context) (biz.EncodedSnapshot, bool, error) {
	m, err := c.rdb.HGetAll(ctx, c.key).Result()
	if err != nil {
		return biz.EncodedSnapshot{}, false, err
	}
	if len(m) == 0 {
		return biz.EncodedSnapshot{}, false, nil
	}
	v, err := strconv.ParseInt(m["v"], 10, 64)
	if err != nil {
		return biz.EncodedSnapshot{}, false, fmt.Errorf("snapshot cache: bad version %q", m["v"])
	}
	if !c.keys.Has(m["kid"]) {
		return biz.EncodedSnapshot{}, false, nil
	}
	body, err := c.keys.Open(keyring.Sealed{KeyID: m["kid"], Nonce: []byte(m["nonce"]), Ciphertext: []byte(m["ct"])}, snapshotAAD(v))
	if err != nil {
		return biz.EncodedSnapshot{}, false, fmt.Errorf("snapshot cache: %w", err)
	}
	return biz.EncodedSnapshot{Version: v, Body: body}, true, nil
}

// Put implements biz.SnapshotCache: the whole entry is replaced atomically.
func (c *SnapshotCache) Put(ctx context.Context, s biz.EncodedSnapshot) error {
	sealed, err := c.keys.Seal(s.Body, snapshotAAD(s.Version))
	if err != nil {
		return err
	}
	_, err = c.rdb.TxPipelined(ctx, func(p redis.Pipeliner) error {
		p.Del(ctx, c.key)
		p.HSet(ctx, c.key, "v", s.Version, "kid", sealed.KeyID, "nonce", sealed.Nonce, "ct", sealed.Ciphertext)
		p.PExpire(ctx, c.key, c.ttl)
		return nil
	})
	return err
}

// ProviderChanged implements biz.Changed: it drops the cached snapshot.
func (c *SnapshotCache) ProviderChanged(ctx context.Context, _ int64, _ string) error {
	return c.rdb.Del(ctx, c.key).Err()
}

// HealthStore keeps the last probe of each provider in Redis, one JSON
// value per provider with a TTL.
type HealthStore struct {
	rdb    *redis.Client
	prefix string
	ttl    time.Duration
}

var _ biz.HealthStore = (*HealthStore)(nil)

// NewHealthStore returns the store at Redis keys prefix+"health:<id>".
func NewHealthStore(rdb *redis.Client, prefix string, ttl time.Duration) *HealthStore {
	return &HealthStore{rdb: rdb, prefix: prefix + "health:", ttl: ttl}
}

// Save implements biz.HealthStore.
func (h *HealthStore) Save(ctx context.Context, hl biz.Health) error {
	raw, err := json.Marshal(hl)
	if err != nil {
		return err
	}
	return h.rdb.Set(ctx, h.prefix+hl.ProviderID, raw, h.ttl).Err()
}

// Load implements biz.HealthStore.
func (h *HealthStore) Load(ctx context.Context, providerID string) (biz.Health, bool, error) {
	raw, err := h.rdb.Get(ctx, h.prefix+providerID).Bytes()
	if errors.Is(err, redis.Nil) {
		return biz.Health{}, false, nil
	}
	if err != nil {
		return biz.Health{}, false, err
	}
	var hl biz.Health
	if err := json.Unmarshal(raw, &hl); err != nil {
		return biz.Health{}, false, fmt.Errorf("health of %s: %w", providerID, err)
	}
	return hl, true, nil
}
