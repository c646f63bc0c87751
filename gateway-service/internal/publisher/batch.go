package publisher

import (
	"cmp"
	"slices"

	"github.com/lurus-switch/lurus-switch/lurus-common/events"
)

// frame packs records into batch records: consecutive records of one
// subject share one (a JSON array of their envelopes, see
// events.SplitBody) of at most maxEvents records and about maxBytes
// bytes. A record left alone stays as it is: its message id is its
// request id, as for a record that was never batched. The result is in
// emission order of each batch's first record.
func frame(recs []Record, maxEvents, maxBytes int) []Record {
	if maxEvents <= 1 || len(recs) < 2 {
		return recs
	}
	type open struct {
		subject string
		recs    []Record
		bytes   int
	}
	var (
		out    []Record
		frames []open
	)
	for _, r := range recs {
		i := slices.IndexFunc(frames, func(o open) bool { return o.subject == r.Subject })
		if i < 0 {
			frames = append(frames, open{subject: r.Subject})
			i = len(frames) - 1
		}
		o := &frames[i]
		if len(o.recs) > 0 && (len(o.recs) >= maxEvents || o.bytes+len(r.Body)+1 > maxBytes) {
			out = append(out, batchRecord(o.recs))
			o.recs, o.bytes = nil, 0
		}
		o.recs = append(o.recs, r)
		o.bytes += len(r.Body) + 1
	}
	for _, o := range frames {
		if len(o.recs) > 0 {
			out = append(out, batchRecord(o.recs))
		}
	}
	slices.SortStableFunc(out, func(a, b Record) int { return cmp.Compare(a.Seq, b.Seq) })
	return out
}

// batchRecord is the record of one message carrying recs (all of one
// subject and type).
func batchRecord(recs []Record) Record {
	if len(recs) == 1 {
		return recs[0]
	}
	n := 2
	bodies := make([][]byte, len(recs))
	for i, r := range recs {
		bodies[i] = r.Body
		n += len(r.Body) + 1
	}
	return Record{Seq: recs[0].Seq, Subject: recs[0].Subject, ID: events.NewBatchID(), Type: recs[0].Type,
		N: len(recs), Body: events.AppendBatch(make([]byte, 0, n), bodies...)}
}

// count is how many events r carries.
func (r Record) count() int { return max(1, r.N) }
