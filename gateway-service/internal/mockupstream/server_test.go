package mockupstream

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/tidwall/gjson"
	"time"
)

// target is one operation in one format, as the gateway would call it.
type target struct {
	name   string
	format apiFormat
	path   string
	key    http.Header
	body   string // a non-streaming request
	stream string // the same request, streaming ("" when the path streams by itself)
	spath  string // the streaming path, when it differs
}

var targets = []target{
	{
		name: "openai", format: formatOpenAI, path: "/v1/chat/completions", key: hdr("Authorization", "Bearer k"),
		body:   `{"model":"gpt-4o","messages":[{"role":"user","content":"a b"}]}`,
		stream: `{"model":"gpt-4o","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"a b"}]}`,
	},
	{
		name: "openai-completions", format: formatOpenAI, path: "/v1/completions", key: hdr("Authorization", "Bearer k"),
		body:   `{"model":"m","prompt":"a b"}`,
		stream: `{"model":"m","prompt":"a b","stream":true,"stream_options":{"include_usage":true}}`,
	},
	{
		name: "responses", format: formatOpenAI, path: "/v1/responses", key: hdr("Authorization", "Bearer k"),
		body:   `{"model":"gpt-4o","input":"a b"}`,
		stream: `{"model":"gpt-4o","input":"a b","stream":true}`,
	},
	{
		name: "azure", format: formatOpenAI, path: "/openai/deployments/dep/chat/completions?api-version=2024-10-21", key: hdr("Api-Key", "k"),
		body:   `{"messages":[{"role":"user","content":"a b"}]}`,
		stream: `{"stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"a b"}]}`,
	},
	{
		name: "anthropic", format: formatAnthropic, path: "/v1/messages", key: hdr("X-Api-Key", "k"),
		body:   `{"model":"claude","max_tokens":9,"messages":[{"role":"user","content":"a b"}]}`,
		stream: `{"model":"claude","max_tokens":9,"stream":true,"messages":[{"role":"user","content":"a b"}]}`,
	},
	{
		name: "gemini-sse", format: formatGemini, path: "/v1beta/models/g:generateContent", key: hdr("X-Goog-Api-Key", "k"),
		body:  `{"contents":[{"role":"user","parts":[{"text":"a b"}]}]}`,
		spath: "/v1beta/models/g:streamGenerateContent?alt=sse", stream: `{"contents":[{"role":"user","parts":[{"text":"a b"}]}]}`,
	},
	{
		name: "gemini-array", format: formatGemini, path: "/v1beta/models/g:generateContent?key=k",
		body:  `{"contents":[{"role":"user","parts":[{"text":"a b"}]}]}`,
		spath: "/v1beta/models/g:streamGenerateContent?key=k", stream: `{"contents":[{"role":"user","parts":[{"text":"a b"}]}]}`,
	},
}

func (tg target) streamPath() string {
	if tg.spath != "" {
		return tg.spath
	}
	return tg.path
}

// withHeaders returns the target's key header plus kv.
func (tg target) withHeaders(kv ...string) http.Header {
	h := hdr(kv...)
	for k, vs := range tg.key {
		h[k] = vs
	}
	return h
}

// checkErrorBody asserts the error body is in the format's own shape.
func checkErrorBody(t *testing.T, f apiFormat, status int, body []byte) {
	t.Helper()
	var v struct {
		Type  string `json:"type"`
		Error struct {
			Message string `json:"message"`
			Type    string `json:"type"`
			Code    any    `json:"code"`
			Status  string `json:"status"`
		} `json:"error"`
	}
	if err := json.Unmarshal(body, &v); err != nil {
		t.Fatalf("error body %q: %v", body, err)
	}
	e := v.Error
	switch f {
	case formatOpenAI:
		if e.Message == "" || e.Type == "" || v.Type != "" {
			t.Errorf("OpenAI error %s", body)
		}
	case formatAnthropic:
		if v.Type != "error" || e.Type == "" || e.Message == "" {
			t.Errorf("Anthropic error %s", body)
		}
	case formatGemini:
		if code, _ := e.Code.(float64); int(code) != status || e.Status == "" || e.Message == "" {
			t.Errorf("Gemini error %s", body)
		}
	}
}

