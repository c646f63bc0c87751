package publisher

import (
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/lurus-switch/lurus-switch/lurus-common/events"
)

func rec(seq uint64, subject string, size int) Record {
	id := "req" + strconv.FormatUint(seq, 10)
	return Record{Seq: seq, Subject: subject, ID: id, Type: "t." + subject, TraceParent: "tp-" + id,
		Body: []byte(`{"id":"` + id + `","pad":"` + strings.Repeat("x", size) + `"}`)}
}

func TestFrame(t *testing.T) {
	var recs []Record
	for i := uint64(1); i <= 10; i++ {
		recs = append(recs, rec(i, "billing.usage", 10), rec(i, "log.write", 10))
	}
	recs = append(recs, rec(11, "log.write", 10))
	out := frame(recs, 4, 1<<20, nil)
	// billing: 4+4+2 events, log: 4+4+3.
	var got []string
	seen := map[string]int{}
	ids := map[string]bool{}
	for _, r := range out {
		raws, err := events.SplitBody(r.Body)
		if err != nil {
			t.Fatal(err)
		}
		if r.count() != len(raws) {
			t.Fatalf("record says %d events, body holds %d", r.count(), len(raws))
		}
		if r.N > 1 && (!strings.HasPrefix(r.ID, events.BatchIDPrefix) || r.TraceParent != "") {
			t.Fatalf("batch record id %q traceparent %q", r.ID, r.TraceParent)
		}
		if ids[r.ID] {
			t.Fatalf("message id %s used twice", r.ID)
		}
		ids[r.ID] = true
		for _, raw := range raws {
			env := string(raw)
			if !strings.Contains(env, `"id":"req`) {
				t.Fatalf("unexpected envelope %s", env)
			}
			seen[r.Subject]++
		}
		got = append(got, r.Subject+":"+strconv.Itoa(len(raws)))
	}
	want := "billing.usage:4 log.write:4 billing.usage:4 log.write:4 billing.usage:2 log.write:3"
	if strings.Join(got, " ") != want {
		t.Fatalf("frames %v, want %s", got, want)
	}
	if seen["billing.usage"] != 10 || seen["log.write"] != 11 {
		t.Fatalf("events per subject %v", seen)
	}
	for i := 1; i < len(out); i++ {
		if out[i].Seq < out[i-1].Seq {
			t.Fatal("frames not in emission order")
		}
	}
}

func TestFrameByteLimitAndSingles(t *testing.T) {
	recs := []Record{rec(1, "log.write", 100), rec(2, "log.write", 100), rec(3, "log.write", 100), rec(4, "billing.usage", 5)}
	out := frame(recs, 100, 2*len(recs[0].Body)+2, nil)
	if len(out) != 3 || out[0].N != 2 || out[1].N != 0 || out[2].N != 0 {
		t.Fatalf("frames %+v", out)
	}
	// A record alone keeps its request id and trace header.
	if out[1].ID != "req3" && out[2].ID != "req3" {
		t.Fatalf("single record changed: %+v", out)
	}
	for _, r := range out[1:] {
		if r.TraceParent != "tp-"+r.ID {
			t.Fatalf("single record lost its traceparent: %+v", r)
		}
	}
	if same := frame(recs, 1, 1<<20, nil); len(same) != len(recs) {
		t.Fatal("batch_max_events 1 must publish one message per event")
	}
}

func TestArenaSlicesSurviveGrowth(t *testing.T) {
	var a arena
	var got [][]byte
	for i := 0; i < 200; i++ {
		start := len(a.buf)
		a.buf = append(a.buf, strings.Repeat(strconv.Itoa(i%10), 100)...)
		got = append(got, a.since(start))
	}
	for i, b := range got {
		if string(b) != strings.Repeat(strconv.Itoa(i%10), 100) || cap(b) != len(b) {
			t.Fatalf("slice %d changed after later allocations: %q (cap %d)", i, b[:10], cap(b))
		}
	}
	a.reset(true)
	if len(a.buf) != 0 || cap(a.buf) == 0 {
		t.Fatal("reset(true) must keep the memory for reuse")
	}
	a.reset(false)
	if a.buf != nil {
		t.Fatal("reset(false) must let go of memory that may still be read")
	}
}

// Framing into the arena that also holds the records' own bodies (as the
// publisher does) must leave every body intact.
func TestFrameInTheRecordsArena(t *testing.T) {
	var a arena
	var recs []Record
	for i := uint64(1); i <= 50; i++ {
		for _, subj := range []string{"billing.usage", "log.write"} {
			start := len(a.buf)
			a.buf = append(a.buf, `{"id":"r`+strconv.FormatUint(i, 10)+`","s":"`+subj+`"}`...)
			recs = append(recs, Record{Seq: i, Subject: subj, ID: "r" + strconv.FormatUint(i, 10), Body: a.since(start)})
		}
	}
	recs = append(recs, Record{Seq: 51, Subject: "log.write", ID: "r51", Body: []byte(`{"id":"r51","s":"log.write"}`)})
	out := frame(recs, 7, 1<<20, &a)
	n := 0
	for _, r := range out {
		envs, err := events.SplitBody(r.Body)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range envs {
			if !strings.Contains(string(e), `"s":"`+r.Subject+`"`) {
				t.Fatalf("envelope %s in a %s batch", e, r.Subject)
			}
			n++
		}
	}
	if n != 101 {
		t.Fatalf("%d envelopes framed, want 101", n)
	}
	// billing.usage: 7 batches of 7, then r50 alone.
	alone := slices.IndexFunc(out, func(r Record) bool { return r.ID == "r50" })
	if alone < 0 || out[alone].Subject != "billing.usage" || out[alone].N != 0 || string(out[alone].Body) != `{"id":"r50","s":"billing.usage"}` {
		t.Fatalf("the record left alone: %d in %+v", alone, out)
	}
}
