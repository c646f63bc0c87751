package data

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/oklog/ulid/v2"

	"github.com/lurus-switch/lurus-switch/billing-service/internal/biz"
	"github.com/lurus-switch/lurus-switch/lurus-common/events"
)

// queueOutbox queues one outbox row holding evs (a JSON array of their
// envelopes, in order) and returns its id ("" when there is nothing).
func queueOutbox(b *pgx.Batch, evs []biz.OutboxEvent) string {
	if len(evs) == 0 {
		return ""
	}
	size := 2
	for _, e := range evs {
		size += len(e.Envelope) + 1
	}
	buf := make([]byte, 0, size)
	buf = append(buf, '[')
	for i, e := range evs {
		if i > 0 {
			buf = append(buf, ',')
		}
		buf = append(buf, e.Envelope...)
	}
	buf = append(buf, ']')
	id := ulid.Make().String()
	b.Queue(`INSERT INTO outbox (id, events) VALUES ($1, $2)`, id, buf)
	return id
}

// DeleteOutbox removes published outbox rows.
func (s *Store) DeleteOutbox(ctx context.Context, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	_, err := s.pool.Exec(ctx, `DELETE FROM outbox WHERE id = ANY($1)`, ids)
	return err
}

// PendingOutbox returns up to limit outbox rows written at least minAge
// ago and still unpublished (a crash between commit and publish), oldest
// first, with their events in order.
func (s *Store) PendingOutbox(ctx context.Context, minAge time.Duration, limit int) ([]string, []biz.OutboxEvent, error) {
	rows, err := s.pool.Query(ctx, `SELECT id, events FROM outbox
		WHERE created_at <= now() - make_interval(secs => $1) ORDER BY seq LIMIT $2`, minAge.Seconds(), limit)
	if err != nil {
		return nil, nil, err
	}
	defer rows.Close()
	var ids []string
	var evs []biz.OutboxEvent
	for rows.Next() {
		var id string
		var raw []byte
		if err := rows.Scan(&id, &raw); err != nil {
			return nil, nil, err
		}
		var envs []json.RawMessage
		if err := json.Unmarshal(raw, &envs); err != nil {
			return nil, nil, fmt.Errorf("data: outbox row %s: %w", id, err)
		}
		for _, e := range envs {
			env, err := events.ParseEnvelope(e)
			if err != nil {
				return nil, nil, fmt.Errorf("data: outbox row %s: %w", id, err)
			}
			evs = append(evs, biz.OutboxEvent{ID: env.ID, UserID: env.UserID, Type: env.Type, Envelope: e})
		}
		ids = append(ids, id)
	}
	return ids, evs, rows.Err()
}

// OutboxLen counts unpublished outbox rows.
func (s *Store) OutboxLen(ctx context.Context) (int64, error) {
	var n int64
	err := s.pool.QueryRow(ctx, `SELECT count(*) FROM outbox`).Scan(&n)
	return n, err
}