func TestErrorsInEachFormat(t *testing.T) {
	_, ts := newMock(t, Options{})
	for _, tg := range targets {
		for _, status := range []int{401, 429, 500, 503} {
			t.Run(tg.name+"/"+strconv.Itoa(status), func(t *testing.T) {
				resp, body, err := call(t, nil, http.MethodPost, ts.URL+tg.path, tg.withHeaders(HeaderStatus, strconv.Itoa(status), "X-Request-Id", "rid-1"), tg.body)
				if err != nil {
					t.Fatal(err)
				}
				if resp.StatusCode != status || resp.Header.Get("X-Request-Id") != "rid-1" {
					t.Fatalf("status %d, request id %q", resp.StatusCode, resp.Header.Get("X-Request-Id"))
				}
				if ra, want := resp.Header.Get("Retry-After"), map[bool]string{true: MockRetryAfter}[status == 429]; ra != want {
					t.Errorf("Retry-After %q, want %q", ra, want)
				}
				checkErrorBody(t, tg.format, status, body)
			})
		}
	}
}

func TestAuth(t *testing.T) {
	_, ts := newMock(t, Options{})
	for _, tg := range targets {
		t.Run(tg.name, func(t *testing.T) {
			path := strings.Replace(tg.path, "key=k", "key=other", 1)
			noKey := strings.Replace(tg.path, "?key=k", "", 1)
			resp, body, err := call(t, nil, http.MethodPost, ts.URL+noKey, nil, tg.body)
			if err != nil || resp.StatusCode != http.StatusUnauthorized {
				t.Fatalf("without key: %v %v", resp, err)
			}
			checkErrorBody(t, tg.format, 401, body)

			leakHeader := "Authorization"
			if tg.key.Get("Authorization") != "" {
				leakHeader = "X-Api-Key"
			}
			for _, tc := range []struct {
				name   string
				path   string
				header http.Header
				want   int
			}{
				{"right", tg.path, tg.withHeaders(HeaderRequireKey, "k"), 200},
				{"wrong", path, tg.withHeaders(HeaderRequireKey, "k2"), 401},
				{"leaked client key", tg.path, tg.withHeaders(HeaderRequireKey, "k", leakHeader, "sk-lurus-client"), 401},
			} {
				h := tc.header
				if tc.name == "wrong" && tg.key == nil {
					h = hdr(HeaderRequireKey, "k")
				}
				resp, _, err := call(t, nil, http.MethodPost, ts.URL+tc.path, h, tg.body)
				if err != nil || resp.StatusCode != tc.want {
					t.Errorf("%s: status %v, want %d (%v)", tc.name, resp.StatusCode, tc.want, err)
				}
			}
		})
	}

	// The command-line default.
	_, ts2 := newMock(t, Options{Defaults: Settings{RequireKey: ptr("only")}})
	if resp, _, _ := call(t, nil, http.MethodPost, ts2.URL+"/v1/chat/completions", hdr("Authorization", "Bearer k"), targets[0].body); resp.StatusCode != 401 {
		t.Errorf("default require-key: status %d", resp.StatusCode)
	}
	if resp, _, _ := call(t, nil, http.MethodPost, ts2.URL+"/v1/chat/completions", hdr("Authorization", "Bearer only"), targets[0].body); resp.StatusCode != 200 {
		t.Errorf("default require-key: status %d", resp.StatusCode)
	}
}

func ptr[T any](v T) *T { return &v }

var chunkPattern = regexp.MustCompile(`tok[0-9]+ `)

// replyChunks returns every "tok<i> " of a JSON or streamed body, in order.
func replyChunks(body []byte) []string {
	var out []string
	for _, m := range chunkPattern.FindAll(body, -1) {
		out = append(out, string(m))
	}
	return out
}

