package apperr

import (
	"os"
	"strconv"
	"strings"
	"testing"
)

// TestEveryReasonIsDocumented keeps docs/errors.md complete: each reason
// of the registry has a row there with the status its kind answers.
func TestEveryReasonIsDocumented(t *testing.T) {
	b, err := os.ReadFile("../../docs/errors.md")
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
	for r, k := range registry {
		status, ok := rows[string(r)]
		if !ok {
			t.Errorf("reason %s has no row in docs/errors.md", r)
			continue
		}
		if want := strconv.Itoa(k.HTTPStatus()); status != want {
			t.Errorf("docs/errors.md says %s answers %s; its kind answers %s", r, status, want)
		}
	}
}
