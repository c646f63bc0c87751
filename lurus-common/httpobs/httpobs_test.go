package httpobs

import (
	"net/http"
	"net/http/httptest"
	"testing"
)

func TestRecorder(t *testing.T) {
	rec := httptest.NewRecorder()
	r := NewRecorder(rec)
	if r.Status() != 0 {
		t.Fatal("status before writing")
	}
	_, _ = r.Write([]byte("hello"))
	r.WriteHeader(http.StatusTeapot) // too late: the implicit 200 stands
	r.Flush()
	if r.Status() != http.StatusOK || r.Bytes() != 5 || !rec.Flushed {
		t.Fatalf("status %d bytes %d flushed %v", r.Status(), r.Bytes(), rec.Flushed)
	}
	if http.NewResponseController(r).Flush() != nil {
		t.Fatal("ResponseController cannot reach the writer")
	}
	if _, _, err := r.Hijack(); err != http.ErrNotSupported {
		t.Fatalf("hijack on a recorder: %v", err)
	}
}

func TestRecorderHijack(t *testing.T) {
	done := make(chan int, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		r := NewRecorder(w)
		c, _, err := r.Hijack()
		if err != nil {
			done <- -1
			return
		}
		_, _ = c.Write([]byte("HTTP/1.1 101 Switching Protocols\r\n\r\n"))
		c.Close()
		done <- r.Status()
	}))
	defer srv.Close()
	resp, err := http.Get(srv.URL)
	if err == nil {
		resp.Body.Close()
	}
	if got := <-done; got != http.StatusSwitchingProtocols {
		t.Fatalf("status after hijack = %d", got)
	}
}
