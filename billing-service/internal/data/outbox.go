package data

import (
	"context"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/lurus-switch/lurus-switch/billing-service/internal/biz"
)

func queueOutbox(b *pgx.Batch, evs []biz.OutboxEvent) {
	if len(evs) == 0 {
		return
	}
	n := len(evs)
	ids, users, types := make([]string, n), make([]string, n), make([]string, n)
	envs := make([][]byte, n)
	for i, e := range evs {
		ids[i], users[i], types[i], envs[i] = e.ID, e.UserID, e.Type, e.Envelope
	}
	// WITH ORDINALITY keeps the events' order in seq, which the sweeper
	// publishes by.
	b.Queue(`INSERT INTO outbox (id, user_id, event_type, envelope)
		SELECT id, user_id, typ, env FROM unnest($1::text[], $2::text[], $3::text[], $4::bytea[])
			WITH ORDINALITY AS v(id, user_id, typ, env, ord) ORDER BY ord`, ids, users, types, envs)
}

// DeleteOutbox removes published events.
func (s *Store) DeleteOutbox(ctx context.Context, ids []string) error {
	if len(ids) == 0 {
		return nil
	}
	_, err := s.pool.Exec(ctx, `DELETE FROM outbox WHERE id = ANY($1)`, ids)
	return err
}

// PendingOutbox returns up to limit events written at least minAge ago and
// still unpublished (a crash between commit and publish), oldest first.
func (s *Store) PendingOutbox(ctx context.Context, minAge time.Duration, limit int) ([]biz.OutboxEvent, error) {
	rows, err := s.pool.Query(ctx, `SELECT id, user_id, event_type, envelope FROM outbox
		WHERE created_at <= now() - make_interval(secs => $1) ORDER BY seq LIMIT $2`, minAge.Seconds(), limit)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (biz.OutboxEvent, error) {
		var e biz.OutboxEvent
		err := r.Scan(&e.ID, &e.UserID, &e.Type, &e.Envelope)
		return e, err
	})
}

// OutboxLen counts unpublished events (tests and readiness detail).
func (s *Store) OutboxLen(ctx context.Context) (int64, error) {
	var n int64
	err := s.pool.QueryRow(ctx, `SELECT count(*) FROM outbox`).Scan(&n)
	return n, err
}
