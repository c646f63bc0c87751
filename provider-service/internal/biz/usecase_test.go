package biz

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
)

// memStore is an in-memory ProviderStore for List tests.
type memStore struct {
	ProviderStore
	ps    []Provider
	calls int
}

func (m *memStore) List(_ context.Context, pg Page) ([]Provider, error) {
	m.calls++
	var out []Provider
	for _, p := range m.ps {
		if p.ID > pg.After && (pg.Type == "" || p.Type == pg.Type) && len(out) < pg.Limit {
			out = append(out, p)
		}
	}
	return out, nil
}

func TestListPagesWithModelFilter(t *testing.T) {
	st := &memStore{}
	for i := range 250 {
		models := []string{"other"}
		if i%10 == 0 {
			models = []string{"gpt-4o*"}
		}
		st.ps = append(st.ps, Provider{ID: fmt.Sprintf("prv_%04d", i), Type: "openai", Models: models})
	}
	u := &Providers{Store: st}
	var got []string
	after := ""
	for pages := 0; ; pages++ {
		items, next, err := u.List(context.Background(), Filter{Model: "gpt-4o-mini", Limit: 10, After: after})
		if err != nil {
			t.Fatal(err)
		}
		for _, p := range items {
			got = append(got, p.ID)
		}
		if next == "" {
			break
		}
		if pages > 5 {
			t.Fatal("pagination does not end")
		}
		after = next
	}
	if len(got) != 25 || got[0] != "prv_0000" || got[24] != "prv_0240" || !slices.IsSorted(got) {
		t.Fatalf("got %d ids: %v", len(got), got)
	}
}

func TestListExactPageHasNoNextCursor(t *testing.T) {
	st := &memStore{ps: []Provider{{ID: "prv_1"}, {ID: "prv_2"}}}
	items, next, err := (&Providers{Store: st}).List(context.Background(), Filter{Limit: 2})
	if err != nil || len(items) != 2 || next != "" {
		t.Fatalf("items %d next %q err %v", len(items), next, err)
	}
	items, next, _ = (&Providers{Store: st}).List(context.Background(), Filter{Limit: 1})
	if len(items) != 1 || next != "prv_1" {
		t.Fatalf("items %d next %q", len(items), next)
	}
	if _, _, err := (&Providers{Store: st}).List(context.Background(), Filter{Limit: MaxListLimit + 1}); err == nil {
		t.Fatal("limit over max accepted")
	}
}

// recordingStore records what Create got and reports a version.
type recordingStore struct {
	ProviderStore
	created []Spec
}

func (r *recordingStore) Create(_ context.Context, s Spec) (Provider, int64, error) {
	r.created = append(r.created, s)
	return Provider{ID: "prv_X", Name: s.Name}, 42, nil
}

func TestCreateNotifiesEveryListenerEvenAfterAFailure(t *testing.T) {
	st := &recordingStore{}
	var seen []string
	failing := ChangedFunc(func(context.Context, int64, string) error { return errors.New("redis down") })
	recording := ChangedFunc(func(_ context.Context, v int64, id string) error {
		seen = append(seen, fmt.Sprintf("%s@%d", id, v))
		return nil
	})
	u := &Providers{Store: st, Validator: testValidator, Notify: []Changed{failing, recording}}
	if _, err := u.Create(context.Background(), validSpec()); err != nil {
		t.Fatal(err)
	}
	if len(seen) != 1 || seen[0] != "prv_X@42" {
		t.Fatalf("notifications %v", seen)
	}
	bad := validSpec()
	bad.Models = nil
	if _, err := u.Create(context.Background(), bad); err == nil || len(st.created) != 1 {
		t.Fatalf("invalid spec reached the store: %v, %d creates", err, len(st.created))
	}
}
