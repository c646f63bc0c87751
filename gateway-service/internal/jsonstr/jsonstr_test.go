package jsonstr

import (
	"bytes"
	"encoding/json"
	"testing"
)

// reference is encoding/json's encoding of s, without HTML escaping and
// without the Encoder's trailing newline.
func reference(t testing.TB, s string) []byte {
	t.Helper()
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(s); err != nil {
		t.Fatal(err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

var cases = []string{
	"", "plain", `quote " and \ backslash`, "ctl \x00\x01\x07\x1f\b\f\t\n\r\x7f", "ünïcødé ✓ 😀",
	"bad \xff utf8", "cut \xe2\x80", "surrogate \xed\xa0\x80", "line\u2028sep\u2029", "<html>&'",
}

func TestAppendMatchesEncodingJSON(t *testing.T) {
	for _, s := range cases {
		if got, want := Append(nil, s), reference(t, s); !bytes.Equal(got, want) {
			t.Errorf("Append(%q) = %s, encoding/json gives %s", s, got, want)
		}
	}
}

func TestAppendKeepsPrefix(t *testing.T) {
	if got := string(Append([]byte(`{"a":`), "x\ny")); got != `{"a":"x\ny"` {
		t.Fatalf("got %s", got)
	}
}

func TestAppendDoesNotAllocate(t *testing.T) {
	buf := make([]byte, 0, 256)
	if n := testing.AllocsPerRun(100, func() { buf = Append(buf[:0], "ünï \"x\"\n\u2028\xff") }); n != 0 {
		t.Fatalf("%v allocations per call", n)
	}
}

// FuzzAppend holds Append to encoding/json's bytes for any string.
func FuzzAppend(f *testing.F) {
	for _, s := range cases {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		if got, want := Append(nil, s), reference(t, s); !bytes.Equal(got, want) {
			t.Fatalf("Append(%q) = %s, encoding/json gives %s", s, got, want)
		}
	})
}
