// Package modelname is the one grammar of model names that enter the
// gateway from a client (an OpenAI or Anthropic body's "model", the model
// segment of a Gemini path) or from an admin (a provider's exact models and
// model_mapping targets), and the one way such a name is put into an
// upstream URL.
//
// The grammar exists because a model name is copied into places that give
// characters a meaning: URL paths ('/', '?', '#', '%', "..") and, through
// globs, allow-lists ('*', '?', '['). A name that could carry such meaning
// lets the gateway price one operation while the upstream runs another, so
// names are refused rather than cleaned:
//
//	name    = segment *( "/" segment )          ; at most MaxLen bytes
//	segment = alnum *( alnum / "-" / "_" / "." / ":" / "@" / "+" )
//	alnum   = "A"-"Z" / "a"-"z" / "0"-"9"
//
// This covers the names providers publish: "gpt-4o-mini-2024-07-18",
// "meta-llama/Llama-3.1-70B" (Hugging Face / Together), "llama3:8b"
// (Ollama tags), "claude-3-5-sonnet@20240620" (Vertex),
// "anthropic.claude-3-5-sonnet-20240620-v1:0" (Bedrock),
// "accounts/fireworks/models/llama-v3p1-70b-instruct" (Fireworks). A
// resource-style "models/gemini-pro" is a valid name too (two segments);
// it cannot be used in a Gemini path, whose model is one segment (see
// Segment).
//
// Refused: the empty name, names over MaxLen, a leading or trailing '/',
// empty, "." and ".." segments (a segment must start with a letter or
// digit), and every other byte: whitespace, control characters, non-ASCII,
// '?', '#', '%', '\\', '*', '[', quotes and so on. Since '*', '?' and '['
// are outside the grammar, a valid name is never a glob.
package modelname

import (
	"errors"
	"fmt"
)

// MaxLen bounds a model name in bytes; real names are well under 100.
const MaxLen = 256

// ErrInvalid is wrapped by every error Check returns, so a caller maps
// any of them to one refusal (INVALID_MODEL_NAME).
var ErrInvalid = errors.New("invalid model name")

// Check returns nil when name follows the grammar, else an error wrapping
// ErrInvalid that says which rule it breaks (the message quotes the name
// safely with %q, so it may go into an error body).
func Check(name string) error {
	if name == "" {
		return fmt.Errorf("%w: empty", ErrInvalid)
	}
	if len(name) > MaxLen {
		return fmt.Errorf("%w: longer than %d bytes", ErrInvalid, MaxLen)
	}
	segStart := true
	for i := 0; i < len(name); i++ {
		c := name[i]
		switch {
		case isAlnum(c):
			segStart = false
		case segStart:
			if c == '/' {
				return fmt.Errorf("%w: %q has an empty path segment", ErrInvalid, name)
			}
			return fmt.Errorf("%w: %q: a segment must start with a letter or digit", ErrInvalid, name)
		case c == '/':
			segStart = true
		case c == '-' || c == '_' || c == '.' || c == ':' || c == '@' || c == '+':
		default:
			return fmt.Errorf("%w: %q: character %q is not allowed", ErrInvalid, name, rune(c))
		}
	}
	if segStart {
		return fmt.Errorf("%w: %q ends with '/'", ErrInvalid, name)
	}
	return nil
}

// Valid reports whether name follows the grammar.
func Valid(name string) bool { return Check(name) == nil }

// CheckSegment is Check for a name that must also be exactly one URL path
// segment with no ':' in it: the model of a Gemini path
// (/v1beta/models/{model}:{action}, where ':' separates the action) and
// an Azure deployment. Gemini model ids and Azure deployment names never
// contain '/' or ':'.
func CheckSegment(name string) error {
	if err := Check(name); err != nil {
		return err
	}
	for i := 0; i < len(name); i++ {
		if name[i] == '/' || name[i] == ':' {
			return fmt.Errorf("%w: %q must be one path segment without '/' or ':'", ErrInvalid, name)
		}
	}
	return nil
}

// PathSegment escapes name for use as exactly one URL path segment:
// every byte but the unreserved ones of RFC 3986 (letters, digits, '-',
// '.', '_', '~') is percent-encoded, '/' and ':' included. Unlike
// url.PathEscape, which leaves ':' and '@' as they are, the result can
// never add a segment, a query, a fragment or a Gemini action separator,
// whatever name holds. Names that follow the grammar cannot be "." or
// "..", the only unreserved strings a path resolver would still act on.
func PathSegment(name string) string {
	n := 0
	for i := 0; i < len(name); i++ {
		if !unreserved(name[i]) {
			n++
		}
	}
	if n == 0 {
		return name
	}
	const hex = "0123456789ABCDEF"
	out := make([]byte, 0, len(name)+2*n)
	for i := 0; i < len(name); i++ {
		c := name[i]
		if unreserved(c) {
			out = append(out, c)
			continue
		}
		out = append(out, '%', hex[c>>4], hex[c&15])
	}
	return string(out)
}

func isAlnum(c byte) bool {
	return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
}

func unreserved(c byte) bool {
	return isAlnum(c) || c == '-' || c == '.' || c == '_' || c == '~'
}
