// Package jsonstr appends Go strings to a byte slice as JSON string
// literals, for the hot paths that write JSON by hand (the publisher's
// envelopes, the mock upstream's replies) and must not allocate.
//
// encoding/json's string encoding is not reachable without a Marshal call
// (which allocates), and encoding/json/jsontext.AppendQuote is behind
// GOEXPERIMENT=jsonv2 in this Go release; so this is the one hand-written
// copy, held to encoding/json's exact output by FuzzAppend.
package jsonstr

import "unicode/utf8"

const hexDigits = "0123456789abcdef"

// Append appends s to b as a JSON string literal and returns the extended
// buffer. The bytes are exactly those of an encoding/json Encoder with
// SetEscapeHTML(false): '"' and '\\' escaped, control characters as \b, \f,
// \n, \r, \t or \u00XX, U+2028 and U+2029 as \u2028 and \u2029 (so the
// output is also valid JavaScript), invalid UTF-8 as \ufffd, everything
// else as it is.
func Append(b []byte, s string) []byte {
	b = append(b, '"')
	start := 0
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			if c >= 0x20 && c != '"' && c != '\\' {
				i++
				continue
			}
			b = append(b, s[start:i]...)
			switch c {
			case '"', '\\':
				b = append(b, '\\', c)
			case '\b':
				b = append(b, '\\', 'b')
			case '\f':
				b = append(b, '\\', 'f')
			case '\n':
				b = append(b, '\\', 'n')
			case '\r':
				b = append(b, '\\', 'r')
			case '\t':
				b = append(b, '\\', 't')
			default:
				b = append(b, '\\', 'u', '0', '0', hexDigits[c>>4], hexDigits[c&0xf])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			b = append(b, s[start:i]...)
			b = append(b, `\ufffd`...)
			i++
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			b = append(b, s[start:i]...)
			b = append(b, '\\', 'u', '2', '0', '2', hexDigits[r&0xf])
			i += size
			start = i
			continue
		}
		i += size
	}
	b = append(b, s[start:]...)
	return append(b, '"')
}
