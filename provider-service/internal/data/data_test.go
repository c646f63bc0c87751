package data

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/lurus-switch/lurus-switch/lurus-common/apperr"
	"github.com/lurus-switch/lurus-switch/lurus-common/testenv"
	"github.com/lurus-switch/lurus-switch/provider-service/internal/biz"
	"github.com/lurus-switch/lurus-switch/provider-service/internal/keyring"
	"github.com/lurus-switch/lurus-switch/provider-service/migrations"
)

const plaintext = "sk-proj-PLAINTEXT-never-stored-9f8e7d6c"

func secretKey(id string, b byte) string {
	return id + ":" + base64.StdEncoding.EncodeToString(bytes.Repeat([]byte{b}, 32))
}

func mustKeyring(t *testing.T, cur, prev string) *keyring.Keyring {
	t.Helper()
	kr, err := keyring.Parse(cur, prev)
	if err != nil {
		t.Fatal(err)
	}
	return kr
}

func spec(name string, secrets ...string) biz.Spec {
	s := biz.Spec{Name: name, Type: "openai", BaseURL: "https://api.openai.com/v1", Models: []string{"gpt-4o"},
		ModelMapping: map[string]string{}, Headers: map[string]string{}, Weight: 1, Enabled: true}
	for _, k := range secrets {
		s.Keys = append(s.Keys, biz.KeyInput{Secret: k, Enabled: true})
	}
	return s
}

// dumpDatabase returns every row of every table in the public schema as
// text (bytea renders as hex), to search for leaked secrets.
func dumpDatabase(t *testing.T, pool *pgxpool.Pool) string {
	t.Helper()
	ctx := context.Background()
	rows, err := pool.Query(ctx, `SELECT tablename FROM pg_tables WHERE schemaname = 'public'`)
	if err != nil {
		t.Fatal(err)
	}
	var tables []string
	for rows.Next() {
		var n string
		_ = rows.Scan(&n)
		tables = append(tables, n)
	}
	rows.Close()
	var b strings.Builder
	for _, tbl := range tables {
		var s *string
		if err := pool.QueryRow(ctx, `SELECT string_agg(t::text, E'\n') FROM `+tbl+` t`).Scan(&s); err != nil {
			t.Fatal(err)
		}
		if s != nil {
			b.WriteString(*s)
		}
	}
	if !strings.Contains(b.String(), "provider") && len(tables) < 3 {
		t.Fatalf("dump looks empty: tables %v", tables)
	}
	return b.String()
}

func assertNoPlaintext(t *testing.T, dump, secret string) {
	t.Helper()
	for _, form := range []string{secret, hex.EncodeToString([]byte(secret)), base64.StdEncoding.EncodeToString([]byte(secret))} {
		if strings.Contains(dump, form) {
			t.Fatalf("database holds the plaintext key (as %q)", form)
		}
	}
}

func TestKeysAreEncryptedAtRest(t *testing.T) {
	db := testenv.Postgres(t, migrations.FS, migrations.Dir)
	st := NewProviders(db.Pool, mustKeyring(t, secretKey("k1", 1), ""))
	ctx := context.Background()
	p, _, err := st.Create(ctx, spec("enc", plaintext))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := st.AddKey(ctx, p.ID, biz.KeyInput{Secret: plaintext + "-second", Enabled: true}); err != nil {
		t.Fatal(err)
	}
	dump := dumpDatabase(t, db.Pool)
	assertNoPlaintext(t, dump, plaintext)
	if !strings.Contains(dump, "sk-…7d6c") {
		t.Fatalf("masked form missing from the dump")
	}
	// ...yet it decrypts for the probe and the snapshot.
	_, secrets, err := st.Secrets(ctx, p.ID)
	if err != nil || len(secrets) != 2 || secrets[0].Secret != plaintext {
		t.Fatalf("secrets %+v, %v", secrets, err)
	}
	snap, err := st.Load(ctx)
	if err != nil || len(snap.Providers) != 1 || len(snap.Providers[0].Keys) != 2 || snap.Providers[0].Keys[0].Key != plaintext {
		t.Fatalf("snapshot %+v, %v", snap, err)
	}
}

