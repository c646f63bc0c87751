package data

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/lurus-switch/lurus-switch/lurus-common/apperr"

	"github.com/lurus-switch/lurus-switch/sync-service/internal/biz"
)

// TicketStore keeps tickets in Redis under <prefix>ticket:<sha256 of the
// ticket>, so a Redis dump holds no redeemable ticket. Take is GETDEL:
// atomic, single use.
type TicketStore struct {
	rdb    *redis.Client
	prefix string
}

// NewTicketStore returns a store writing keys under prefix.
func NewTicketStore(rdb *redis.Client, prefix string) *TicketStore {
	return &TicketStore{rdb: rdb, prefix: prefix}
}

func (s *TicketStore) key(token string) string {
	h := sha256.Sum256([]byte(token))
	return s.prefix + "ticket:" + hex.EncodeToString(h[:])
}

// Put implements biz.TicketStore.
func (s *TicketStore) Put(ctx context.Context, token string, t biz.Ticket, ttl time.Duration) error {
	raw, err := json.Marshal(t)
	if err != nil {
		return apperr.Internal(err)
	}
	ok, err := s.rdb.SetNX(ctx, s.key(token), raw, ttl).Result()
	if err != nil {
		return apperr.Wrap(err, apperr.ReasonDependencyDown, "ticket store unavailable")
	}
	if !ok {
		return apperr.Internal(errors.New("ticket collision"))
	}
	return nil
}

// Take implements biz.TicketStore.
func (s *TicketStore) Take(ctx context.Context, token string) (biz.Ticket, bool, error) {
	raw, err := s.rdb.GetDel(ctx, s.key(token)).Bytes()
	if errors.Is(err, redis.Nil) {
		return biz.Ticket{}, false, nil
	}
	if err != nil {
		return biz.Ticket{}, false, apperr.Wrap(err, apperr.ReasonDependencyDown, "ticket store unavailable")
	}
	var t biz.Ticket
	if err := json.Unmarshal(raw, &t); err != nil {
		return biz.Ticket{}, false, apperr.Internal(err)
	}
	return t, true, nil
}
