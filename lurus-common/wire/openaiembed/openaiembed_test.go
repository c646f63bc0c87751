package openaiembed

import (
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/lurus-switch/lurus-switch/lurus-common/apperr"
	"github.com/lurus-switch/lurus-switch/lurus-common/golden"
	"github.com/lurus-switch/lurus-switch/lurus-common/internalapi"
	"github.com/lurus-switch/lurus-switch/lurus-common/wire"
)

var upstreams = []wire.Upstream{
	{Type: internalapi.TypeOpenAI, BaseURL: "https://api.openai.com/v1", Secret: "sk-test", Model: "text-embedding-3-small"},
	{Type: internalapi.TypeOpenAICompatible, BaseURL: "http://tei:8080/v1/", Secret: "tok", Model: "bge-m3"},
	{Type: internalapi.TypeAzureOpenAI, BaseURL: "https://res.openai.azure.com", APIVersion: "2024-06-01", Secret: "az", Model: "emb/small"},
}

func read(body []byte) (*wire.Request, error) {
	req := &wire.Request{Op: wire.OpEmbed}
	return req, Adapter{}.ReadRequest(body, req)
}

// TestRequests reads each client body into the canonical request, writes
// it for every provider type, and reads the written body back.
func TestRequests(t *testing.T) {
	golden.Files(t, "testdata/requests/*.json", func(t *testing.T, name string, body []byte) {
		req, err := read(body)
		if err != nil {
			t.Fatal(err)
		}
		golden.JSON(t, "requests/"+name+".canonical.golden", req)
		for _, u := range upstreams {
			hr, err := Adapter{}.WriteRequest(req, u)
			var dump any
			if err != nil {
				dump = map[string]string{"error": err.Error()}
			} else {
				dump = map[string]any{"url": hr.URL, "headers": hr.Headers, "body": json.RawMessage(hr.Body)}
			}
			golden.JSON(t, "requests/"+name+"."+u.Type+".golden", dump)
			if err != nil {
				var un *wire.Unsupported
				if !errors.As(err, &un) || un.Field != req.Refused[0] {
					t.Fatalf("%s: %v", u.Type, err)
				}
				continue
			}
			back, err := read(hr.Body)
			if err != nil {
				t.Fatal(err)
			}
			want := *req
			want.Model, want.EmbedBase64 = u.Model, false // upstream always answers floats
			if !reflect.DeepEqual(back, &want) {
				t.Errorf("%s: round trip %+v, want %+v", u.Type, back, &want)
			}
		}
	})
}

func TestReadRequestErrors(t *testing.T) {
	for _, c := range []struct {
		body   string
		reason apperr.Reason
	}{
		{`"x"`, apperr.ReasonMalformedJSON},
		{`{"input":"x"}`, apperr.ReasonMissingModel},
		{`{"model":"m","input":""}`, apperr.ReasonInvalidArgument},
		{`{"model":"m","input":[]}`, apperr.ReasonInvalidArgument},
		{`{"model":"m","input":["a",""]}`, apperr.ReasonInvalidArgument},
		{`{"model":"m","input":null}`, apperr.ReasonInvalidArgument},
		{`{"model":"m","input":[{"text":"a"}]}`, apperr.ReasonInvalidArgument},
		{`{"model":"m","input":"a","dimensions":0}`, apperr.ReasonInvalidArgument},
		{`{"model":"m","input":"a","encoding_format":"int8"}`, apperr.ReasonInvalidArgument},
	} {
		if _, err := read([]byte(c.body)); apperr.ReasonOf(err) != c.reason {
			t.Errorf("%s: got %v, want %s", c.body, err, c.reason)
		}
	}
}

// TestResponses decodes upstream answers and encodes them as floats and
// as base64; base64 decodes to the same vectors (they are float32 values).
func TestResponses(t *testing.T) {
	golden.Files(t, "testdata/responses/*.json", func(t *testing.T, name string, body []byte) {
		resp, err := Adapter{}.DecodeResponse(body)
		if err != nil {
			t.Fatal(err)
		}
		golden.JSON(t, "responses/"+name+".canonical.golden", resp)
		for _, b64 := range []bool{false, true} {
			out, err := Adapter{}.EncodeResponse(resp, &wire.Request{Op: wire.OpEmbed, Model: "client-model", EmbedBase64: b64})
			if err != nil {
				t.Fatal(err)
			}
			suffix := ".float.golden"
			if b64 {
				suffix = ".base64.golden"
			}
			golden.Bytes(t, "responses/"+name+suffix, append(out, '\n'))
			back, err := Adapter{}.DecodeResponse(out)
			if err != nil {
				t.Fatal(err)
			}
			for i, v := range back.Embeddings {
				for j, f := range v {
					if float32(f) != float32(resp.Embeddings[i][j]) {
						t.Errorf("base64=%v: [%d][%d] = %v, want %v", b64, i, j, f, resp.Embeddings[i][j])
					}
				}
			}
			if back.Usage != resp.Usage || back.Model != "client-model" {
				t.Errorf("usage %+v model %s", back.Usage, back.Model)
			}
		}
	})
}

func TestDecodeResponseRefusesBadIndexes(t *testing.T) {
	for _, body := range []string{
		`{"data":[{"index":0,"embedding":[1]},{"index":0,"embedding":[2]}]}`,
		`{"data":[{"index":3,"embedding":[1]}]}`,
		`{"data":[{"index":0,"embedding":"AAA"}]}`,
		`{"data":[{"index":0,"embedding":{"x":1}}]}`,
	} {
		if _, err := (Adapter{}).DecodeResponse([]byte(body)); err == nil {
			t.Errorf("%s: accepted", body)
		}
	}
}

func TestReadUsage(t *testing.T) {
	for _, c := range []struct {
		data string
		want int64
		ok   bool
	}{
		{`{"usage":{"prompt_tokens":8,"total_tokens":8}}`, 8, true},
		{`{"usage":{"total_tokens":5}}`, 5, true},
		{`{"data":[]}`, 0, false},
	} {
		u, ok := Adapter{}.ReadUsage([]byte(c.data))
		if u != (wire.Usage{Prompt: c.want}) || ok != c.ok {
			t.Errorf("%s: %+v %v", c.data, u, ok)
		}
	}
}

func TestWriteRequestNotEmbed(t *testing.T) {
	if _, err := (Adapter{}).WriteRequest(&wire.Request{Op: wire.OpGenerate}, upstreams[0]); !errors.Is(err, ErrNotEmbed) {
		t.Fatal(err)
	}
}

// FuzzReadRequest: reading never panics; an accepted request without
// refusals writes a body that reads again.
func FuzzReadRequest(f *testing.F) {
	files, _ := filepath.Glob("testdata/requests/*.json")
	for _, name := range files {
		b, _ := os.ReadFile(name)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		req, err := read(body)
		if err != nil || len(req.Refused) > 0 {
			return
		}
		hr, err := Adapter{}.WriteRequest(req, upstreams[0])
		if err != nil {
			t.Fatal(err)
		}
		if _, err := read(hr.Body); err != nil {
			t.Fatalf("%v: %s", err, hr.Body)
		}
	})
}
