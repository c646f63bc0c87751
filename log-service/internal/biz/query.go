package biz

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"time"

	"github.com/oklog/ulid/v2"

	"github.com/lurus-switch/lurus-switch/lurus-common/apperr"
)

// MaxLimit is the largest page or top-N a query may ask for.
const MaxLimit = 1000

// Principal is who asks: the admin sees every user's logs, a user's API
// key only its own user's.
type Principal struct {
	Admin  bool
	UserID string
	KeyID  string
}

// Filter narrows a query. Empty strings and zero values mean "any".
type Filter struct {
	UserID     string
	KeyID      string
	Model      string
	ProviderID string
	// StatusClass selects status codes 100·c … 100·c+99 (1..5); 0 is any.
	StatusClass int
	// Stream, when set, selects streamed (true) or plain (false) requests.
	Stream *bool
}

// rawOnly reports whether f uses a filter the rollup tables cannot apply
// (they keep only user, model and provider).
func (f Filter) rawOnly() bool { return f.KeyID != "" || f.StatusClass != 0 || f.Stream != nil }

// Range is the half-open time span [From, To).
type Range struct {
	From time.Time `json:"from"`
	To   time.Time `json:"to"`
}

// Request is a query as the caller gave it; zero values mean "absent".
type Request struct {
	Filter Filter
	From   time.Time
	To     time.Time
	Limit  *int
	Cursor string
	Sort   SortKey
}

// Cursor is a position in the newest-first order of request_log: the next
// page holds rows strictly after it, i.e. older, or as old with a smaller
// request id.
type Cursor struct {
	CreatedAt time.Time
	RequestID string
}

type cursorWire struct {
	T  int64  `json:"t"`
	ID string `json:"id"`
}

// Encode returns the opaque form handed to clients.
func (c Cursor) Encode() string {
	raw, _ := json.Marshal(cursorWire{T: c.CreatedAt.Unix(), ID: c.RequestID})
	return base64.RawURLEncoding.EncodeToString(raw)
}

// DecodeCursor parses what Encode returned; anything else is
// INVALID_CURSOR.
func DecodeCursor(s string) (Cursor, error) {
	bad := apperr.New(apperr.ReasonInvalidCursor, "cursor is not one this service returned")
	raw, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		return Cursor{}, bad
	}
	var w cursorWire
	if err := json.Unmarshal(raw, &w); err != nil || !validID(w.ID) || w.T <= 0 {
		return Cursor{}, bad
	}
	return Cursor{CreatedAt: time.Unix(w.T, 0).UTC(), RequestID: w.ID}, nil
}

// ListQuery is a validated page request on request_log.
type ListQuery struct {
	Filter Filter
	Range  Range
	Limit  int
	After  *Cursor // nil: the first page
}

// Page is one page of GET /api/v1/logs.
type Page struct {
	Items []Entry `json:"items"`
	// NextCursor fetches the following page; nil on the last one.
	NextCursor *string `json:"next_cursor"`
}

// LogReader is what the query API needs from storage.
type LogReader interface {
	// List returns up to q.Limit entries newest first (created_at, then
	// request_id, descending), strictly after q.After.
	List(ctx context.Context, q ListQuery) ([]Entry, error)
	// Get returns the entry of a request id, looking only inside within
	// when it is not nil; a missing one is LOG_NOT_FOUND.
	Get(ctx context.Context, requestID string, within *Range) (Entry, error)
	// Summary aggregates request_log over r.
	Summary(ctx context.Context, f Filter, r Range) (Summary, error)
	// Buckets returns the non-empty buckets of granularity g in r, oldest
	// first, from the rollup tables (f uses user, model and provider only).
	Buckets(ctx context.Context, g Granularity, f Filter, r Range) ([]Bucket, error)
	// Top returns up to limit groups by dimension d over r from the hourly
	// rollup, largest first by sort.
	Top(ctx context.Context, d Dimension, f Filter, r Range, sort SortKey, limit int) ([]TopRow, error)
}

// QueryLimits bound the query API (conf.Query).
type QueryLimits struct {
	MaxRange     time.Duration
	DefaultRange time.Duration
	DefaultLimit int
}

// Queries is the query API's logic: defaults, validation, who sees what,
// pagination and the stats arithmetic.
type Queries struct {
	reader LogReader
	limits QueryLimits
	now    func() time.Time
}

// NewQueries returns the query use cases on reader.
func NewQueries(reader LogReader, limits QueryLimits) *Queries {
	return &Queries{reader: reader, limits: limits, now: time.Now}
}

