package mockupstream

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

func TestSettingsFromHeaders(t *testing.T) {
	for _, tc := range []struct {
		name    string
		header  http.Header
		wantErr string
		check   func(p plan) bool
	}{
		{"none", hdr(), "", func(p plan) bool { return p.chunks == DefaultChunks && p.cutAfter == -1 && p.hang == 0 }},
		{"all", hdr(HeaderLatencyMs, "5", HeaderChunks, "9", HeaderGapMs, "2", HeaderStatus, "503", HeaderCutAfter, "3",
			HeaderHang, "mid", HeaderNoUsage, "true", HeaderUsage, "prompt=12,completion=34,cached=5,cache_write=2,reasoning=7",
			HeaderFailRate, "0.25", HeaderRequireKey, "sk-x"), "", func(p plan) bool {
			u := p.usageFor(0, 0)
			return p.latency == 5*time.Millisecond && p.chunks == 9 && p.gap == 2*time.Millisecond && p.status == 503 &&
				p.cutAfter == 3 && p.hang == hangMid && p.noUsage && p.failRate == 0.25 && p.requireKey == "sk-x" &&
				u == usage{prompt: 12, completion: 34, cached: 5, cacheWrite: 2, reasoning: 7}
		}},
		{"cut off", hdr(HeaderCutAfter, "off"), "", func(p plan) bool { return p.cutAfter == -1 }},
		{"partial usage", hdr(HeaderUsage, "cached=5"), "", func(p plan) bool {
			return p.usageFor(3, 4) == usage{prompt: 3, completion: 4, cached: 5}
		}},
		{"bad int", hdr(HeaderChunks, "five"), "X-Mock-Chunks", nil},
		{"too many chunks", hdr(HeaderChunks, "1000001"), "chunks", nil},
		{"negative latency", hdr(HeaderLatencyMs, "-1"), "latency_ms", nil},
		{"bad hang", hdr(HeaderHang, "forever"), "hang", nil},
		{"bad bool", hdr(HeaderNoUsage, "yes please"), "X-Mock-No-Usage", nil},
		{"bad usage key", hdr(HeaderUsage, "input=3"), "unknown key", nil},
		{"bad usage pair", hdr(HeaderUsage, "prompt"), "key=value", nil},
		{"fail rate out of range", hdr(HeaderFailRate, "1.5"), "fail_rate", nil},
		{"status out of range", hdr(HeaderStatus, "700"), "status", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if len(tc.header) > 0 != hasControlHeaders(tc.header) {
				t.Fatalf("hasControlHeaders = %v", hasControlHeaders(tc.header))
			}
			p := basePlan()
			s, err := settingsFromHeaders(tc.header)
			if err == nil {
				err = p.apply(&s)
			}
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one mentioning %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !tc.check(p) {
				t.Errorf("plan = %+v", p)
			}
		})
	}
}

func TestDecodeSettings(t *testing.T) {
	s, err := DecodeSettings([]byte(`{"status":500,"chunks":2,"usage":{"prompt":1,"reasoning":2},"hang":"first_byte","fail_rate":0.5}`))
	if err != nil {
		t.Fatal(err)
	}
	if *s.Status != 500 || *s.Chunks != 2 || *s.Usage.Prompt != 1 || *s.Usage.Reasoning != 2 || s.Usage.Cached != nil || *s.Hang != HangFirstByte {
		t.Errorf("settings = %+v", s)
	}
	// The JSON form round-trips, so GET /__scenarios/<name> can be PUT back.
	data, _ := json.Marshal(s)
	again, err := DecodeSettings(data)
	if err != nil || *again.Usage.Reasoning != 2 || *again.FailRate != 0.5 {
		t.Errorf("round trip: %s, %v", data, err)
	}
	for _, bad := range []string{`{"usage":{"promt":1}}`, `{"usage":{"prompt":-1}}`, `{"latency":5}`, `{"gap_ms":-2}`, `[]`} {
		if _, err := DecodeSettings([]byte(bad)); err == nil {
			t.Errorf("%s: no error", bad)
		}
	}
}

