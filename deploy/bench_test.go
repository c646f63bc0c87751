package deploy

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// BenchmarkImageBinary builds every binary the way the Dockerfile does
// (CGO_ENABLED=0, -trimpath, -ldflags="-s -w") and, as the baseline in the
// same run, with a plain `go build`, and reports the size of the image's
// binary as a ratio to the baseline (image-size/op) plus both sizes in MB.
// Run it with:
//
//	cd deploy && go test -run '^$' -bench BenchmarkImageBinary -benchtime 1x
func BenchmarkImageBinary(b *testing.B) {
	dir := b.TempDir()
	for _, bin := range binaries {
		b.Run(bin.Name, func(b *testing.B) {
			var base, release int64
			for i := 0; i < b.N; i++ {
				base = goBuild(b, bin, filepath.Join(dir, bin.Name+".base"), nil)
				release = goBuild(b, bin, filepath.Join(dir, bin.Name+".release"),
					[]string{"-trimpath", `-ldflags=-s -w`}, "CGO_ENABLED=0")
			}
			b.ReportMetric(float64(release)/float64(base), "image/baseline")
			b.ReportMetric(float64(base)/1e6, "baseline-MB")
			b.ReportMetric(float64(release)/1e6, "image-MB")
		})
	}
}

// goBuild builds bin into out and returns the file size.
func goBuild(b *testing.B, bin binary, out string, flags []string, env ...string) int64 {
	b.Helper()
	args := append([]string{"build", "-C", filepath.Join(root(b), bin.Module), "-o", out}, flags...)
	args = append(args, "./cmd/"+bin.Name)
	cmd := exec.Command("go", args...)
	cmd.Env = append(os.Environ(), env...)
	if msg, err := cmd.CombinedOutput(); err != nil {
		b.Fatalf("go %v: %v\n%s", args, err, msg)
	}
	fi, err := os.Stat(out)
	if err != nil {
		b.Fatal(err)
	}
	return fi.Size()
}
