package configtest

import (
	"os"
	"testing"
)

func TestLoadShipped(t *testing.T) {
	var gotPath string
	got := LoadShipped(t, func(path string) (string, error) {
		gotPath = path
		return os.Getenv("CONFIGTEST_SHIPPED"), nil
	}, map[string]string{"CONFIGTEST_SHIPPED": "set"})
	if gotPath != ShippedPath || got != "set" {
		t.Fatalf("load(%q) = %q, want load(%q) with the environment set", gotPath, got, ShippedPath)
	}
}
