// Package configtest holds the tests every service's conf package has:
// the shipped config loads with the environment E2E runs set
// (LoadShipped), and a table that starts from a valid config, changes one
// thing and checks that Validate names the problem (Validate).
package configtest

import (
	"strings"
	"testing"
)

// Case is one change to a valid config and the text Validate's error must
// contain ("": the changed config is still valid).
type Case[T any] struct {
	Name   string
	Mutate func(*T)
	Want   string
}

// Validate runs each case on a fresh config from valid, as a subtest.
func Validate[T any, P interface {
	*T
	Validate() error
}](t *testing.T, valid func() P, cases []Case[T]) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.Name, func(t *testing.T) {
			c := valid()
			tc.Mutate((*T)(c))
			err := c.Validate()
			if tc.Want == "" && err != nil || tc.Want != "" && (err == nil || !strings.Contains(err.Error(), tc.Want)) {
				t.Fatalf("err = %v, want %q", err, tc.Want)
			}
		})
	}
}

// Defaults returns a config holding only its defaults: the starting point
// for a service whose defaults are valid on their own.
func Defaults[T any, P interface {
	*T
	SetDefaults()
}]() P {
	p := P(new(T))
	p.SetDefaults()
	return p
}
