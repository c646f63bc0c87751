package testenv

import (
	"context"
	"testing"
)

// TestResourcesAreIsolatedAndRemoved runs a subtest that takes every
// resource, then checks after the subtest's cleanup that they are gone.
func TestResourcesAreIsolatedAndRemoved(t *testing.T) {
	ctx := context.Background()
	var pgName, chDB, redisPrefix, stream string
	var ne NATSEnv
	t.Run("take", func(t *testing.T) {
		pg := Postgres(t, nil, "")
		pgName = pg.Name
		if err := pg.Pool.Ping(ctx); err != nil {
			t.Fatal(err)
		}
		re := Redis(t)
		redisPrefix = re.Prefix
		if err := re.Client.Set(ctx, re.Prefix+"k", "v", 0).Err(); err != nil {
			t.Fatal(err)
		}
		ne = NATS(t)
		stream = ne.Names.Stream("LURUS_BILLING")
		if _, err := ne.JS.Stream(ctx, stream); err != nil {
			t.Fatalf("stream not created: %v", err)
		}
		ch := ClickHouse(t)
		chDB = ch.Database
		if err := ch.Conn.Exec(ctx, "CREATE TABLE t (x UInt8) ENGINE = Memory"); err != nil {
			t.Fatal(err)
		}
	})
	if t.Skipped() || pgName == "" {
		return
	}
	admin := Postgres(t, nil, "")
	var n int
	if err := admin.Pool.QueryRow(ctx, `SELECT count(*) FROM pg_database WHERE datname = $1`, pgName).Scan(&n); err != nil || n != 0 {
		t.Fatalf("database %s still exists (%d, %v)", pgName, n, err)
	}
	re := Redis(t)
	if keys, _ := re.Client.Keys(ctx, redisPrefix+"*").Result(); len(keys) != 0 {
		t.Fatalf("redis keys left: %v", keys)
	}
	ne2 := NATS(t)
	if _, err := ne2.JS.Stream(ctx, stream); err == nil {
		t.Fatalf("stream %s still exists", stream)
	}
	if chDB != "" {
		ch := ClickHouse(t)
		var cnt uint64
		if err := ch.Conn.QueryRow(ctx, "SELECT count() FROM system.databases WHERE name = '"+chDB+"'").Scan(&cnt); err != nil || cnt != 0 {
			t.Fatalf("clickhouse database %s still exists (%d, %v)", chDB, cnt, err)
		}
	}
}
