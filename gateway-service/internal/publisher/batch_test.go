package publisher

import (
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
	out := frame(recs, 4, 1<<20)
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
	out := frame(recs, 100, 2*len(recs[0].Body)+2)
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
	if same := frame(recs, 1, 1<<20); len(same) != len(recs) {
		t.Fatal("batch_max_events 1 must publish one message per event")
	}
}
