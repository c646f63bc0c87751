package configtest

import "testing"

// ShippedPath is the shipped config file (configs/config.yaml) as a test
// in a service's internal/conf package sees it.
const ShippedPath = "../../configs/config.yaml"

// LoadShipped sets each variable of env for the rest of the test (as
// t.Setenv does) and loads ShippedPath with load, the service's own Load,
// failing the test when it does not load: the start of every service's
// "the shipped config loads, and the environment overrides what E2E runs
// need" test.
func LoadShipped[C any](t testing.TB, load func(path string) (C, error), env map[string]string) C {
	t.Helper()
	for k, v := range env {
		t.Setenv(k, v)
	}
	c, err := load(ShippedPath)
	if err != nil {
		t.Fatal(err)
	}
	return c
}
