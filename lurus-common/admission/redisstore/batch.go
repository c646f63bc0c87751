package redisstore

import (
	"context"
	"fmt"

	"github.com/redis/go-redis/v9"

	"github.com/lurus-switch/lurus-switch/lurus-common/admission"
)

// pipeliner is the optional ability of a client to send commands in one
// round trip (*redis.Client and *redis.ClusterClient have it).
type pipeliner interface {
	Pipeline() redis.Pipeliner
}

// ApplyBatch is Apply for many users in one round trip: each update's state
// is written (version-guarded) together with the release of its first
// reservation, and its other reservations are released right after. A
// consumer settling a batch of usage events calls it once per batch. It
// returns the first error; every step is idempotent, so the caller may
// simply retry the whole batch. Without a pipelining client it falls back
// to one call per step.
func (s *Store) ApplyBatch(ctx context.Context, ups []admission.Update) error {
	if len(ups) == 0 {
		return nil
	}
	p, ok := s.rdb.(pipeliner)
	if !ok {
		return s.applyEach(ctx, ups)
	}
	err := s.pipelineApply(ctx, p.Pipeline(), ups)
	if err != nil && redis.HasErrorPrefix(err, "NOSCRIPT") {
		// First use on this server (or after SCRIPT FLUSH): load, then retry.
		for _, sc := range []*redis.Script{applyScript, releaseScript, partScript} {
			if lerr := sc.Load(ctx, s.rdb).Err(); lerr != nil {
				return fmt.Errorf("admission: load script: %w", lerr)
			}
		}
		err = s.pipelineApply(ctx, p.Pipeline(), ups)
	}
	if err != nil {
		return fmt.Errorf("admission: apply batch: %w", err)
	}
	return nil
}

func (s *Store) pipelineApply(ctx context.Context, pipe redis.Pipeliner, ups []admission.Update) error {
	now := s.now().UnixMilli()
	for _, u := range ups {
		first := ""
		if len(u.ReleaseIDs) > 0 {
			first = u.ReleaseIDs[0]
		}
		keys := s.keys(u.Account.UserID)
		applyScript.EvalSha(ctx, pipe, keys, s.applyArgs(u.Account, first)...)
		for _, id := range u.ReleaseIDs[min(1, len(u.ReleaseIDs)):] {
			releaseScript.EvalSha(ctx, pipe, keys, id, now)
		}
		for _, p := range u.Parts {
			partScript.EvalSha(ctx, pipe, s.partKeys(u.Account.UserID, p.ReservationID), partArgs(p)...)
		}
	}
	cmds, err := pipe.Exec(ctx)
	if err != nil {
		return err
	}
	for _, c := range cmds {
		if c.Err() != nil {
			return c.Err()
		}
	}
	return nil
}

func (s *Store) applyEach(ctx context.Context, ups []admission.Update) error {
	for _, u := range ups {
		first := ""
		if len(u.ReleaseIDs) > 0 {
			first = u.ReleaseIDs[0]
		}
		if _, err := s.Apply(ctx, u.Account, first); err != nil {
			return err
		}
		for _, id := range u.ReleaseIDs[min(1, len(u.ReleaseIDs)):] {
			if _, err := s.Release(ctx, u.Account.UserID, id); err != nil {
				return err
			}
		}
		for _, p := range u.Parts {
			if _, err := s.ReleasePart(ctx, u.Account.UserID, p); err != nil {
				return err
			}
		}
	}
	return nil
}

// applyArgs are the ARGV of apply.lua for a and releaseID.
func (s *Store) applyArgs(a admission.Account, releaseID string) []any {
	status := "disabled"
	if a.Active {
		status = "active"
	}
	args := []any{releaseID, s.now().UnixMilli(), a.Version, a.BalanceMicros, a.CreditMicros, a.QuotaLimitTokens, a.QuotaUsedTokens, status}
	for k, v := range a.KeySpentMicros {
		args = append(args, "ks:"+k, v)
	}
	return args
}