func TestCountPromptTokens(t *testing.T) {
	for _, tc := range []struct {
		name string
		body string
		want int
	}{
		{"openai chat", `{"model":"gpt","messages":[{"role":"system","content":"be brief"},{"role":"user","content":"hello  big\tworld\n"}]}`, 5},
		{"openai parts", `{"messages":[{"role":"user","content":[{"type":"text","text":"one two"},{"type":"image_url","image_url":{"url":"http://x"}}]}]}`, 2},
		{"openai tools not counted", `{"messages":[{"role":"user","content":"hi"}],"tools":[{"type":"function","function":{"name":"f","description":"does many things"}}]}`, 1},
		{"completion prompt list", `{"prompt":["a b","c"]}`, 3},
		{"token ids", `{"input":[[1,2,3],[4]]}`, 4},
		{"responses", `{"instructions":"be nice","input":[{"role":"user","content":[{"type":"input_text","text":"x y z"}]}]}`, 5},
		{"anthropic", `{"system":[{"type":"text","text":"sys prompt"}],"messages":[{"role":"user","content":"q"},{"role":"assistant","content":[{"type":"tool_use","id":"t","name":"n","input":{"city":"Paris"}}]}]}`, 3},
		{"gemini", `{"systemInstruction":{"parts":[{"text":"sys"}]},"contents":[{"role":"user","parts":[{"text":"héllo wörld"}]}]}`, 3},
		{"unicode spaces", `{"content":"a\u00a0b\u2003c"}`, 3},
		{"empty", `{}`, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := CountPromptTokens([]byte(tc.body)); got != tc.want {
				t.Errorf("CountPromptTokens = %d, want %d", got, tc.want)
			}
		})
	}
}

func TestContentHelpers(t *testing.T) {
	if ReplyText(3) != "tok0 tok1 tok2 " || ChunkText(12) != "tok12 " {
		t.Errorf("reply %q chunk %q", ReplyText(3), ChunkText(12))
	}
	for _, fixed := range []bool{false, true} {
		for _, n := range []int{0, 1, 2, 3, 5, 40} {
			args := toolArgs{fixed: fixed, n: n}
			want := ToolArguments(n)
			if fixed {
				want = FixedToolArguments
			}
			var joined string
			for i := range args.pieces() {
				var piece string
				if err := json.Unmarshal(args.appendQuotedPiece(nil, i), &piece); err != nil || piece == "" {
					t.Fatalf("fixed=%v n=%d: piece %d = %q (%v)", fixed, n, i, piece, err)
				}
				if !fixed && piece != ToolArgumentPiece(i, n) || fixed && piece != FixedToolArgumentPieces(n)[i] {
					t.Errorf("fixed=%v n=%d: piece %d = %q", fixed, n, i, piece)
				}
				joined += piece
			}
			var quoted string
			if err := json.Unmarshal(args.appendQuoted(nil), &quoted); err != nil || quoted != want || joined != want ||
				string(args.appendObject(nil)) != want || !json.Valid([]byte(want)) {
				t.Errorf("fixed=%v n=%d: pieces join to %q, quoted %q, object %s (%v)", fixed, n, joined, quoted, args.appendObject(nil), err)
			}
		}
	}
	var v map[string]string
	if err := json.Unmarshal([]byte(ToolArguments(3)), &v); err != nil || v["input"] != ReplyText(3) {
		t.Errorf("ToolArguments(3) = %q", ToolArguments(3))
	}
	var fixed map[string]string
	if err := json.Unmarshal([]byte(FixedToolArguments), &fixed); err != nil || len(fixed) != 2 || fixed["city"] != "Paris" || fixed["unit"] != "celsius" {
		t.Errorf("FixedToolArguments = %q", FixedToolArguments)
	}
	if p := FixedToolArgumentPieces(4); len(p) != 4 {
		t.Errorf("FixedToolArgumentPieces(4) = %q", p)
	}
	if p := FixedToolArgumentPieces(1000); len(p) != len(FixedToolArguments) {
		t.Errorf("FixedToolArgumentPieces(1000) has %d pieces", len(p))
	}
}

// BenchmarkChat measures the mock's own cost per request, the floor under
// the "through the gateway" numbers.
func BenchmarkChat(b *testing.B) {
	srv, err := New(Options{})
	if err != nil {
		b.Fatal(err)
	}
	for _, tc := range []struct{ name, body string }{
		{"json", `{"model":"gpt-4o","messages":[{"role":"user","content":"hello there"}]}`},
		{"stream", `{"model":"gpt-4o","stream":true,"stream_options":{"include_usage":true},"messages":[{"role":"user","content":"hello there"}]}`},
	} {
		b.Run(tc.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				req := httptest.NewRequest(http.MethodPost, "/v1/chat/completions", strings.NewReader(tc.body))
				req.Header.Set("Authorization", "Bearer k")
				w := httptest.NewRecorder()
				srv.ServeHTTP(w, req)
				if w.Code != 200 {
					b.Fatal(w.Code)
				}
			}
		})
	}
}