func TestCheckKeysFailsLoudlyOnWrongKey(t *testing.T) {
	db := testenv.Postgres(t, migrations.FS, migrations.Dir)
	ctx := context.Background()
	if _, _, err := NewProviders(db.Pool, mustKeyring(t, secretKey("k1", 1), "")).Create(ctx, spec("a", plaintext)); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, cur, prev string
		wantErr         string // "" = passes
	}{
		{"right key", secretKey("k1", 1), "", ""},
		{"same id, wrong key", secretKey("k1", 9), "", `key id "k1" does not decrypt`},
		{"new id, old one missing", secretKey("k2", 2), "", `key id "k1", which is neither`},
		{"new id, old one previous", secretKey("k2", 2), secretKey("k1", 1), ""},
		{"new id, previous wrong", secretKey("k2", 2), secretKey("k1", 7), `key id "k1" does not decrypt`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			usage, err := NewProviders(db.Pool, mustKeyring(t, tt.cur, tt.prev)).CheckKeys(ctx)
			if tt.wantErr == "" {
				if err != nil || usage["k1"] != 1 {
					t.Fatalf("usage %v, err %v", usage, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("err = %v, want %q", err, tt.wantErr)
			}
		})
	}
}

func TestRotateKeys(t *testing.T) {
	db := testenv.Postgres(t, migrations.FS, migrations.Dir)
	ctx := context.Background()
	old := NewProviders(db.Pool, mustKeyring(t, secretKey("k1", 1), ""))
	for _, name := range []string{"a", "b", "c"} {
		if _, _, err := old.Create(ctx, spec(name, plaintext+name, plaintext+name+"2")); err != nil {
			t.Fatal(err)
		}
	}
	rotated := NewProviders(db.Pool, mustKeyring(t, secretKey("k2", 2), secretKey("k1", 1)))
	n, err := rotated.RotateKeys(ctx, 4) // several batches
	if err != nil || n != 6 {
		t.Fatalf("rotated %d, %v", n, err)
	}
	if n, err := rotated.RotateKeys(ctx, 4); err != nil || n != 0 {
		t.Fatalf("second run rotated %d, %v", n, err)
	}
	// Only the new key is needed now, and everything still decrypts.
	onlyNew := NewProviders(db.Pool, mustKeyring(t, secretKey("k2", 2), ""))
	usage, err := onlyNew.CheckKeys(ctx)
	if err != nil || usage["k2"] != 6 || len(usage) != 1 {
		t.Fatalf("usage %v, %v", usage, err)
	}
	snap, err := onlyNew.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]bool{}
	for _, p := range snap.Providers {
		for _, k := range p.Keys {
			got[k.Key] = true
		}
	}
	if !got[plaintext+"a"] || !got[plaintext+"c2"] || len(got) != 6 {
		t.Fatalf("decrypted keys after rotation: %v", got)
	}
	assertNoPlaintext(t, dumpDatabase(t, db.Pool), plaintext)
}

