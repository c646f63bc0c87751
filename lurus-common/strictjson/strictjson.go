// Package strictjson checks that a JSON document means the same thing to
// every reader. The gateway reads a request with one parser and the
// upstream with another; RFC 8259 leaves duplicate keys to the reader
// (gjson takes the first, Python and Go's encoding/json the last), so a
// body with two "model" keys can be authorized and priced as one model
// and run as another. A body that passes Check has no such ambiguity: it
// is one well-formed value, valid UTF-8, and no object in it repeats a
// key, compared after escapes are decoded ("mod\u0065l" is "model").
//
// Check is a single pass and does not allocate for the documents an API
// receives (objects of up to smallObject keys, escape-free keys); it
// replaces a separate validity scan.
package strictjson

import (
	"bytes"
	"errors"
	"fmt"
	"unicode/utf16"
	"unicode/utf8"
)

// MaxDepth bounds nesting, as encoding/json does: deeper documents are
// malformed here (and refused by most upstreams anyway).
const MaxDepth = 10000

// smallObject is how many keys of one object are compared pairwise
// before the object's keys move to a map.
const smallObject = 16

// ErrMalformed is wrapped by every error for a document that is not one
// well-formed JSON value.
var ErrMalformed = errors.New("malformed JSON")

// ErrNotObject is returned by CheckObject for a well-formed value that is
// not an object.
var ErrNotObject = errors.New("JSON value is not an object")

// DuplicateKeyError reports a key that appears twice in one object.
type DuplicateKeyError struct {
	// Key is the decoded key.
	Key string
	// Offset is the byte offset of its second occurrence.
	Offset int
}

func (e *DuplicateKeyError) Error() string {
	return fmt.Sprintf("duplicate key %q at offset %d", e.Key, e.Offset)
}

// Check reports whether b is exactly one JSON value (surrounding
// whitespace allowed) with no duplicate key in any object. The error is
// nil, wraps ErrMalformed, or is a *DuplicateKeyError.
func Check(b []byte) error {
	c := checker{b: b}
	c.skipSpace()
	if err := c.value(0); err != nil {
		return err
	}
	c.skipSpace()
	if c.i != len(b) {
		return c.malformed("data after the value")
	}
	return nil
}

// CheckObject is Check for a document that must be an object (a request
// body); a well-formed value of another type gives ErrNotObject.
func CheckObject(b []byte) error {
	if err := Check(b); err != nil {
		return err
	}
	for _, ch := range b {
		switch ch {
		case ' ', '\t', '\n', '\r':
			continue
		case '{':
			return nil
		}
		return ErrNotObject
	}
	return ErrNotObject
}

// span is one key of an object being checked: its raw bytes between the
// quotes, and whether they hold an escape.
type span struct {
	start, end int32
	escaped    bool
}

type checker struct {
	b []byte
	i int
	// The keys of the objects open on the path to the current value, each
	// object's after its parent's: the first len(small) in small (on the
	// stack), the rest in more.
	small [64]span
	more  []span
	nkeys int
	// scratch decodes escaped keys for comparison.
	scratch [2][]byte
}

func (c *checker) key(j int) span {
	if j < len(c.small) {
		return c.small[j]
	}
	return c.more[j-len(c.small)]
}

func (c *checker) push(k span) {
	if c.nkeys < len(c.small) {
		c.small[c.nkeys] = k
	} else {
		c.more = append(c.more[:c.nkeys-len(c.small)], k)
	}
	c.nkeys++
}

func (c *checker) malformed(what string) error {
	return fmt.Errorf("%w: %s at offset %d", ErrMalformed, what, c.i)
}

func (c *checker) skipSpace() {
	for c.i < len(c.b) {
		switch c.b[c.i] {
		case ' ', '\t', '\n', '\r':
			c.i++
		default:
			return
		}
	}
}

