package telemetry

import (
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/lurus-switch/lurus-switch/lurus-common/testenv"
)

func TestBufferedWriterFlushesOnIntervalAndClose(t *testing.T) {
	var out testenv.LogBuffer
	b := NewBufferedWriter(&out, 1<<16, 20*time.Millisecond)
	if _, err := b.Write([]byte("one\n")); err != nil {
		t.Fatal(err)
	}
	if out.String() != "" {
		t.Fatal("written through at once: nothing was buffered")
	}
	deadline := time.Now().Add(5 * time.Second)
	for out.String() != "one\n" {
		if time.Now().After(deadline) {
			t.Fatal("the interval flush never came")
		}
		time.Sleep(5 * time.Millisecond)
	}
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 100; i++ {
				_, _ = b.Write([]byte("line\n"))
			}
		}()
	}
	wg.Wait()
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	if n := strings.Count(out.String(), "line\n"); n != 800 {
		t.Fatalf("%d of 800 lines after Close", n)
	}
	if err := b.Close(); err != nil { // twice is harmless
		t.Fatal(err)
	}
}
