package biz

import (
	"testing"

	"github.com/lurus-switch/lurus-switch/lurus-common/apperr/apperrtest"
)

// TestReasonsDocumented: log-service's own reasons (INVALID_LOG_RECORD)
// have their row in docs/errors.md too.
func TestReasonsDocumented(t *testing.T) {
	apperrtest.CheckDocumented(t, "../../../docs/errors.md")
}
