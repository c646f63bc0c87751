package apperr_test

import (
	"testing"

	"github.com/lurus-switch/lurus-switch/lurus-common/apperr/apperrtest"
)

// TestEveryReasonIsDocumented keeps docs/errors.md complete for the
// common reasons (each service with reasons of its own checks those).
func TestEveryReasonIsDocumented(t *testing.T) {
	apperrtest.CheckDocumented(t, "../../docs/errors.md")
}
