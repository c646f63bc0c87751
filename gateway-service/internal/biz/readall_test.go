package biz

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"testing/iotest"
)

func TestReadAll(t *testing.T) {
	boom := errors.New("boom")
	for _, tc := range []struct {
		name    string
		r       io.Reader
		limit   int
		want    string
		wantErr error
	}{
		{"empty", strings.NewReader(""), 10, "", nil},
		{"under the limit", strings.NewReader("hello"), 10, "hello", nil},
		{"exactly the limit", strings.NewReader("0123456789"), 10, "0123456789", nil},
		{"one byte over", strings.NewReader("0123456789x"), 10, "", errResponseTooLarge},
		{"one byte at a time", iotest.OneByteReader(strings.NewReader("abcdef")), 6, "abcdef", nil},
		{"read error keeps what was read", io.MultiReader(strings.NewReader("part"), iotest.ErrReader(boom)), 10, "part", boom},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := readAll(nil, tc.r, tc.limit)
			if !errors.Is(err, tc.wantErr) || string(got) != tc.want {
				t.Fatalf("readAll = %q, %v; want %q, %v", got, err, tc.want, tc.wantErr)
			}
		})
	}
}

// A pooled buffer with room is filled in place; one without grows into a
// new slice that holds the whole answer.
func TestReadAllUsesTheBuffer(t *testing.T) {
	pool := make([]byte, 0, 4096)
	got, err := readAll(pool, strings.NewReader("answer"), 1<<20)
	if err != nil || string(got) != "answer" || &got[:1][0] != &pool[:1][0] {
		t.Fatalf("readAll = %q, %v; filled in place: %v", got, err, &got[:1][0] == &pool[:1][0])
	}
	big := bytes.Repeat([]byte("x"), 10000)
	got, err = readAll(pool, bytes.NewReader(big), 1<<20)
	if err != nil || !bytes.Equal(got, big) {
		t.Fatalf("grown read: %d bytes, %v", len(got), err)
	}
}
