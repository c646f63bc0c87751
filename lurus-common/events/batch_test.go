package events_test

import (
	"encoding/json"
	"testing"

	"github.com/lurus-switch/lurus-switch/lurus-common/events"
)

func TestSplitBody(t *testing.T) {
	one := []byte(`{"id":"a"}`)
	for _, tc := range []struct {
		name, body string
		want       []string
		err        bool
	}{
		{"one envelope", `{"id":"a"}`, []string{`{"id":"a"}`}, false},
		{"batch", ` [{"id":"a"}, {"id":"b","x":[1,2]}]`, []string{`{"id":"a"}`, `{"id":"b","x":[1,2]}`}, false},
		{"not json is left to the envelope parser", `{not json`, []string{`{not json`}, false},
		{"broken batch", `[{"id":"a"},`, nil, true},
		{"empty batch", `[]`, nil, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := events.SplitBody([]byte(tc.body))
			if (err != nil) != tc.err {
				t.Fatalf("err = %v", err)
			}
			if len(got) != len(tc.want) {
				t.Fatalf("got %d parts, want %d", len(got), len(tc.want))
			}
			for i := range got {
				if string(got[i]) != tc.want[i] {
					t.Fatalf("part %d = %s, want %s", i, got[i], tc.want[i])
				}
			}
		})
	}
	b := events.AppendBatch(nil, one, []byte(`{"id":"b"}`))
	var arr []map[string]string
	if err := json.Unmarshal(b, &arr); err != nil || len(arr) != 2 || arr[1]["id"] != "b" {
		t.Fatalf("AppendBatch = %s (%v)", b, err)
	}
}