func (c *checker) value(depth int) error {
	if c.i >= len(c.b) {
		return c.malformed("unexpected end")
	}
	switch ch := c.b[c.i]; {
	case ch == '{':
		if depth >= MaxDepth {
			return c.malformed("nesting too deep")
		}
		return c.object(depth + 1)
	case ch == '[':
		if depth >= MaxDepth {
			return c.malformed("nesting too deep")
		}
		return c.array(depth + 1)
	case ch == '"':
		_, err := c.str()
		return err
	case ch == '-' || ch >= '0' && ch <= '9':
		return c.number()
	case ch == 't':
		return c.literal("true")
	case ch == 'f':
		return c.literal("false")
	case ch == 'n':
		return c.literal("null")
	}
	return c.malformed("unexpected character")
}

func (c *checker) literal(word string) error {
	if !bytes.HasPrefix(c.b[c.i:], []byte(word)) {
		return c.malformed("invalid literal")
	}
	c.i += len(word)
	return nil
}

// number checks the RFC 8259 number grammar.
func (c *checker) number() error {
	b, i := c.b, c.i
	if b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && b[i] >= '1' && b[i] <= '9':
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
	default:
		c.i = i
		return c.malformed("invalid number")
	}
	if i < len(b) && b[i] == '.' {
		i++
		d := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == d {
			c.i = i
			return c.malformed("invalid number")
		}
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		d := i
		for i < len(b) && b[i] >= '0' && b[i] <= '9' {
			i++
		}
		if i == d {
			c.i = i
			return c.malformed("invalid number")
		}
	}
	c.i = i
	return nil
}

// str checks the string at c.i and moves past it; escaped reports
// whether it held a backslash.
func (c *checker) str() (escaped bool, err error) {
	b := c.b
	i := c.i + 1
	for {
		// Fast path: plain ASCII.
		for i < len(b) && b[i] >= 0x20 && b[i] < utf8.RuneSelf && b[i] != '"' && b[i] != '\\' {
			i++
		}
		if i >= len(b) {
			c.i = i
			return false, c.malformed("unterminated string")
		}
		switch ch := b[i]; {
		case ch == '"':
			c.i = i + 1
			return escaped, nil
		case ch == '\\':
			escaped = true
			if i+1 >= len(b) {
				c.i = i
				return false, c.malformed("unterminated string")
			}
			switch b[i+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i += 2
			case 'u':
				if i+6 > len(b) || !isHex4(b[i+2:i+6]) {
					c.i = i
					return false, c.malformed("invalid \\u escape")
				}
				i += 6
			default:
				c.i = i
				return false, c.malformed("invalid escape")
			}
		case ch < 0x20:
			c.i = i
			return false, c.malformed("control character in string")
		default:
			r, size := utf8.DecodeRune(b[i:])
			if r == utf8.RuneError && size <= 1 {
				c.i = i
				return false, c.malformed("invalid UTF-8")
			}
			i += size
		}
	}
}

func isHex4(h []byte) bool {
	for _, ch := range h {
		if !(ch >= '0' && ch <= '9' || ch >= 'a' && ch <= 'f' || ch >= 'A' && ch <= 'F') {
			return false
		}
	}
	return true
}

func (c *checker) array(depth int) error {
	c.i++ // '['
	c.skipSpace()
	if c.i < len(c.b) && c.b[c.i] == ']' {
		c.i++
		return nil
	}
	for {
		c.skipSpace()
		if err := c.value(depth); err != nil {
			return err
		}
		c.skipSpace()
		if c.i >= len(c.b) {
			return c.malformed("unterminated array")
		}
		switch c.b[c.i] {
		case ',':
			c.i++
		case ']':
			c.i++
			return nil
		default:
			return c.malformed("expected ',' or ']'")
		}
	}
}

