package biz

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"

	"github.com/lurus-switch/lurus-switch/lurus-common/internalapi"
)

// SnapshotSource reads the gateway snapshot from the database of record.
type SnapshotSource interface {
	// Version is the current snapshot version (one indexed row).
	Version(ctx context.Context) (int64, error)
	// Load reads the version and every enabled provider with its enabled
	// keys decrypted, consistently (one transaction).
	Load(ctx context.Context) (internalapi.Snapshot, error)
}

// EncodedSnapshot is a snapshot ready to serve: its version and JSON body.
type EncodedSnapshot struct {
	Version int64
	Body    []byte
}

// SnapshotCache keeps the last encoded snapshot (in Redis). Get reports a
// miss as ok=false with a nil error.
type SnapshotCache interface {
	Get(ctx context.Context) (s EncodedSnapshot, ok bool, err error)
	Put(ctx context.Context, s EncodedSnapshot) error
}

// Snapshots serves the gateway snapshot: from the cache when the cached
// version equals the database's, else rebuilt from the database and
// cached. Comparing with the database on every request (one indexed row)
// means a missed invalidation can never serve a stale snapshot, and a
// cache outage only costs a rebuild.
type Snapshots struct {
	Source SnapshotSource
	Cache  SnapshotCache
	// Observe, if set, is told whether each request hit the cache.
	Observe func(hit bool)
	Log     *slog.Logger
}

// Current returns the current version without building a snapshot: enough
// to answer a conditional request.
func (s *Snapshots) Current(ctx context.Context) (int64, error) {
	return s.Source.Version(ctx)
}

// Get returns the snapshot of version at least current (a change committed
// between the two reads makes it newer).
func (s *Snapshots) Get(ctx context.Context, current int64) (EncodedSnapshot, error) {
	cached, ok, err := s.Cache.Get(ctx)
	if err != nil && s.Log != nil {
		s.Log.Warn("snapshot cache read failed; rebuilding from PostgreSQL", "err", err)
	}
	if ok && cached.Version == current {
		s.observe(true)
		return cached, nil
	}
	s.observe(false)
	snap, err := s.Source.Load(ctx)
	if err != nil {
		return EncodedSnapshot{}, err
	}
	body, err := json.Marshal(snap)
	if err != nil {
		return EncodedSnapshot{}, fmt.Errorf("encode snapshot: %w", err)
	}
	enc := EncodedSnapshot{Version: snap.Version, Body: body}
	if err := s.Cache.Put(ctx, enc); err != nil && s.Log != nil {
		s.Log.Warn("snapshot cache write failed", "version", enc.Version, "err", err)
	}
	return enc, nil
}

func (s *Snapshots) observe(hit bool) {
	if s.Observe != nil {
		s.Observe(hit)
	}
}
