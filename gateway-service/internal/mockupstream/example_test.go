package mockupstream_test

import (
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"

	"github.com/lurus-switch/lurus-switch/gateway-service/internal/mockupstream"
)

// A gateway test runs the mock in-process, flips a scenario at run time and
// checks what reached upstream.
func Example() {
	mock, _ := mockupstream.New(mockupstream.Options{})
	ts := httptest.NewServer(mock)
	defer ts.Close()

	// The provider is down...
	_ = mock.SetScenario("provider-a", mockupstream.Settings{Status: new(503)})
	ask := func() (int, string) {
		req, _ := http.NewRequest(http.MethodPost, ts.URL+"/v1/chat/completions",
			strings.NewReader(`{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}`))
		req.Header.Set("Authorization", "Bearer sk-upstream")
		req.Header.Set(mockupstream.HeaderScenario, "provider-a")
		req.Header.Set(mockupstream.HeaderChunks, "3")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(body)
	}
	status, _ := ask()
	fmt.Println(status)

	// ...and recovers.
	mock.DeleteScenario("provider-a")
	status, body := ask()
	fmt.Println(status, strings.Contains(body, `"content":"`+mockupstream.ReplyText(3)+`"`))

	last := mock.Requests(1)[0]
	fmt.Println(last.Path, last.Headers.Get("Authorization"), last.Model)
	// Output:
	// 503
	// 200 true
	// /v1/chat/completions Bearer sk-upstream gpt-4o
}