// List returns a page of logs, newest first. Without from it looks back
// MaxRange.
func (q *Queries) List(ctx context.Context, p Principal, req Request) (Page, error) {
	f, r, err := q.scoped(p, req, q.limits.MaxRange)
	if err != nil {
		return Page{}, err
	}
	limit, err := q.limit(req.Limit)
	if err != nil {
		return Page{}, err
	}
	lq := ListQuery{Filter: f, Range: r, Limit: limit + 1}
	if req.Cursor != "" {
		c, err := DecodeCursor(req.Cursor)
		if err != nil {
			return Page{}, err
		}
		lq.After = &c
	}
	items, err := q.reader.List(ctx, lq)
	if err != nil {
		return Page{}, err
	}
	page := Page{Items: items}
	if len(items) > limit {
		page.Items = items[:limit]
		last := page.Items[limit-1]
		next := Cursor{CreatedAt: last.CreatedAt, RequestID: last.RequestID}.Encode()
		page.NextCursor = &next
	}
	if page.Items == nil {
		page.Items = []Entry{}
	}
	return page, nil
}

// ulidWindow is how far around the time encoded in a ULID request id Get
// looks first (the gateway creates the id when the request arrives; the row
// carries when it finished).
const ulidWindow = 24 * time.Hour

// Get returns one request's log entry. A user's key gets LOG_NOT_FOUND for
// another user's request, as if it did not exist.
func (q *Queries) Get(ctx context.Context, p Principal, requestID string) (Entry, error) {
	if _, err := p.scope(Filter{}); err != nil {
		return Entry{}, err
	}
	if !validID(requestID) {
		return Entry{}, apperr.New(apperr.ReasonInvalidArgument, "request id must be 1..128 printable ASCII characters")
	}
	var e Entry
	var err error
	if u, perr := ulid.ParseStrict(requestID); perr == nil {
		t := ulid.Time(u.Time())
		e, err = q.reader.Get(ctx, requestID, &Range{From: t.Add(-ulidWindow), To: t.Add(ulidWindow)})
		if apperr.ReasonOf(err) == apperr.ReasonLogNotFound {
			e, err = q.reader.Get(ctx, requestID, nil)
		}
	} else {
		e, err = q.reader.Get(ctx, requestID, nil)
	}
	if err != nil {
		return Entry{}, err
	}
	if !p.Admin && e.UserID != p.UserID {
		return Entry{}, notFound(requestID)
	}
	return e, nil
}

func notFound(id string) error {
	return apperr.New(apperr.ReasonLogNotFound, "no log for request "+id)
}

// scope applies the principal to a filter: an admin's is unchanged; a
// user's is forced to its own user, and asking for another user is
// FORBIDDEN.
func (p Principal) scope(f Filter) (Filter, error) {
	if p.Admin {
		return f, nil
	}
	if p.UserID == "" {
		return f, apperr.New(apperr.ReasonForbidden, "no user behind these credentials")
	}
	if f.UserID != "" && f.UserID != p.UserID {
		return f, apperr.New(apperr.ReasonForbidden, "an API key sees only its own user's logs")
	}
	f.UserID = p.UserID
	return f, nil
}

// scoped applies the principal to the request's filter and resolves its
// range (default span: span).
func (q *Queries) scoped(p Principal, req Request, span time.Duration) (Filter, Range, error) {
	f, err := p.scope(req.Filter)
	if err != nil {
		return Filter{}, Range{}, err
	}
	r, err := q.resolveRange(req, span)
	if err != nil {
		return Filter{}, Range{}, err
	}
	return f, r, nil
}

// resolveRange applies defaults (to: now; from: to − span) and checks the
// range: from before to, no longer than MaxRange.
func (q *Queries) resolveRange(req Request, span time.Duration) (Range, error) {
	to := req.To
	if to.IsZero() {
		to = q.now()
	}
	from := req.From
	if from.IsZero() {
		from = to.Add(-span)
	}
	if !from.Before(to) {
		return Range{}, apperr.New(apperr.ReasonInvalidTimeRange, "from must be before to")
	}
	if to.Sub(from) > q.limits.MaxRange {
		return Range{}, apperr.Newf(apperr.ReasonInvalidTimeRange, "the range from..to may span at most %s", formatSpan(q.limits.MaxRange))
	}
	return Range{From: from.UTC(), To: to.UTC()}, nil
}

// formatSpan writes whole days as "93 days", anything else as a duration.
func formatSpan(d time.Duration) string {
	if d%(24*time.Hour) == 0 {
		return fmt.Sprintf("%d days", d/(24*time.Hour))
	}
	return d.String()
}

func (q *Queries) limit(l *int) (int, error) {
	if l == nil {
		return q.limits.DefaultLimit, nil
	}
	if *l < 1 || *l > MaxLimit {
		return 0, apperr.Newf(apperr.ReasonInvalidArgument, "limit must be in 1..%d", MaxLimit)
	}
	return *l, nil
}
