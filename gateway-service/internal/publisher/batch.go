package publisher

import (
	"cmp"
	"slices"

	"github.com/lurus-switch/lurus-switch/lurus-common/events/natsbus"
)

// frame packs records into batch records: the records of one subject, in
// order, share one (a JSON array of their envelopes, see
// events.SplitBody) of at most maxEvents records and about maxBytes
// bytes. A record left alone stays as it is: its message id is its
// request id, as for a record that was never batched. Batch bodies are
// allocated from a (nil: the heap). The result is in emission order of
// each batch's first record.
func frame(recs []Record, maxEvents, maxBytes int, a *arena) []Record {
	if maxEvents <= 1 || len(recs) < 2 {
		return recs
	}
	if a == nil {
		a = &arena{}
	}
	out := make([]Record, 0, 4)
	var done []string // subjects framed already (the gateway has two)
	for i, first := range recs {
		if slices.Contains(done, first.Subject) {
			continue
		}
		done = append(done, first.Subject)
		var (
			cur   Record // the batch being filled
			alone Record // its first record, while it is the only one
			start int    // where its body starts in a
		)
		flush := func() {
			switch {
			case cur.N == 1:
				a.buf = a.buf[:start] // never used: the record goes alone
				out = append(out, alone)
			case cur.N > 1:
				a.buf = append(a.buf, ']')
				cur.Body = a.since(start)
				out = append(out, cur)
			}
			cur.N = 0
		}
		for _, r := range recs[i:] {
			if r.Subject != first.Subject {
				continue
			}
			if cur.N > 0 && (cur.N >= maxEvents || len(a.buf)-start+len(r.Body)+1 > maxBytes) {
				flush()
			}
			if cur.N == 0 {
				start, alone = len(a.buf), r
				cur = Record{Seq: r.Seq, Subject: r.Subject, ID: natsbus.NewBatchID(), Type: r.Type}
				a.buf = append(a.buf, '[')
			} else {
				a.buf = append(a.buf, ',')
			}
			a.buf = append(a.buf, r.Body...)
			cur.N++
		}
		flush()
	}
	slices.SortStableFunc(out, func(a, b Record) int { return cmp.Compare(a.Seq, b.Seq) })
	return out
}

// arena is memory the publisher goroutine encodes a round's messages into
// and reuses for the next round, once nothing refers to the last one.
// Slices taken from it stay valid when it grows: they keep the old array.
type arena struct{ buf []byte }

// since returns what was appended to the arena from start on, capped so
// that appending to it can never write into the arena.
func (a *arena) since(start int) []byte { return a.buf[start:len(a.buf):len(a.buf)] }

// reset makes the arena's memory reusable; keep only if nothing published
// from it can still be read (see Publisher.handle).
func (a *arena) reset(keep bool) {
	if keep && cap(a.buf) <= maxArena {
		a.buf = a.buf[:0]
		return
	}
	a.buf = nil
}

// maxArena keeps an arena grown by a huge round from staying that large.
const maxArena = 8 << 20

// count is how many events r carries.
func (r Record) count() int { return max(1, r.N) }
