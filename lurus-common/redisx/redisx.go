// Package redisx builds the go-redis client every service uses from its
// config section, and checks it answers.
package redisx

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/redis/go-redis/v9"
)

// Config is the redis section of a service config.
type Config struct {
	Addr     string `yaml:"addr"`
	DB       int    `yaml:"db"`
	Username string `yaml:"username"`
	Password string `yaml:"password"`
	// Prefix is put in front of every key the service writes, so several
	// deployments (or test runs) can share one server.
	Prefix       string        `yaml:"prefix"`
	PoolSize     int           `yaml:"pool_size"`
	DialTimeout  time.Duration `yaml:"dial_timeout"`
	ReadTimeout  time.Duration `yaml:"read_timeout"`
	WriteTimeout time.Duration `yaml:"write_timeout"`
}

// SetDefaults fills unset fields.
func (c *Config) SetDefaults() {
	if c.DialTimeout == 0 {
		c.DialTimeout = 2 * time.Second
	}
	if c.ReadTimeout == 0 {
		c.ReadTimeout = time.Second
	}
	if c.WriteTimeout == 0 {
		c.WriteTimeout = time.Second
	}
}

// Validate checks the config.
func (c *Config) Validate() error {
	if c.Addr == "" {
		return errors.New("redis addr is required")
	}
	if c.DB < 0 || c.DB > 15 {
		return fmt.Errorf("redis db %d out of range", c.DB)
	}
	return nil
}

// Open creates a client and pings it. A failed ping is returned with the
// client, so a service that tolerates Redis being down (and fails closed per
// request) can keep the client and go on.
func Open(ctx context.Context, c Config) (*redis.Client, error) {
	c.SetDefaults()
	cl := redis.NewClient(&redis.Options{
		Addr:         c.Addr,
		DB:           c.DB,
		Username:     c.Username,
		Password:     c.Password,
		PoolSize:     c.PoolSize,
		DialTimeout:  c.DialTimeout,
		ReadTimeout:  c.ReadTimeout,
		WriteTimeout: c.WriteTimeout,
	})
	pingCtx, cancel := context.WithTimeout(ctx, c.DialTimeout)
	defer cancel()
	if err := cl.Ping(pingCtx).Err(); err != nil {
		return cl, fmt.Errorf("redis %s: %w", c.Addr, err)
	}
	return cl, nil
}
