// Package configtest holds the tests every service's conf package has:
// the shipped config loads with the environment E2E runs set
// (LoadShipped), and a table that starts from a valid config, changes one
// thing and checks that Validate names the problem (Validate), and
// config files that must fail to load, or load (Decode).
package configtest

import (
	"strings"
	"testing"

	"github.com/lurus-switch/lurus-switch/lurus-common/config"
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
			check(t, c.Validate(), tc.Want)
		})
	}
}

// YAML is a config file's text and the text the error of decoding it
// (config.Decode: unknown and renamed keys, Validate) must contain ("":
// it loads).
type YAML struct {
	Name string
	YAML string
	Want string
}

// Decode decodes each case into a fresh T with config.Decode, as a
// subtest.
func Decode[T any](t *testing.T, cases []YAML) {
	t.Helper()
	for _, tc := range cases {
		t.Run(tc.Name, func(t *testing.T) {
			check(t, config.Decode([]byte(tc.YAML), new(T)), tc.Want)
		})
	}
}

// check fails t unless err is nil where want is "" or contains want.
func check(t *testing.T, err error, want string) {
	t.Helper()
	if want == "" && err != nil || want != "" && (err == nil || !strings.Contains(err.Error(), want)) {
		t.Fatalf("err = %v, want %q", err, want)
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
