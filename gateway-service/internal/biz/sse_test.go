package biz

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
)

func TestSSEData(t *testing.T) {
	for _, tc := range []struct {
		name, ev string
		want     string
		none     bool
	}{
		{name: "one line", ev: "event: x\ndata: {\"a\":1}\n\n", want: `{"a":1}`},
		{name: "no space after the colon", ev: "data:{\"a\":1}\n\n", want: `{"a":1}`},
		{name: "only one space removed", ev: "data:  x\n\n", want: " x"},
		{name: "lines joined by LF", ev: "data: {\"a\":\ndata: 1}\n\n", want: "{\"a\":\n1}"},
		{name: "CRLF line ends", ev: "data: a\r\ndata: b\r\n\r\n", want: "a\nb"},
		{name: "CR line ends", ev: "data: a\rdata: b\r\r", want: "a\nb"},
		{name: "comments and other fields skipped", ev: "data: a\n: note\nid: 7\ndata: b\n\n", want: "a\nb"},
		{name: "data without a colon is an empty line", ev: "data: a\ndata\ndata: b\n\n", want: "a\n\nb"},
		{name: "three lines", ev: "data: a\ndata: b\ndata: c\n\n", want: "a\nb\nc"},
		{name: "another field starting with data", ev: "database: x\ndata: y\n\n", want: "y"},
		{name: "empty data", ev: "data:\n\n", want: ""},
		{name: "no data", ev: "event: ping\n\n", none: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := SSEData([]byte(tc.ev))
			if tc.none != (got == nil) || string(got) != tc.want {
				t.Fatalf("SSEData(%q) = %q (nil: %v), want %q (nil: %v)", tc.ev, got, got == nil, tc.want, tc.none)
			}
		})
	}
}

func TestWithSSEData(t *testing.T) {
	got := withSSEData([]byte("event: x\r\ndata: {\"m\":\r\n: c\r\ndata: \"a\"}\r\n\r\n"), []byte("{\"m\":\n\"b\"}"))
	if want := "event: x\ndata: {\"m\":\ndata: \"b\"}\n: c\n\n"; string(got) != want {
		t.Fatalf("withSSEData = %q, want %q", got, want)
	}
	if d := SSEData(got); string(d) != "{\"m\":\n\"b\"}" {
		t.Fatalf("the rewritten event's data is %q", d)
	}
}

// An event whose data spans several lines is metered like the one-line
// event it is equal to: the multi-line transcript bills what the
// one-line one does.
func TestMultiLineEventsAreMetered(t *testing.T) {
	read := func(name string) (g usageGolden) {
		b, err := os.ReadFile(filepath.Join("testdata", "usage", name))
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, &g); err != nil {
			t.Fatal(err)
		}
		return g
	}
	one, multi := read("anthropic_messages_stream.sse.golden"), read("anthropic_messages_stream_multiline.sse.golden")
	if multi.Usage != one.Usage || multi.FromUpstream != one.FromUpstream || multi.DeliveredText != one.DeliveredText || multi.Units != one.Units {
		t.Fatalf("multi-line: %+v %v %q %d units; one-line: %+v %v %q %d units", multi.Usage, multi.FromUpstream, multi.DeliveredText, multi.Units,
			one.Usage, one.FromUpstream, one.DeliveredText, one.Units)
	}
}
