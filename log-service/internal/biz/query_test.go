package biz

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/lurus-switch/lurus-switch/lurus-common/apperr"
)

// fakeReader records what the Queries asked for.
type fakeReader struct {
	list     ListQuery
	entries  []Entry
	gets     []*Range
	byID     map[string]Entry
	buckets  []Bucket
	filter   Filter
	rng      Range
	topLimit int
	summary  Summary
}

func (f *fakeReader) List(_ context.Context, q ListQuery) ([]Entry, error) {
	f.list = q
	if len(f.entries) > q.Limit {
		return f.entries[:q.Limit], nil
	}
	return f.entries, nil
}

func (f *fakeReader) Get(_ context.Context, id string, within *Range) (Entry, error) {
	f.gets = append(f.gets, within)
	e, ok := f.byID[id]
	if !ok || within != nil && (e.CreatedAt.Before(within.From) || !e.CreatedAt.Before(within.To)) {
		return Entry{}, notFound(id)
	}
	return e, nil
}

func (f *fakeReader) Summary(_ context.Context, fl Filter, r Range) (Summary, error) {
	f.filter, f.rng = fl, r
	return f.summary, nil
}

func (f *fakeReader) Buckets(_ context.Context, _ Granularity, fl Filter, r Range) ([]Bucket, error) {
	f.filter, f.rng = fl, r
	return f.buckets, nil
}

func (f *fakeReader) Top(_ context.Context, _ Dimension, fl Filter, r Range, _ SortKey, limit int) ([]TopRow, error) {
	f.filter, f.rng, f.topLimit = fl, r, limit
	return nil, nil
}

var now = time.Date(2025, 3, 10, 12, 34, 56, 0, time.UTC)

func newTestQueries(r LogReader) *Queries {
	q := NewQueries(r, QueryLimits{MaxRange: 93 * 24 * time.Hour, DefaultRange: 24 * time.Hour, DefaultLimit: 100})
	q.now = func() time.Time { return now }
	return q
}

func intp(n int) *int { return &n }

func TestRequestValidation(t *testing.T) {
	admin := Principal{Admin: true}
	user := Principal{UserID: "usr_1"}
	tests := []struct {
		name   string
		p      Principal
		req    Request
		reason apperr.Reason
	}{
		{"defaults", admin, Request{}, ""},
		{"from after to", admin, Request{From: now, To: now.Add(-time.Hour)}, apperr.ReasonInvalidTimeRange},
		{"from equals to", admin, Request{From: now, To: now}, apperr.ReasonInvalidTimeRange},
		{"range too long", admin, Request{From: now.Add(-94 * 24 * time.Hour), To: now}, apperr.ReasonInvalidTimeRange},
		{"93 days is fine", admin, Request{From: now.Add(-93 * 24 * time.Hour), To: now}, ""},
		{"limit zero", admin, Request{Limit: intp(0)}, apperr.ReasonInvalidArgument},
		{"limit 1001", admin, Request{Limit: intp(1001)}, apperr.ReasonInvalidArgument},
		{"limit 1000", admin, Request{Limit: intp(1000)}, ""},
		{"bad cursor", admin, Request{Cursor: "!!"}, apperr.ReasonInvalidCursor},
		{"bad cursor json", admin, Request{Cursor: "e30"}, apperr.ReasonInvalidCursor},
		{"user sees own", user, Request{Filter: Filter{UserID: "usr_1"}}, ""},
		{"user asks for another", user, Request{Filter: Filter{UserID: "usr_2"}}, apperr.ReasonForbidden},
		{"principal without user", Principal{}, Request{}, apperr.ReasonForbidden},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := newTestQueries(&fakeReader{}).List(context.Background(), tt.p, tt.req)
			if got := apperr.ReasonOf(err); err != nil && got != tt.reason || err == nil && tt.reason != "" {
				t.Fatalf("err = %v, want reason %q", err, tt.reason)
			}
		})
	}
}

