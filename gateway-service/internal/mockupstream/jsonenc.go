package mockupstream

import "strconv"

// The replies are rendered by appending literal JSON and escaped strings
// (jsonstr.Append) to a byte slice: no reflection and, with a reused
// buffer, no allocation per event.

// appendInt appends n in decimal.
func appendInt(b []byte, n int) []byte { return strconv.AppendInt(b, int64(n), 10) }
