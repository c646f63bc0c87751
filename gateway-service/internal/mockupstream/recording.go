package mockupstream

import (
	"net/http"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
	"unicode/utf8"
)

// DefaultRequestLogCapacity is how many requests GET /__requests can return.
const DefaultRequestLogCapacity = 1000

// RecordedBodyLimit is how much of a request body a RecordedRequest keeps:
// enough for any test prompt, while a full ring stays under 64 MiB.
const RecordedBodyLimit = 64 << 10

// RecordedRequest is one API request as the mock received it, for tests
// that check what reached upstream: which key, which headers, which model.
type RecordedRequest struct {
	// Seq numbers the requests the server received, from 1.
	Seq uint64 `json:"seq"`
	// Time is when the request arrived.
	Time time.Time `json:"time"`
	// Method is the HTTP method.
	Method string `json:"method"`
	// Path is the URL path, URI the path with the raw query as sent.
	Path string `json:"path"`
	URI  string `json:"uri"`
	// Host is the Host header, which net/http keeps out of Headers.
	Host string `json:"host"`
	// Headers are all request headers as received (keys in canonical form).
	Headers http.Header `json:"headers"`
	// BodyBytes is the size of the request body.
	BodyBytes int `json:"body_bytes"`
	// Body is the request body as received, up to RecordedBodyLimit bytes
	// (cut back to a whole UTF-8 character), so that tests can check what
	// reached upstream after translation: tools, where the system prompt
	// went, the cap field. BodyTruncated says it was cut.
	Body          string `json:"body"`
	BodyTruncated bool   `json:"body_truncated,omitempty"`
	// Model is the request's model: the body's "model", or the model or
	// deployment in the path for Gemini and Azure.
	Model string `json:"model"`
	// OutputCaps are the output cap fields the body holds, by path (see
	// outputCapPaths), for tests that check which cap reached upstream.
	OutputCaps map[string]int64 `json:"output_caps,omitempty"`
	// Scenario is the X-Mock-Scenario the request named, if any.
	Scenario string `json:"scenario,omitempty"`
	// Status is the status sent; 0 while the request is in flight or when
	// no status line was ever sent (a hang the client gave up on).
	Status int `json:"status"`
	// Cut is true when the mock dropped the connection mid-stream.
	Cut bool `json:"cut,omitempty"`
}

// recordBody returns the part of body a RecordedRequest keeps, and whether
// that is less than all of it.
func recordBody(body []byte) (string, bool) {
	if len(body) <= RecordedBodyLimit {
		return string(body), false
	}
	k := RecordedBodyLimit
	for k > 0 && !utf8.RuneStart(body[k]) {
		k--
	}
	return string(body[:k]), true
}

// requestLog is a bounded ring of recent requests. Its mutex is the only
// lock on the request path, held for a slice write.
type requestLog struct {
	mu    sync.Mutex
	items []RecordedRequest
	next  int // slot of the next record
	full  bool
}

func newRequestLog(capacity int) *requestLog {
	return &requestLog{items: make([]RecordedRequest, capacity)}
}

func (l *requestLog) add(rec RecordedRequest) {
	l.mu.Lock()
	l.items[l.next] = rec
	l.next++
	if l.next == len(l.items) {
		l.next, l.full = 0, true
	}
	l.mu.Unlock()
}

// finish sets the outcome of request seq if it is still in the ring.
func (l *requestLog) finish(seq uint64, status int, cut bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	// The record is at most len(items) slots back; search from the newest,
	// where it almost always is.
	for i, n := l.next-1, 0; n < len(l.items); i, n = i-1, n+1 {
		if i < 0 {
			i = len(l.items) - 1
		}
		if l.items[i].Seq == seq {
			l.items[i].Status, l.items[i].Cut = status, cut
			return
		}
		if l.items[i].Seq < seq {
			return
		}
	}
}

// last returns up to limit of the newest records, oldest first.
func (l *requestLog) last(limit int) []RecordedRequest {
	l.mu.Lock()
	defer l.mu.Unlock()
	size := l.next
	if l.full {
		size = len(l.items)
	}
	if limit <= 0 || limit > size {
		limit = size
	}
	out := make([]RecordedRequest, 0, limit)
	for n := limit; n > 0; n-- {
		i := l.next - n
		if i < 0 {
			i += len(l.items)
		}
		out = append(out, l.items[i])
	}
	return out
}

func (l *requestLog) clear() {
	l.mu.Lock()
	clear(l.items)
	l.next, l.full = 0, false
	l.mu.Unlock()
}

// Stats counts the API requests the mock answered, for tests of retry
// budgets and failover that need to know how many attempts reached upstream.
type Stats struct {
	// Total is the number of API requests finished.
	Total int64 `json:"total"`
	// InFlight is the number of API requests being answered now.
	InFlight int64 `json:"in_flight"`
	// Cut is the number of streams the mock dropped on purpose.
	Cut int64 `json:"cut"`
	// ByPath counts finished requests by URL path, then by status ("0" for
	// a request that never got a status line).
	ByPath map[string]map[string]int64 `json:"by_path"`
}

// stats holds the counters; each counter is an atomic found through a
// sync.Map, so counting takes no lock once a path/status pair was seen.
type stats struct {
	total, inFlight, cut atomic.Int64
	byPath               sync.Map // statKey → *atomic.Int64
}

type statKey struct {
	path   string
	status int
}

func (s *stats) count(path string, status int, cut bool) {
	k := statKey{path, status}
	c, ok := s.byPath.Load(k)
	if !ok {
		c, _ = s.byPath.LoadOrStore(k, new(atomic.Int64))
	}
	c.(*atomic.Int64).Add(1)
	s.total.Add(1)
	if cut {
		s.cut.Add(1)
	}
}

func (s *stats) snapshot() Stats {
	out := Stats{
		Total:    s.total.Load(),
		InFlight: s.inFlight.Load(),
		Cut:      s.cut.Load(),
		ByPath:   map[string]map[string]int64{},
	}
	s.byPath.Range(func(key, c any) bool {
		k := key.(statKey)
		m := out.ByPath[k.path]
		if m == nil {
			m = map[string]int64{}
			out.ByPath[k.path] = m
		}
		m[strconv.Itoa(k.status)] = c.(*atomic.Int64).Load()
		return true
	})
	return out
}

func (s *stats) reset() {
	s.byPath.Clear()
	s.total.Store(0)
	s.cut.Store(0)
}