func TestListForcesUserAndPaginates(t *testing.T) {
	fr := &fakeReader{}
	for i := 0; i < 5; i++ {
		e := Entry{Record: validRecord()}
		e.RequestID = string(rune('e' - i))
		e.CreatedAt = now.Add(-time.Duration(i) * time.Minute)
		fr.entries = append(fr.entries, e)
	}
	q := newTestQueries(fr)
	page, err := q.List(context.Background(), Principal{UserID: "usr_9"}, Request{Limit: intp(3)})
	if err != nil {
		t.Fatal(err)
	}
	if fr.list.Filter.UserID != "usr_9" || fr.list.Limit != 4 {
		t.Fatalf("query %+v", fr.list)
	}
	if !fr.list.Range.To.Equal(now) || !fr.list.Range.From.Equal(now.Add(-93*24*time.Hour)) {
		t.Fatalf("default list range %+v", fr.list.Range)
	}
	if len(page.Items) != 3 || page.NextCursor == nil {
		t.Fatalf("page %d items, next %v", len(page.Items), page.NextCursor)
	}
	c, err := DecodeCursor(*page.NextCursor)
	if err != nil || c.RequestID != "c" || !c.CreatedAt.Equal(now.Add(-2*time.Minute)) {
		t.Fatalf("cursor %+v %v", c, err)
	}
	if _, err := q.List(context.Background(), Principal{UserID: "usr_9"}, Request{Cursor: *page.NextCursor}); err != nil {
		t.Fatal(err)
	}
	if fr.list.After == nil || fr.list.After.RequestID != "c" {
		t.Fatalf("after = %+v", fr.list.After)
	}
	fr.entries = fr.entries[:2]
	page, _ = q.List(context.Background(), Principal{Admin: true}, Request{Limit: intp(3)})
	if page.NextCursor != nil || len(page.Items) != 2 {
		t.Fatalf("last page: %d items, next %v", len(page.Items), page.NextCursor)
	}
}

func TestGet(t *testing.T) {
	const ulidID = "01JNKQ8Z0000000000000000AA" // a ULID of 2025-03-05
	old := Entry{Record: validRecord()}
	old.RequestID = ulidID
	old.UserID = "usr_1"
	old.CreatedAt = time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC) // far from the id's time
	plain := Entry{Record: validRecord()}
	plain.RequestID = "custom-id"
	fr := &fakeReader{byID: map[string]Entry{ulidID: old, "custom-id": plain}}
	q := newTestQueries(fr)
	ctx := context.Background()

	e, err := q.Get(ctx, Principal{UserID: "usr_1"}, ulidID)
	if err != nil || e.RequestID != ulidID {
		t.Fatalf("get = %+v, %v", e, err)
	}
	if len(fr.gets) != 2 || fr.gets[0] == nil || fr.gets[1] != nil {
		t.Fatalf("expected a windowed lookup, then a full one: %v", fr.gets)
	}
	if _, err := q.Get(ctx, Principal{UserID: "usr_2"}, ulidID); apperr.ReasonOf(err) != apperr.ReasonLogNotFound {
		t.Fatalf("other user's log: %v", err)
	}
	fr.gets = nil
	if _, err := q.Get(ctx, Principal{Admin: true}, "custom-id"); err != nil || len(fr.gets) != 1 || fr.gets[0] != nil {
		t.Fatalf("non-ULID lookup: %v %v", err, fr.gets)
	}
	if _, err := q.Get(ctx, Principal{Admin: true}, "has space"); apperr.ReasonOf(err) != apperr.ReasonInvalidArgument {
		t.Fatalf("bad id: %v", err)
	}
}

func TestCursorRoundTrip(t *testing.T) {
	c := Cursor{CreatedAt: time.Date(2025, 3, 1, 10, 0, 5, 0, time.UTC), RequestID: "req-1"}
	s := c.Encode()
	if strings.ContainsAny(s, "+/=") {
		t.Fatalf("cursor %q is not URL-safe", s)
	}
	got, err := DecodeCursor(s)
	if err != nil || got != c {
		t.Fatalf("got %+v %v", got, err)
	}
}