func TestStreamsFlushEveryChunk(t *testing.T) {
	_, ts := newMock(t, Options{})
	const chunks, gap = 4, 50 * time.Millisecond
	for _, tg := range targets {
		t.Run(tg.name, func(t *testing.T) {
			t.Parallel()
			req, _ := http.NewRequest(http.MethodPost, ts.URL+tg.streamPath(), strings.NewReader(tg.stream))
			req.Header = tg.withHeaders(HeaderChunks, strconv.Itoa(chunks), HeaderGapMs, strconv.Itoa(int(gap/time.Millisecond)))
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if ct := resp.Header.Get("Content-Type"); !strings.Contains(ct, "event-stream") && !strings.Contains(ct, "json") {
				t.Errorf("content type %q", ct)
			}
			// Chunk i is sent at i*gap; unless it was flushed at once, it
			// would reach the client only with the end of the stream.
			var got []byte
			buf := make([]byte, 4096)
			seen := 0
			start := time.Now()
			for seen < chunks {
				n, err := resp.Body.Read(buf)
				got = append(got, buf[:n]...)
				for seen < chunks && strings.Contains(string(got), ChunkText(seen)) {
					if elapsed := time.Since(start); seen < chunks-1 && elapsed >= time.Duration(seen+1)*gap {
						t.Errorf("chunk %d arrived after %v: not flushed", seen, elapsed)
					}
					seen++
				}
				if err != nil && (err != io.EOF || seen < chunks) {
					t.Fatalf("after %d chunks: %v", seen, err)
				}
			}
			if _, err := io.ReadAll(resp.Body); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestCutAfter(t *testing.T) {
	srv, ts := newMock(t, Options{})
	for _, tg := range targets {
		for _, cut := range []int{0, 2, 9} {
			t.Run(tg.name+"/"+strconv.Itoa(cut), func(t *testing.T) {
				resp, body, err := call(t, nil, http.MethodPost, ts.URL+tg.streamPath(), tg.withHeaders(HeaderChunks, "4", HeaderCutAfter, strconv.Itoa(cut)), tg.stream)
				if resp == nil || resp.StatusCode != 200 {
					t.Fatalf("response %v, %v", resp, err)
				}
				if !errors.Is(err, io.ErrUnexpectedEOF) {
					t.Fatalf("read error = %v, want unexpected EOF", err)
				}
				want := min(cut, 4)
				chunks := replyChunks(body)
				if len(chunks) != want {
					t.Errorf("got chunks %q, want %d", chunks, want)
				}
				bad := []string{"[DONE]", "message_delta", "response.completed", "finishReason", "candidatesTokenCount"}
				if tg.format == formatOpenAI {
					bad = append(bad, `"usage":{`)
				}
				for _, bad := range bad {
					if strings.Contains(string(body), bad) {
						t.Errorf("cut stream has %q", bad)
					}
				}
			})
		}
	}
	st := srv.Stats()
	if st.Cut != int64(3*len(targets)) {
		t.Errorf("stats cut = %d", st.Cut)
	}
	if last := srv.Requests(1)[0]; !last.Cut || last.Status != 200 {
		t.Errorf("recorded %+v", last)
	}
}

func TestHang(t *testing.T) {
	srv, ts := newMock(t, Options{})
	client := &http.Client{Timeout: 150 * time.Millisecond}
	tg := targets[0]

	start := time.Now()
	resp, _, err := call(t, client, http.MethodPost, ts.URL+tg.path, tg.withHeaders(HeaderHang, HangFirstByte), tg.body)
	if err == nil || resp != nil || time.Since(start) < 150*time.Millisecond {
		t.Fatalf("first_byte hang answered: %v %v", resp, err)
	}

	for _, body := range []string{tg.body, tg.stream} {
		resp, got, err := call(t, client, http.MethodPost, ts.URL+tg.path, tg.withHeaders(HeaderHang, HangMid), body)
		if resp == nil || resp.StatusCode != 200 || err == nil {
			t.Fatalf("mid hang: %v %v", resp, err)
		}
		if strings.Contains(body, "stream") && len(replyChunks(got)) != 1 {
			t.Errorf("mid hang sent %q", got)
		}
	}

	// The handlers end once the clients are gone.
	deadline := time.Now().Add(2 * time.Second)
	for srv.Stats().InFlight != 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if st := srv.Stats(); st.InFlight != 0 || st.ByPath["/v1/chat/completions"]["0"] != 1 || st.ByPath["/v1/chat/completions"]["200"] != 2 {
		t.Errorf("stats = %+v", st)
	}
}

func TestLatencyAndGap(t *testing.T) {
	_, ts := newMock(t, Options{})
	tg := targets[0]
	start := time.Now()
	if resp, _, err := call(t, nil, http.MethodPost, ts.URL+tg.path, tg.withHeaders(HeaderLatencyMs, "60"), tg.body); err != nil || resp.StatusCode != 200 {
		t.Fatal(resp, err)
	}
	if d := time.Since(start); d < 60*time.Millisecond {
		t.Errorf("latency: answered in %v", d)
	}
	start = time.Now()
	if resp, _, err := call(t, nil, http.MethodPost, ts.URL+tg.path, tg.withHeaders(HeaderGapMs, "20", HeaderChunks, "4"), tg.stream); err != nil || resp.StatusCode != 200 {
		t.Fatal(resp, err)
	}
	if d := time.Since(start); d < 60*time.Millisecond {
		t.Errorf("gap: 4 chunks in %v", d)
	}
}

func TestFailRate(t *testing.T) {
	_, ts := newMock(t, Options{})
	tg := targets[0]
	for _, tc := range []struct {
		rate string
		want int
	}{{"1", 500}, {"0", 200}} {
		for range 5 {
			resp, _, err := call(t, nil, http.MethodPost, ts.URL+tg.path, tg.withHeaders(HeaderFailRate, tc.rate), tg.body)
			if err != nil || resp.StatusCode != tc.want {
				t.Fatalf("fail rate %s: %v %v", tc.rate, resp, err)
			}
		}
	}
}

func TestNoUsageAndFixedUsage(t *testing.T) {
	_, ts := newMock(t, Options{})
	for _, tg := range targets {
		for _, streaming := range []bool{false, true} {
			path, body := tg.path, tg.body
			if streaming {
				path, body = tg.streamPath(), tg.stream
			}
			t.Run(tg.name+"/stream="+strconv.FormatBool(streaming), func(t *testing.T) {
				_, got, err := call(t, nil, http.MethodPost, ts.URL+path, tg.withHeaders(HeaderNoUsage, "1"), body)
				if err != nil {
					t.Fatal(err)
				}
				for _, bad := range []string{`"usage":{`, `"usageMetadata"`, `"prompt_tokens"`, `"input_tokens"`, `"output_tokens"`, `TokenCount"`} {
					if strings.Contains(string(got), bad) {
						t.Errorf("no-usage reply has %s", bad)
					}
				}
				_, got, err = call(t, nil, http.MethodPost, ts.URL+path, tg.withHeaders(HeaderUsage, "prompt=12,completion=34,cached=5"), body)
				if err != nil {
					t.Fatal(err)
				}
				want := map[apiFormat][]string{
					formatOpenAI:    {`_tokens":12`, `_tokens":34`, `"cached_tokens":5`},
					formatAnthropic: {`"input_tokens":12`, `"output_tokens":34`, `"cache_read_input_tokens":5`},
					formatGemini:    {`"promptTokenCount":12`, `"candidatesTokenCount":34`, `"cachedContentTokenCount":5`},
				}[tg.format]
				for _, w := range want {
					if !strings.Contains(string(got), w) {
						t.Errorf("fixed usage: reply lacks %s", w)
					}
				}
			})
		}
	}
}

func TestControlLayers(t *testing.T) {
	srv, ts := newMock(t, Options{Defaults: Settings{Chunks: ptr(2)}})
	tg := targets[0]
	count := func(h http.Header) int {
		t.Helper()
		resp, body, err := call(t, nil, http.MethodPost, ts.URL+tg.path, h, tg.body)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("%v %v %s", resp, err, body)
		}
		return len(replyChunks(body))
	}
	if n := count(tg.withHeaders()); n != 2 {
		t.Errorf("defaults: %d chunks", n)
	}
	if err := srv.SetScenario("three", Settings{Chunks: ptr(3)}); err != nil {
		t.Fatal(err)
	}
	if n := count(tg.withHeaders(HeaderScenario, "three")); n != 3 {
		t.Errorf("scenario over defaults: %d chunks", n)
	}
	if n := count(tg.withHeaders(HeaderScenario, "three", HeaderChunks, "4")); n != 4 {
		t.Errorf("header over scenario: %d chunks", n)
	}
	if n := count(tg.withHeaders(HeaderScenario, "unknown")); n != 2 {
		t.Errorf("unknown scenario: %d chunks", n)
	}
}

func TestScenarioAPI(t *testing.T) {
	_, ts := newMock(t, Options{})
	tg := targets[4] // anthropic
	put := func(name, body string) int {
		resp, _, err := call(t, nil, http.MethodPut, ts.URL+"/__scenarios/"+name, nil, body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode
	}
	status := func() int {
		resp, _, err := call(t, nil, http.MethodPost, ts.URL+tg.path, tg.withHeaders(HeaderScenario, "flaky"), tg.body)
		if err != nil {
			t.Fatal(err)
		}
		return resp.StatusCode
	}

	if got := put("flaky", `{"status":503,"latency_ms":1,"usage":"prompt=1"}`); got != 204 {
		t.Fatalf("PUT: %d", got)
	}
	if got := status(); got != 503 {
		t.Errorf("failing scenario: %d", got)
	}
	resp, body, _ := call(t, nil, http.MethodGet, ts.URL+"/__scenarios/flaky", nil, "")
	if resp.StatusCode != 200 || !strings.Contains(string(body), `"status":503`) || !strings.Contains(string(body), `"prompt":1`) {
		t.Errorf("GET: %d %s", resp.StatusCode, body)
	}
	// Recovery without touching the gateway: the provider turns healthy.
	if got := put("flaky", `{"status":200}`); got != 204 {
		t.Fatalf("PUT: %d", got)
	}
	if got := status(); got != 200 {
		t.Errorf("healed scenario: %d", got)
	}
	put("flaky", `{"status":500}`)
	if resp, _, _ := call(t, nil, http.MethodDelete, ts.URL+"/__scenarios/flaky", nil, ""); resp.StatusCode != 204 {
		t.Errorf("DELETE: %d", resp.StatusCode)
	}
	if got := status(); got != 200 {
		t.Errorf("deleted scenario: %d", got)
	}

	for _, bad := range []struct{ name, body string }{
		{"x", `{"stauts":500}`},
		{"x", `{"chunks":-1}`},
		{"x", `{"hang":"sometimes"}`},
		{"x", `{"usage":"prompt=x"}`},
		{"x", `not json`},
		{"bad%20name", `{}`},
	} {
		if got := put(bad.name, bad.body); got != 400 {
			t.Errorf("PUT %s %s: %d, want 400", bad.name, bad.body, got)
		}
	}
	resp, body, _ = call(t, nil, http.MethodGet, ts.URL+"/__scenarios/nope", nil, "")
	if resp.StatusCode != 404 || !strings.Contains(string(body), `"reason":"SCENARIO_NOT_FOUND"`) {
		t.Errorf("GET unknown: %d %s", resp.StatusCode, body)
	}
}

func TestBadControlHeader(t *testing.T) {
	_, ts := newMock(t, Options{})
	for _, tg := range targets {
		resp, body, err := call(t, nil, http.MethodPost, ts.URL+tg.path, tg.withHeaders(HeaderChunks, "many"), tg.body)
		if err != nil || resp.StatusCode != 400 {
			t.Fatalf("%s: %v %v", tg.name, resp, err)
		}
		checkErrorBody(t, tg.format, 400, body)
	}
}

func TestRequestLogAndStats(t *testing.T) {
	srv, ts := newMock(t, Options{RequestLogCapacity: 3})
	tg := targets[0]
	var lastBody string
	for i := range 5 {
		body := `{"model":"m` + strconv.Itoa(i) + `","messages":[]}`
		lastBody = body
		call(t, nil, http.MethodPost, ts.URL+tg.path+"?n="+strconv.Itoa(i), tg.withHeaders("X-Trace", strconv.Itoa(i)), body)
	}
	call(t, nil, http.MethodPost, ts.URL+tg.path, nil, `{}`) // 401
	call(t, nil, http.MethodGet, ts.URL+"/health", nil, "")  // not recorded

	resp, body, err := call(t, nil, http.MethodGet, ts.URL+"/__requests?limit=2", nil, "")
	if err != nil || resp.StatusCode != 200 {
		t.Fatal(resp, err)
	}
	var got struct{ Items []RecordedRequest }
	if err := json.Unmarshal(body, &got); err != nil {
		t.Fatal(err)
	}
	if len(got.Items) != 2 {
		t.Fatalf("items = %+v", got.Items)
	}
	r := got.Items[0]
	if r.Seq != 5 || r.Model != "m4" || r.URI != "/v1/chat/completions?n=4" || r.Path != "/v1/chat/completions" ||
		r.Headers.Get("X-Trace") != "4" || r.Headers.Get("Authorization") != "Bearer k" || r.BodyBytes != len(lastBody) || r.Status != 200 ||
		r.Method != "POST" || r.Host == "" || !r.Time.Equal(fixedNow) {
		t.Errorf("item = %+v", r)
	}
	if got.Items[1].Status != 401 {
		t.Errorf("item = %+v", got.Items[1])
	}
	if all := srv.Requests(0); len(all) != 3 || all[0].Seq != 4 {
		t.Errorf("ring = %+v", all)
	}

	var st Stats
	_, body, _ = call(t, nil, http.MethodGet, ts.URL+"/__stats", nil, "")
	if err := json.Unmarshal(body, &st); err != nil {
		t.Fatal(err)
	}
	if st.Total != 6 || st.ByPath["/v1/chat/completions"]["200"] != 5 || st.ByPath["/v1/chat/completions"]["401"] != 1 {
		t.Errorf("stats = %+v", st)
	}

	call(t, nil, http.MethodDelete, ts.URL+"/__requests", nil, "")
	call(t, nil, http.MethodDelete, ts.URL+"/__stats", nil, "")
	if n := len(srv.Requests(0)); n != 0 {
		t.Errorf("%d requests after DELETE", n)
	}
	if st := srv.Stats(); st.Total != 0 || len(st.ByPath) != 0 {
		t.Errorf("stats after DELETE = %+v", st)
	}
}

func TestRoutes(t *testing.T) {
	_, ts := newMock(t, Options{})
	ok := hdr("Authorization", "Bearer k")
	for _, tc := range []struct {
		method, path string
		header       http.Header
		body         string
		want         int
		contains     string
	}{
		{"GET", "/health", nil, "", 200, `"ok"`},
		{"GET", "/v1/models", ok, "", 200, `"object":"list"`},
		{"GET", "/v1/models", hdr("X-Api-Key", "k", "Anthropic-Version", "2023-06-01"), "", 200, `"has_more":false`},
		{"GET", "/v1/models/gpt-4o", ok, "", 200, `"id":"gpt-4o","object":"model"`},
		{"GET", "/v1beta/models", hdr("X-Goog-Api-Key", "k"), "", 200, `"name":"models/gemini-2.5-flash"`},
		{"GET", "/v1beta/models/gemini-x", hdr("X-Goog-Api-Key", "k"), "", 200, `"name":"models/gemini-x"`},
		{"POST", "/v1/models/gemini-x:generateContent", hdr("X-Goog-Api-Key", "k"), `{"contents":[]}`, 200, `"candidates"`},
		{"POST", "/v1/nothing", ok, `{}`, 404, `"error"`},
		{"POST", "/v1beta/models/g:unknownAction", hdr("X-Goog-Api-Key", "k"), `{}`, 404, `"NOT_FOUND"`},
		{"GET", "/v1/chat/completions", ok, "", 405, `"error"`},
		{"POST", "/openai/deployments/d/chat/completions", hdr("Api-Key", "k"), `{}`, 404, "api-version"},
		{"GET", "/openai/models?api-version=2024-10-21", hdr("Api-Key", "k"), "", 200, `"object":"list"`},
		{"GET", "/openai/models", hdr("Api-Key", "k"), "", 404, "api-version"},
		{"POST", "/v1/chat/completions", ok, `{"model":`, 400, "not valid JSON"},
		{"POST", "/v1/embeddings", ok, `{"model":"e","input":[[1,2,3],[4,5]]}`, 200, `"prompt_tokens":5`},
		{"POST", "/v1beta/models/e:embedContent", hdr("X-Goog-Api-Key", "k"), `{"content":{"parts":[{"text":"a"}]}}`, 200, `{"embedding":{"values":[0.125,`},
		{"GET", "/__nothing", nil, "", 404, `"reason":"NOT_FOUND"`},
	} {
		t.Run(tc.method+tc.path, func(t *testing.T) {
			resp, body, err := call(t, nil, tc.method, ts.URL+tc.path, tc.header, tc.body)
			if err != nil {
				t.Fatal(err)
			}
			if resp.StatusCode != tc.want || !strings.Contains(string(body), tc.contains) {
				t.Errorf("%d %s", resp.StatusCode, body)
			}
		})
	}
}

func TestGeminiJSONArrayStream(t *testing.T) {
	_, ts := newMock(t, Options{})
	tg := targets[6]
	resp, body, err := call(t, nil, http.MethodPost, ts.URL+tg.streamPath(), hdr(HeaderChunks, "3"), tg.stream)
	if err != nil || resp.StatusCode != 200 {
		t.Fatal(resp, err)
	}
	var items []struct {
		Candidates []struct {
			Content struct {
				Parts []struct{ Text string }
			}
			FinishReason string
		}
		UsageMetadata struct{ CandidatesTokenCount int }
	}
	if err := json.Unmarshal(body, &items); err != nil {
		t.Fatalf("%v in %s", err, body)
	}
	if len(items) != 4 || items[3].Candidates[0].FinishReason != "STOP" || items[3].UsageMetadata.CandidatesTokenCount != 3 {
		t.Errorf("items = %+v", items)
	}
	if !strings.HasPrefix(string(body), "[{") || !strings.Contains(string(body), "}\n,\r\n{") || !strings.HasSuffix(string(body), "}\n]") {
		t.Errorf("framing: %q", body)
	}
}

func TestClientGoneEndsStream(t *testing.T) {
	srv, ts := newMock(t, Options{})
	tg := targets[0]
	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, ts.URL+tg.path, strings.NewReader(tg.stream))
	req.Header = tg.withHeaders(HeaderChunks, "1000", HeaderGapMs, "50")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	cancel()
	resp.Body.Close()
	deadline := time.Now().Add(2 * time.Second)
	for srv.Stats().InFlight != 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if n := srv.Stats().InFlight; n != 0 {
		t.Errorf("in flight = %d after the client left", n)
	}
}

func TestRecordsOutputCaps(t *testing.T) {
	srv, ts := newMock(t, Options{})
	for _, c := range []struct {
		path, body string
		want       map[string]int64
	}{
		{"/v1/chat/completions", `{"model":"m","max_completion_tokens":7,"max_output_tokens":1,"messages":[]}`,
			map[string]int64{"max_completion_tokens": 7, "max_output_tokens": 1}},
		{"/v1beta/models/g:generateContent", `{"contents":[],"generationConfig":{"maxOutputTokens":9}}`,
			map[string]int64{"generationConfig.maxOutputTokens": 9}},
		{"/v1/chat/completions", `{"model":"m","messages":[]}`, nil},
	} {
		if _, _, err := call(t, nil, http.MethodPost, ts.URL+c.path, hdr("Authorization", "Bearer k", "x-goog-api-key", "k"), c.body); err != nil {
			t.Fatal(err)
		}
		if got := srv.Requests(1)[0].OutputCaps; !reflect.DeepEqual(got, c.want) {
			t.Errorf("%s: caps %v, want %v", c.body, got, c.want)
		}
	}
}

func TestRecordsBody(t *testing.T) {
	srv, ts := newMock(t, Options{})
	key := hdr("Authorization", "Bearer k")
	small := `{"model":"m","messages":[{"role":"system","content":"be brief"}],"tools":[{"type":"function","function":{"name":"f"}}]}`
	call(t, nil, http.MethodPost, ts.URL+"/v1/chat/completions", key, small)
	_, body, err := call(t, nil, http.MethodGet, ts.URL+"/__requests?limit=1", nil, "")
	if err != nil {
		t.Fatal(err)
	}
	// The JSON form: the body as a string, next to its size.
	item := gjson.GetBytes(body, "items.0")
	if item.Get("body").String() != small || item.Get("body_bytes").Int() != int64(len(small)) || item.Get("body_truncated").Exists() {
		t.Errorf("recorded %s", item.Raw)
	}

	// Over the limit: cut to RecordedBodyLimit bytes, back to a whole
	// character (the 2-byte "é" straddles the limit here).
	big := `{"model":"m","messages":[{"role":"user","content":"` + strings.Repeat("a", RecordedBodyLimit-len(`{"model":"m","messages":[{"role":"user","content":"`)-1) + `é` + strings.Repeat("b", 100) + `"}]}`
	call(t, nil, http.MethodPost, ts.URL+"/v1/chat/completions", key, big)
	rec := srv.Requests(1)[0]
	if !rec.BodyTruncated || rec.BodyBytes != len(big) || len(rec.Body) != RecordedBodyLimit-1 || rec.Body != big[:RecordedBodyLimit-1] || rec.Status != 200 {
		t.Errorf("big body: truncated %v, %d of %d bytes kept, status %d", rec.BodyTruncated, len(rec.Body), rec.BodyBytes, rec.Status)
	}
	call(t, nil, http.MethodGet, ts.URL+"/v1/models", key, "")
	if rec := srv.Requests(1)[0]; rec.Body != "" || rec.BodyTruncated {
		t.Errorf("GET recorded body %q", rec.Body)
	}
}
