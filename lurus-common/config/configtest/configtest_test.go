package configtest

import (
	"errors"
	"testing"
)

type limits struct{ Max int }

func (l *limits) Validate() error {
	if l.Max < 1 {
		return errors.New("limits.max must be positive")
	}
	return nil
}

func TestValidate(t *testing.T) {
	Validate(t, func() *limits { return &limits{Max: 3} }, []Case[limits]{
		{"valid", func(*limits) {}, ""},
		{"zero", func(l *limits) { l.Max = 0 }, "limits.max"},
	})
}

func TestDecode(t *testing.T) {
	Decode[limits](t, []YAML{
		{"valid", "max: 2\n", ""},
		{"invalid", "max: 0\n", "limits.max"},
		{"unknown key", "maks: 2\n", "field maks not found"},
	})
}
