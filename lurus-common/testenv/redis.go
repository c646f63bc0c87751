package testenv

import (
	"context"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisEnv is a Redis client and a key prefix owned by one test.
type RedisEnv struct {
	Client *redis.Client
	Addr   string
	// Prefix must start every key the test (or code under test) writes;
	// the keys are deleted when the test ends.
	Prefix string
}

// Redis connects to the test Redis server and reserves a key prefix.
func Redis(t testing.TB) RedisEnv {
	t.Helper()
	addr := env("LURUS_REDIS_ADDR", DefaultRedisAddr)
	cl := redis.NewClient(&redis.Options{Addr: addr, DialTimeout: 2 * time.Second})
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if err := cl.Ping(ctx).Err(); err != nil {
		_ = cl.Close()
		unavailable(t, "Redis", err)
	}
	e := RedisEnv{Client: cl, Addr: addr, Prefix: UniqueName("t:") + ":"}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		iter := cl.Scan(ctx, 0, e.Prefix+"*", 500).Iterator()
		var keys []string
		for iter.Next(ctx) {
			keys = append(keys, iter.Val())
		}
		if len(keys) > 0 {
			_ = cl.Unlink(ctx, keys...).Err()
		}
		_ = cl.Close()
	})
	return e
}
