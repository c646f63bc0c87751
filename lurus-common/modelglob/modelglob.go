// Package modelglob matches model names against patterns such as "gpt-4o*"
// or "claude-?-opus". Unlike path.Match, '*' also crosses '/', since model
// names like "meta-llama/Llama-3-70b" carry slashes. Supported: '*' (any
// run), '?' (one character), and classes "[abc]", "[a-z]", "[!0-9]".
package modelglob

import (
	"errors"
	"fmt"
	"strings"
	"unicode"
)

// ErrMalformed is returned by Validate for a pattern that cannot match as
// written (an unclosed class, an empty pattern, whitespace).
var ErrMalformed = errors.New("malformed model pattern")

// IsGlob reports whether p contains wildcard syntax.
func IsGlob(p string) bool { return strings.ContainsAny(p, "*?[") }

// maxLen bounds a pattern's length.
const maxLen = 256

// refusedLiteral reports whether c may not stand outside a class: ASCII
// whitespace and control characters. Match applies the same rule as
// Validate, so a malformed pattern matches nothing.
func refusedLiteral(c byte) bool { return c < 0x80 && unicode.IsSpace(rune(c)) || c < 0x20 }

// Validate checks that p is a usable pattern.
func Validate(p string) error {
	if p == "" || len(p) > maxLen {
		return fmt.Errorf("%w: %q: empty or longer than %d", ErrMalformed, p, maxLen)
	}
	for i := 0; i < len(p); i++ {
		c := p[i]
		if refusedLiteral(c) {
			return fmt.Errorf("%w: %q: whitespace or control character", ErrMalformed, p)
		}
		switch c {
		case ']':
			return fmt.Errorf("%w: %q: ']' without '['", ErrMalformed, p)
		case '[':
			end, ok := classEnd(p, i)
			if !ok {
				return fmt.Errorf("%w: %q: unclosed '['", ErrMalformed, p)
			}
			i = end
		}
	}
	return nil
}

// classEnd returns the index of the ']' closing the class opened at i.
func classEnd(p string, i int) (int, bool) {
	j := i + 1
	if j < len(p) && p[j] == '!' {
		j++
	}
	if j < len(p) && p[j] == ']' { // "[]" and "[!]" are empty classes: malformed
		return 0, false
	}
	for ; j < len(p); j++ {
		if p[j] == ']' {
			return j, true
		}
	}
	return 0, false
}

// Match reports whether name matches p. A malformed pattern matches
// nothing.
func Match(p, name string) bool {
	// Iterative matcher with single-star backtracking: linear in practice,
	// no recursion, no allocation. A match consumes every byte of p, so
	// the checks on the literal branch see every byte Validate would.
	if p == "" || len(p) > maxLen {
		return false
	}
	px, nx := 0, 0
	starPx, starNx := -1, -1
	for nx < len(name) || px < len(p) {
		if px < len(p) {
			switch c := p[px]; c {
			case '*':
				starPx, starNx = px, nx
				px++
				continue
			case '?':
				if nx < len(name) {
					px++
					nx++
					continue
				}
			case '[':
				end, ok := classEnd(p, px)
				if !ok {
					return false
				}
				if nx < len(name) && matchClass(p[px+1:end], name[nx]) {
					px = end + 1
					nx++
					continue
				}
			default:
				if c == ']' || refusedLiteral(c) {
					return false
				}
				if nx < len(name) && name[nx] == c {
					px++
					nx++
					continue
				}
			}
		}
		if starPx >= 0 && starNx < len(name) {
			starNx++
			px, nx = starPx+1, starNx
			continue
		}
		return false
	}
	return true
}

func matchClass(class string, c byte) bool {
	negate := false
	if class != "" && class[0] == '!' {
		negate, class = true, class[1:]
	}
	in := false
	for i := 0; i < len(class); i++ {
		if i+2 < len(class) && class[i+1] == '-' {
			if class[i] <= c && c <= class[i+2] {
				in = true
			}
			i += 2
			continue
		}
		if class[i] == c {
			in = true
		}
	}
	return in != negate
}

// Specificity ranks patterns so the most specific one wins when several
// match: an exact name beats any glob; among globs, more literal characters
// win.
func Specificity(p string) int {
	if !IsGlob(p) {
		return 1 << 20
	}
	n := 0
	for i := 0; i < len(p); i++ {
		switch p[i] {
		case '*', '?':
		case '[':
			end, ok := classEnd(p, i)
			if ok {
				i = end
			}
		default:
			n++
		}
	}
	return n
}
