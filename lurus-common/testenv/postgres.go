package testenv

import (
	"context"
	"io/fs"
	"net/url"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/lurus-switch/lurus-switch/lurus-common/postgres"
)

// PostgresDB is a database created for one test.
type PostgresDB struct {
	Pool *pgxpool.Pool
	URL  string // connection URL of the test database
	Name string
}

// Postgres creates a fresh database, applies the migrations in dir of fsys
// (skipped when fsys is nil), and drops the database when the test ends.
func Postgres(t testing.TB, fsys fs.FS, dir string) PostgresDB {
	t.Helper()
	adminURL := env("LURUS_PG_URL", DefaultPostgresURL)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	admin, err := pgx.Connect(ctx, adminURL)
	if err != nil {
		unavailable(t, "PostgreSQL", err)
	}
	name := UniqueName("lurus_t_" + sanitize(t.Name()) + "_")
	if _, err := admin.Exec(ctx, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize()); err != nil {
		admin.Close(ctx)
		t.Fatalf("testenv: create database: %v", err)
	}
	admin.Close(ctx)

	u, err := url.Parse(adminURL)
	if err != nil {
		t.Fatalf("testenv: LURUS_PG_URL: %v", err)
	}
	u.Path = "/" + name
	db := PostgresDB{URL: u.String(), Name: name}
	t.Cleanup(func() {
		if db.Pool != nil {
			db.Pool.Close()
		}
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		admin, err := pgx.Connect(ctx, adminURL)
		if err != nil {
			t.Errorf("testenv: drop %s: %v", name, err)
			return
		}
		defer admin.Close(ctx)
		if _, err := admin.Exec(ctx, "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			t.Errorf("testenv: drop %s: %v", name, err)
		}
	})
	db.Pool, err = postgres.Open(ctx, postgres.Config{URL: db.URL, MaxConns: 32})
	if err != nil {
		t.Fatalf("testenv: open test database: %v", err)
	}
	if fsys != nil {
		if _, err := postgres.Migrate(ctx, db.Pool, fsys, dir, nil); err != nil {
			t.Fatalf("testenv: migrate: %v", err)
		}
	}
	return db
}
