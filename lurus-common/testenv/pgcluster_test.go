//go:build unix

package testenv

import (
	"context"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// A private cluster survives SIGKILL and an immediate stop: data committed
// before the crash is there after the restart.
func TestPGClusterKillAndRestart(t *testing.T) {
	c := NewPGCluster(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	exec := func(sql string) int {
		t.Helper()
		conn, err := pgx.Connect(ctx, c.URL)
		if err != nil {
			t.Fatalf("connect: %v\n%s", err, c.Log())
		}
		defer conn.Close(ctx)
		var n int
		if err := conn.QueryRow(ctx, sql).Scan(&n); err != nil {
			t.Fatalf("%s: %v", sql, err)
		}
		return n
	}
	conn, err := pgx.Connect(ctx, c.URL)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := conn.Exec(ctx, `CREATE TABLE kept (n int); INSERT INTO kept VALUES (7)`); err != nil {
		t.Fatal(err)
	}
	conn.Close(ctx)

	if err := c.Kill(); err != nil {
		t.Fatal(err)
	}
	if c.Running() {
		t.Fatal("running after Kill")
	}
	if _, err := pgx.Connect(ctx, c.URL); err == nil {
		t.Fatal("connected to a killed cluster")
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	if n := exec(`SELECT n FROM kept`); n != 7 {
		t.Fatalf("after crash recovery: %d", n)
	}
	if err := c.Stop("immediate"); err != nil {
		t.Fatal(err)
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	if n := exec(`SELECT count(*)::int FROM kept`); n != 1 {
		t.Fatalf("after immediate stop: %d rows", n)
	}
}

// A cluster made with a superuser, a password and password authentication
// on TCP lets that user in with URL, refuses a wrong password, and trusts
// the socket that Exec's programs use.
func TestPGClusterWithPassword(t *testing.T) {
	c := NewPGClusterWith(t, PGClusterOptions{Superuser: "admin", Password: `it's "x"`, HostAuth: "scram-sha-256"})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := pgx.Connect(ctx, c.URL)
	if err != nil {
		t.Fatalf("connect with URL: %v\n%s", err, c.Log())
	}
	var user string
	if err := conn.QueryRow(ctx, `SELECT current_user`).Scan(&user); err != nil || user != "admin" {
		t.Fatalf("current_user %q, %v", user, err)
	}
	conn.Close(ctx)
	u, err := url.Parse(c.URL)
	if err != nil {
		t.Fatal(err)
	}
	u.User = url.UserPassword("admin", "wrong")
	if conn, err := pgx.Connect(ctx, u.String()); err == nil {
		conn.Close(ctx)
		t.Fatal("a wrong password was accepted")
	}
	out, err := c.Exec(map[string]string{"PGHOST": c.SocketDir(), "PGPORT": strconv.Itoa(c.Port)},
		"psql", "-X", "-A", "-t", "-U", "admin", "-d", "postgres", "-c", "SELECT 40 + 2")
	if err != nil || strings.TrimSpace(out) != "42" {
		t.Fatalf("psql on the socket: %q, %v", out, err)
	}
}