func TestUpdateReplacesKeySetAndBumpsVersion(t *testing.T) {
	db := testenv.Postgres(t, migrations.FS, migrations.Dir)
	ctx := context.Background()
	st := NewProviders(db.Pool, mustKeyring(t, secretKey("k1", 1), ""))
	p, v1, err := st.Create(ctx, spec("u", "sk-one-aaaaaaaaaaaa", "sk-two-bbbbbbbbbbbb"))
	if err != nil {
		t.Fatal(err)
	}
	keep := p.Keys[1]
	p2, v2, err := st.Update(ctx, p.ID, func(cur biz.Provider) (biz.Spec, error) {
		s := biz.SpecOf(cur)
		s.Keys = []biz.KeyInput{{ID: keep.ID, Enabled: false}, {Secret: "sk-three-cccccccccc", Enabled: true}}
		s.Weight = 5
		return s, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if v2 != v1+1 || p2.Weight != 5 || len(p2.Keys) != 2 || p2.Keys[0].ID != keep.ID || p2.Keys[0].Enabled {
		t.Fatalf("v %d→%d, provider %+v", v1, v2, p2)
	}
	if got, _ := st.Get(ctx, p.ID); len(got.Keys) != 2 || got.Keys[1].Masked != "sk-…cccc" {
		t.Fatalf("stored keys %+v", got.Keys)
	}
	_, _, err = st.Update(ctx, p.ID, func(cur biz.Provider) (biz.Spec, error) {
		s := biz.SpecOf(cur)
		s.Keys = []biz.KeyInput{{ID: "pk_FOREIGN", Enabled: true}}
		return s, nil
	})
	if apperr.ReasonOf(err) != apperr.ReasonInvalidArgument {
		t.Fatalf("foreign key id: %v", err)
	}
	if v, _ := st.Version(ctx); v != v2 {
		t.Fatalf("a failed update bumped the version to %d", v)
	}
	if _, _, err := st.Update(ctx, "prv_MISSING", func(biz.Provider) (biz.Spec, error) { return biz.Spec{}, nil }); apperr.ReasonOf(err) != apperr.ReasonProviderNotFound {
		t.Fatalf("missing provider: %v", err)
	}
	if _, _, err := st.Create(ctx, spec("U")); apperr.ReasonOf(err) != apperr.ReasonDuplicateName {
		t.Fatalf("case-insensitive duplicate: %v", err)
	}
	if _, err := st.DeleteKey(ctx, p.ID, "pk_NOPE"); apperr.ReasonOf(err) != apperr.ReasonKeyNotFound {
		t.Fatalf("delete missing key: %v", err)
	}
}

func TestSnapshotCacheIsSealed(t *testing.T) {
	rd := testenv.Redis(t)
	ctx := context.Background()
	kr := mustKeyring(t, secretKey("k1", 1), "")
	c := NewSnapshotCache(rd.Client, kr, rd.Prefix, time.Minute)
	if _, ok, err := c.Get(ctx); ok || err != nil {
		t.Fatalf("empty cache: ok %v err %v", ok, err)
	}
	body := []byte(`{"version":7,"providers":[{"keys":[{"key":"` + plaintext + `"}]}]}`)
	if err := c.Put(ctx, biz.EncodedSnapshot{Version: 7, Body: body}); err != nil {
		t.Fatal(err)
	}
	raw, err := rd.Client.HGetAll(ctx, c.Key()).Result()
	if err != nil || raw["v"] != "7" || raw["kid"] != "k1" {
		t.Fatalf("stored %v, %v", raw, err)
	}
	for _, v := range raw {
		if strings.Contains(v, plaintext) {
			t.Fatal("redis holds the plaintext snapshot")
		}
	}
	got, ok, err := c.Get(ctx)
	if err != nil || !ok || got.Version != 7 || !bytes.Equal(got.Body, body) {
		t.Fatalf("get %v %v %s", ok, err, got.Body)
	}
	// A tampered version does not open (the version is bound to the body).
	rd.Client.HSet(ctx, c.Key(), "v", "8")
	if _, ok, err := c.Get(ctx); ok || !errors.Is(err, keyring.ErrWrongKey) {
		t.Fatalf("tampered entry: ok %v, err %v", ok, err)
	}
	if err := c.ProviderChanged(ctx, 9, "prv_x"); err != nil {
		t.Fatal(err)
	}
	if n, _ := rd.Client.Exists(ctx, c.Key()).Result(); n != 0 {
		t.Fatal("invalidation left the entry")
	}
}