func (c *checker) object(depth int) error {
	c.i++ // '{'
	base := c.nkeys
	defer func() { c.nkeys = base }()
	var seen map[string]struct{} // only for objects with many keys
	c.skipSpace()
	if c.i < len(c.b) && c.b[c.i] == '}' {
		c.i++
		return nil
	}
	for {
		c.skipSpace()
		if c.i >= len(c.b) || c.b[c.i] != '"' {
			return c.malformed("expected a key")
		}
		start := c.i
		escaped, err := c.str()
		if err != nil {
			return err
		}
		k := span{start: int32(start + 1), end: int32(c.i - 1), escaped: escaped}
		if seen != nil {
			name := c.decode(0, k)
			if _, dup := seen[string(name)]; dup {
				return &DuplicateKeyError{Key: string(name), Offset: start}
			}
			seen[string(name)] = struct{}{}
		} else {
			for j := base; j < c.nkeys; j++ {
				if c.equal(c.key(j), k) {
					return &DuplicateKeyError{Key: string(c.decode(0, k)), Offset: start}
				}
			}
			c.push(k)
			if c.nkeys-base > smallObject {
				seen = make(map[string]struct{}, 2*smallObject)
				for j := base; j < c.nkeys; j++ {
					seen[string(c.decode(0, c.key(j)))] = struct{}{}
				}
				c.nkeys = base
			}
		}
		c.skipSpace()
		if c.i >= len(c.b) || c.b[c.i] != ':' {
			return c.malformed("expected ':'")
		}
		c.i++
		c.skipSpace()
		if err := c.value(depth); err != nil {
			return err
		}
		c.skipSpace()
		if c.i >= len(c.b) {
			return c.malformed("unterminated object")
		}
		switch c.b[c.i] {
		case ',':
			c.i++
		case '}':
			c.i++
			return nil
		default:
			return c.malformed("expected ',' or '}'")
		}
	}
}

// equal compares two keys as decoded strings; the raw bytes suffice when
// neither holds an escape.
func (c *checker) equal(a, b span) bool {
	if !a.escaped && !b.escaped {
		return bytes.Equal(c.b[a.start:a.end], c.b[b.start:b.end])
	}
	return bytes.Equal(c.decode(0, a), c.decode(1, b))
}

// decode returns key k with its escapes decoded, in scratch buffer slot
// (valid until the next decode into the same slot); an escape-free key is
// returned as it is.
func (c *checker) decode(slot int, k span) []byte {
	raw := c.b[k.start:k.end]
	if !k.escaped {
		return raw
	}
	c.scratch[slot] = Unescape(c.scratch[slot][:0], raw)
	return c.scratch[slot]
}

// Unescape appends the decoded form of raw, the bytes between the quotes
// of a JSON string that Check accepted, to dst. A lone UTF-16 surrogate
// decodes to U+FFFD, as encoding/json does.
func Unescape(dst, raw []byte) []byte {
	for i := 0; i < len(raw); {
		ch := raw[i]
		if ch != '\\' {
			dst = append(dst, ch)
			i++
			continue
		}
		if i+1 >= len(raw) {
			return append(dst, raw[i:]...)
		}
		switch raw[i+1] {
		case 'b':
			dst = append(dst, '\b')
		case 'f':
			dst = append(dst, '\f')
		case 'n':
			dst = append(dst, '\n')
		case 'r':
			dst = append(dst, '\r')
		case 't':
			dst = append(dst, '\t')
		case 'u':
			r, n := unicodeEscape(raw[i:])
			dst = utf8.AppendRune(dst, r)
			i += n
			continue
		default: // '"', '\\', '/'
			dst = append(dst, raw[i+1])
		}
		i += 2
	}
	return dst
}

// unicodeEscape decodes the \uXXXX escape (and a following low surrogate)
// at the start of s: the rune and the bytes it took.
func unicodeEscape(s []byte) (rune, int) {
	r := hex4(s[2:6])
	if !utf16.IsSurrogate(r) {
		return r, 6
	}
	if len(s) >= 12 && s[6] == '\\' && s[7] == 'u' && isHex4(s[8:12]) {
		if d := utf16.DecodeRune(r, hex4(s[8:12])); d != utf8.RuneError {
			return d, 12
		}
	}
	return utf8.RuneError, 6
}

func hex4(h []byte) rune {
	var r rune
	for _, ch := range h[:4] {
		r <<= 4
		switch {
		case ch >= '0' && ch <= '9':
			r |= rune(ch - '0')
		case ch >= 'a' && ch <= 'f':
			r |= rune(ch - 'a' + 10)
		default:
			r |= rune(ch - 'A' + 10)
		}
	}
	return r
}
