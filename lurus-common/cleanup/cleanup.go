// Package cleanup holds what a service's wiring opened, so that one call
// closes it all in reverse order: on a wiring error, or after the service
// stopped.
package cleanup

// Stack holds close functions. The zero value is ready to use.
type Stack struct {
	fns []func()
}

// Push adds fn; Close runs it before everything pushed earlier.
func (s *Stack) Push(fn func()) { s.fns = append(s.fns, fn) }

// Close runs the pushed functions, last first, and forgets them, so a
// second Close does nothing.
func (s *Stack) Close() {
	for i := len(s.fns) - 1; i >= 0; i-- {
		s.fns[i]()
	}
	s.fns = nil
}

// Fail closes s and returns err the way a wiring constructor
// (newApp(cfg) (*App, cleanup, error)) fails: no app, no cleanup.
func Fail[T any](s *Stack, err error) (*T, func(), error) {
	s.Close()
	return nil, nil, err
}
