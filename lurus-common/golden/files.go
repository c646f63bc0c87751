package golden

import (
	"os"
	"path/filepath"
	"testing"
)

// Files runs fn as a subtest for every file matching pattern (a
// filepath.Glob pattern, usually under testdata/), named for the file
// without its extension: Caddy's layout of one input file per case and
// one loop for all. No match fails the test, so a misspelled pattern
// cannot pass by testing nothing.
func Files(t *testing.T, pattern string, fn func(t *testing.T, name string, content []byte)) {
	t.Helper()
	files, err := filepath.Glob(pattern)
	if err != nil || len(files) == 0 {
		t.Fatalf("no files match %s", pattern)
	}
	for _, f := range files {
		name := filepath.Base(f)
		name = name[:len(name)-len(filepath.Ext(name))]
		t.Run(name, func(t *testing.T) {
			content, err := os.ReadFile(f)
			if err != nil {
				t.Fatal(err)
			}
			fn(t, name, content)
		})
	}
}
