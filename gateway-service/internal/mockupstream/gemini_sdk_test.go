package mockupstream

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"testing"

	"google.golang.org/genai"
)

// The official google.golang.org/genai client against the mock, through
// HTTPOptions.BaseURL: it appends "/v1beta/models/<model>:<action>".

func newGeminiClient(t *testing.T, baseURL string, header http.Header) *genai.Client {
	t.Helper()
	client, err := genai.NewClient(context.Background(), &genai.ClientConfig{
		APIKey:      "gemini-upstream",
		Backend:     genai.BackendGeminiAPI,
		HTTPOptions: genai.HTTPOptions{BaseURL: baseURL, Headers: header},
	})
	if err != nil {
		t.Fatal(err)
	}
	return client
}

func TestGeminiSDKGenerateContent(t *testing.T) {
	srv, ts := newMock(t, Options{})
	client := newGeminiClient(t, ts.URL, hdr(HeaderUsage, "cached=2,reasoning=3"))
	resp, err := client.Models.GenerateContent(context.Background(), "gemini-2.5-flash", genai.Text("one two three"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.Text() != ReplyText(5) || resp.Candidates[0].FinishReason != genai.FinishReasonStop || resp.ModelVersion != "gemini-2.5-flash" {
		t.Errorf("response text %q finish %q", resp.Text(), resp.Candidates[0].FinishReason)
	}
	u := resp.UsageMetadata
	if u.PromptTokenCount != 3 || u.CandidatesTokenCount != 5 || u.TotalTokenCount != 11 || u.CachedContentTokenCount != 2 || u.ThoughtsTokenCount != 3 {
		t.Errorf("usage = %+v", u)
	}
	last := srv.Requests(1)[0]
	if last.Path != "/v1beta/models/gemini-2.5-flash:generateContent" || last.Headers.Get("X-Goog-Api-Key") != "gemini-upstream" || last.Model != "gemini-2.5-flash" {
		t.Errorf("recorded %+v", last)
	}
}

func TestGeminiSDKGenerateContentStream(t *testing.T) {
	srv, ts := newMock(t, Options{})
	client := newGeminiClient(t, ts.URL, hdr(HeaderChunks, "4", HeaderGapMs, "1"))
	var text string
	var chunks int
	var final *genai.GenerateContentResponseUsageMetadata
	for resp, err := range client.Models.GenerateContentStream(context.Background(), "gemini-2.5-pro", genai.Text("alpha beta"), nil) {
		if err != nil {
			t.Fatal(err)
		}
		chunks++
		text += resp.Text()
		final = resp.UsageMetadata
	}
	if text != ReplyText(4) || chunks != 5 {
		t.Errorf("streamed %q in %d responses", text, chunks)
	}
	if final == nil || final.PromptTokenCount != 2 || final.CandidatesTokenCount != 4 || final.TotalTokenCount != 6 {
		t.Errorf("final usage = %+v", final)
	}
	if last := srv.Requests(1)[0]; last.URI != "/v1beta/models/gemini-2.5-pro:streamGenerateContent?alt=sse" {
		t.Errorf("the SDK asked for %s", last.URI)
	}
}

func TestGeminiSDKFunctionCall(t *testing.T) {
	_, ts := newMock(t, Options{})
	client := newGeminiClient(t, ts.URL, hdr(HeaderChunks, "2"))
	cfg := &genai.GenerateContentConfig{Tools: []*genai.Tool{{FunctionDeclarations: []*genai.FunctionDeclaration{{Name: "get_weather"}}}}}
	resp, err := client.Models.GenerateContent(context.Background(), "gemini-2.5-flash", genai.Text("weather?"), cfg)
	if err != nil {
		t.Fatal(err)
	}
	calls := resp.FunctionCalls()
	if len(calls) != 1 || calls[0].Name != "get_weather" || calls[0].Args["input"] != ReplyText(2) {
		t.Errorf("function calls = %+v", calls)
	}
}

func TestGeminiSDKCountTokens(t *testing.T) {
	_, ts := newMock(t, Options{})
	client := newGeminiClient(t, ts.URL, nil)
	resp, err := client.Models.CountTokens(context.Background(), "gemini-2.5-flash", genai.Text("count these four words"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if resp.TotalTokens != 4 {
		t.Errorf("totalTokens = %d", resp.TotalTokens)
	}
}

func TestGeminiSDKEmbedContent(t *testing.T) {
	srv, ts := newMock(t, Options{})
	client := newGeminiClient(t, ts.URL, nil)
	dims := int32(3)
	contents := append(genai.Text("first text"), genai.Text("second")...)
	resp, err := client.Models.EmbedContent(context.Background(), "text-embedding-004", contents, &genai.EmbedContentConfig{OutputDimensionality: &dims})
	if err != nil {
		t.Fatal(err)
	}
	if len(resp.Embeddings) != 2 {
		t.Fatalf("embeddings = %+v", resp.Embeddings)
	}
	for j, e := range resp.Embeddings {
		if len(e.Values) != 3 {
			t.Fatalf("embedding %d has %d values", j, len(e.Values))
		}
		for k, v := range e.Values {
			if float64(v) != EmbeddingValue(j, k) {
				t.Errorf("embedding[%d][%d] = %v", j, k, v)
			}
		}
	}
	// The Gemini API backend of genai embeds through batchEmbedContents.
	if last := srv.Requests(1)[0]; last.Path != "/v1beta/models/text-embedding-004:batchEmbedContents" {
		t.Errorf("the SDK called %s", last.Path)
	}
}

func TestGeminiSDKErrors(t *testing.T) {
	_, ts := newMock(t, Options{})
	for _, tc := range []struct {
		status int
		want   string
	}{{401, "UNAUTHENTICATED"}, {429, "RESOURCE_EXHAUSTED"}, {500, "INTERNAL"}, {503, "UNAVAILABLE"}} {
		client := newGeminiClient(t, ts.URL, hdr(HeaderStatus, strconv.Itoa(tc.status)))
		_, err := client.Models.GenerateContent(context.Background(), "gemini-2.5-flash", genai.Text("x"), nil)
		var apiErr genai.APIError
		if !errors.As(err, &apiErr) || apiErr.Code != tc.status || apiErr.Status != tc.want {
			t.Errorf("status %d: err = %v", tc.status, err)
		}
	}

	client := newGeminiClient(t, ts.URL, hdr(HeaderCutAfter, "2"))
	var text string
	var streamErr error
	for resp, err := range client.Models.GenerateContentStream(context.Background(), "gemini-2.5-flash", genai.Text("x"), nil) {
		if err != nil {
			streamErr = err
			break
		}
		text += resp.Text()
	}
	if streamErr == nil {
		t.Fatal("a cut stream ended without error")
	}
	if text != ReplyText(2) {
		t.Errorf("before the cut: %q", text)
	}
}
