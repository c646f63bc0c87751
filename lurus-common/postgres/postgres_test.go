package postgres_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"testing/fstest"

	"github.com/jackc/pgx/v5"

	"github.com/lurus-switch/lurus-switch/lurus-common/apperr"
	"github.com/lurus-switch/lurus-switch/lurus-common/postgres"
	"github.com/lurus-switch/lurus-switch/lurus-common/testenv"
)

var migrations = fstest.MapFS{
	"m/001_items.sql": {Data: []byte(`CREATE TABLE items (id bigint PRIMARY KEY, name text NOT NULL UNIQUE);`)},
	"m/002_seed.sql":  {Data: []byte(`INSERT INTO items VALUES (1, 'one');`)},
	"m/README.md":     {Data: []byte(`not a migration`)},
}

func TestMigrateIsIdempotentAndSerialized(t *testing.T) {
	db := testenv.Postgres(t, nil, "")
	ctx := context.Background()
	var wg sync.WaitGroup
	applied := make([][]int, 3)
	errs := make([]error, 3)
	for i := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			applied[i], errs[i] = postgres.Migrate(ctx, db.Pool, migrations, "m", nil)
		}()
	}
	wg.Wait()
	total := 0
	for i := range 3 {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		total += len(applied[i])
	}
	if total != 2 {
		t.Fatalf("applied %d migrations across concurrent runs, want 2", total)
	}
	var n int
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM items`).Scan(&n); err != nil || n != 1 {
		t.Fatalf("items = %d, %v", n, err)
	}
}

func TestLoadMigrationsRejectsBadNames(t *testing.T) {
	for name, fsys := range map[string]fstest.MapFS{
		"unnumbered": {"m/items.sql": {Data: []byte("x")}},
		"duplicate":  {"m/001_a.sql": {Data: []byte("x")}, "m/001_b.sql": {Data: []byte("y")}},
	} {
		if _, err := postgres.LoadMigrations(fsys, "m"); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}

func TestInTxAndErrorMapping(t *testing.T) {
	db := testenv.Postgres(t, migrations, "m")
	ctx := context.Background()
	boom := errors.New("boom")
	err := postgres.InTx(ctx, db.Pool, func(tx pgx.Tx) error {
		if _, err := tx.Exec(ctx, `INSERT INTO items VALUES (2, 'two')`); err != nil {
			return err
		}
		return boom
	})
	if !errors.Is(err, boom) {
		t.Fatalf("err = %v", err)
	}
	var n int
	_ = db.Pool.QueryRow(ctx, `SELECT count(*) FROM items WHERE id = 2`).Scan(&n)
	if n != 0 {
		t.Fatal("rolled-back insert is visible")
	}

	_, err = db.Pool.Exec(ctx, `INSERT INTO items VALUES (3, 'one')`)
	if !postgres.IsUniqueViolation(err) || !postgres.IsUniqueViolation(err, "items_name_key") || postgres.IsUniqueViolation(err, "other") {
		t.Fatalf("unique violation not recognized: %v", err)
	}
	if r := apperr.ReasonOf(postgres.MapError(err, apperr.ReasonNotFound, apperr.ReasonDuplicateName)); r != apperr.ReasonDuplicateName {
		t.Fatalf("mapped to %s", r)
	}
	err = db.Pool.QueryRow(ctx, `SELECT id FROM items WHERE id = 99`).Scan(&n)
	if r := apperr.ReasonOf(postgres.MapError(err, apperr.ReasonUserNotFound, apperr.ReasonConflict)); r != apperr.ReasonUserNotFound {
		t.Fatalf("no rows mapped to %s", r)
	}

	var big int64
	err = db.Pool.QueryRow(ctx, `SELECT $1::bigint + $1::bigint`, int64(1)<<62).Scan(&big)
	if !postgres.IsNumericOutOfRange(err) || postgres.IsNumericOutOfRange(boom) {
		t.Fatalf("bigint overflow not recognized: %d, %v", big, err)
	}

	defer func() {
		if recover() == nil {
			t.Fatal("panic swallowed")
		}
		_ = db.Pool.QueryRow(ctx, `SELECT count(*) FROM items WHERE id = 4`).Scan(&n)
		if n != 0 {
			t.Fatal("insert before panic committed")
		}
	}()
	_ = postgres.InTx(ctx, db.Pool, func(tx pgx.Tx) error {
		_, _ = tx.Exec(ctx, `INSERT INTO items VALUES (4, 'four')`)
		panic("handler bug")
	})
}

func TestMigrateDatabase(t *testing.T) {
	db := testenv.Postgres(t, nil, "")
	ctx := context.Background()
	for i := 0; i < 2; i++ {
		if err := postgres.MigrateDatabase(ctx, postgres.Config{URL: db.URL}, migrations, "m", nil); err != nil {
			t.Fatal(err)
		}
	}
	var n int
	if err := db.Pool.QueryRow(ctx, `SELECT count(*) FROM schema_migrations`).Scan(&n); err != nil || n != 2 {
		t.Fatalf("schema_migrations rows = %d, %v", n, err)
	}
	if err := postgres.MigrateDatabase(ctx, postgres.Config{URL: "postgres://nobody@127.0.0.1:1/x"}, migrations, "m", nil); err == nil {
		t.Fatal("unreachable database migrated")
	}
}
