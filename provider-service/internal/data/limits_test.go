package data

import (
	"context"
	"testing"

	"github.com/lurus-switch/lurus-switch/lurus-common/testenv"
	"github.com/lurus-switch/lurus-switch/provider-service/internal/biz"
	"github.com/lurus-switch/lurus-switch/provider-service/migrations"
)

// TestKeyLimitsStoredAndSnapshotted: an upstream key's rpm_limit and
// tpm_limit are stored on create, kept when a replace names the key
// without them, changed when it gives them, and carried in the snapshot.
func TestKeyLimitsStoredAndSnapshotted(t *testing.T) {
	db := testenv.Postgres(t, migrations.FS, migrations.Dir)
	ctx := context.Background()
	st := NewProviders(db.Pool, mustKeyring(t, secretKey("k1", 1), ""))
	n := func(v int64) *int64 { return &v }
	s := spec("lim", "sk-one-aaaaaaaaaaaa", "sk-two-bbbbbbbbbbbb")
	s.Keys[0].RPMLimit, s.Keys[0].TPMLimit = n(50), n(40_000)
	p, _, err := st.Create(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	if k := p.Keys; k[0].RPMLimit != 50 || k[0].TPMLimit != 40_000 || k[1].RPMLimit != 0 || k[1].TPMLimit != 0 {
		t.Fatalf("created keys %+v", k)
	}

	// Replace: key 0 named without limits keeps them; key 1 gets an RPM.
	_, _, err = st.Update(ctx, p.ID, func(cur biz.Provider) (biz.Spec, error) {
		s := biz.SpecOf(cur)
		s.Keys = []biz.KeyInput{{ID: p.Keys[0].ID, Enabled: true}, {ID: p.Keys[1].ID, Enabled: true, RPMLimit: n(7)}}
		return s, nil
	})
	if err != nil {
		t.Fatal(err)
	}
	got, err := st.Get(ctx, p.ID)
	if err != nil {
		t.Fatal(err)
	}
	if k := got.Keys; k[0].RPMLimit != 50 || k[0].TPMLimit != 40_000 || k[1].RPMLimit != 7 || k[1].TPMLimit != 0 {
		t.Fatalf("after replace %+v", k)
	}
	// SpecOf (a PATCH without keys) keeps every key's limits.
	if _, _, err := st.Update(ctx, p.ID, func(cur biz.Provider) (biz.Spec, error) { return biz.SpecOf(cur), nil }); err != nil {
		t.Fatal(err)
	}
	added, _, err := st.AddKey(ctx, p.ID, biz.KeyInput{Secret: "sk-three-cccccccccc", Enabled: true, TPMLimit: n(9)})
	if err != nil || added.TPMLimit != 9 || added.RPMLimit != 0 {
		t.Fatalf("added key %+v %v", added, err)
	}

	snap, err := st.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string][2]int64{p.Keys[0].ID: {50, 40_000}, p.Keys[1].ID: {7, 0}, added.ID: {0, 9}}
	if len(snap.Providers) != 1 || len(snap.Providers[0].Keys) != 3 {
		t.Fatalf("snapshot %+v", snap.Providers)
	}
	for _, k := range snap.Providers[0].Keys {
		if w := want[k.ID]; k.RPMLimit != w[0] || k.TPMLimit != w[1] {
			t.Errorf("snapshot key %s: rpm %d tpm %d, want %v", k.ID, k.RPMLimit, k.TPMLimit, w)
		}
	}
}
