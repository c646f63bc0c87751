package golden

import (
	"os"
	"path/filepath"
	"testing"
)

// recorder is a testing.TB that records failures instead of stopping.
type recorder struct {
	testing.TB
	failed bool
}

func (r *recorder) Errorf(string, ...any) { r.failed = true }
func (r *recorder) Fatalf(string, ...any) { r.failed = true }
func (r *recorder) Helper()               {}

func TestCompare(t *testing.T) {
	dir := t.TempDir()
	wd, _ := os.Getwd()
	if err := os.Chdir(dir); err != nil {
		t.Fatal(err)
	}
	defer os.Chdir(wd)
	if err := os.MkdirAll("testdata", 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join("testdata", "a.json"), []byte("{\n  \"x\": 1\n}\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r := &recorder{TB: t}
	JSONBytes(r, "a.json", []byte(`{"x":1}`))
	if r.failed {
		t.Fatal("equal documents reported different")
	}
	JSON(r, "a.json", map[string]int{"x": 2})
	if !r.failed {
		t.Fatal("different documents reported equal")
	}
	r = &recorder{TB: t}
	Bytes(r, "missing.golden", []byte("x"))
	if !r.failed {
		t.Fatal("missing golden file not reported")
	}
}
