// Package apperrtest holds test helpers for apperr.
package apperrtest

import (
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/lurus-switch/lurus-switch/lurus-common/apperr"
)

// CheckDocumented keeps docs/errors.md (at path) complete: every reason
// registered in this test binary (the common ones and those the packages it
// imports registered) has a row there with the status its kind answers.
func CheckDocumented(t testing.TB, path string) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		cells := strings.Split(line, "|")
		if len(cells) < 4 {
			continue
		}
		name := strings.Trim(strings.TrimSpace(cells[1]), "`")
		rows[name] = strings.TrimSpace(cells[2])
	}
	for r, k := range apperr.Registered() {
		status, ok := rows[string(r)]
		if !ok {
			t.Errorf("reason %s has no row in %s", r, path)
			continue
		}
		if want := strconv.Itoa(k.HTTPStatus()); status != want {
			t.Errorf("%s says %s answers %s; its kind answers %s", path, r, status, want)
		}
	}
}
