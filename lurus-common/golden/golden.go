// Package golden compares protocol payloads and transcripts in tests with
// files in the test's testdata/ directory; `go test -update` rewrites them.
// Import it only from tests: it registers the -update flag.
package golden

import (
	"bytes"
	"encoding/json"
	"flag"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

// Update reports whether the run rewrites golden files.
func Update() bool { return *update }

// Bytes compares got with testdata/name (or writes it with -update).
func Bytes(t testing.TB, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (run go test -update to accept):\n--- got\n%s\n--- want\n%s", path, got, want)
	}
}

// JSON encodes v as indented JSON and compares it with testdata/name.
func JSON(t testing.TB, name string, v any) {
	t.Helper()
	got, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		t.Fatal(err)
	}
	Bytes(t, name, append(got, '\n'))
}

// JSONBytes re-indents the JSON document raw and compares it with
// testdata/name, so a golden file stays readable whatever the encoder's
// spacing.
func JSONBytes(t testing.TB, name string, raw []byte) {
	t.Helper()
	var v any
	if err := json.Unmarshal(raw, &v); err != nil {
		t.Fatalf("%s: not JSON: %v: %s", name, err, raw)
	}
	JSON(t, name, v)
}
