package strictjson

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestCheck(t *testing.T) {
	many := func(n int, dup string) string {
		var sb strings.Builder
		sb.WriteString("{")
		for i := 0; i < n; i++ {
			fmt.Fprintf(&sb, `"k%d":%d,`, i, i)
		}
		sb.WriteString(`"` + dup + `":0}`)
		return sb.String()
	}
	cases := []struct {
		name, doc string
		want      string // "", "malformed", "dup:<key>"
	}{
		{"object", `{"model":"m","messages":[{"role":"user","content":"hi"}],"n":1.5e3}`, ""},
		{"whitespace", " \t\n{ } \r\n", ""},
		{"scalar", `"x"`, ""},
		{"same key in sibling objects", `[{"a":1},{"a":2}]`, ""},
		{"same key parent and child", `{"a":{"a":1}}`, ""},
		{"case differs", `{"model":1,"Model":2}`, ""},
		{"dup top", `{"model":"a","x":1,"model":"b"}`, "dup:model"},
		{"dup nested", `{"m":[{"c":1,"c":2}]}`, "dup:c"},
		{"dup escaped", `{"model":"a","mod\u0065l":"b"}`, "dup:model"},
		{"dup escaped both", `{"\u006dodel":"a","mod\u0065l":"b"}`, "dup:model"},
		{"dup slash escape", `{"a/b":1,"a\/b":2}`, "dup:a/b"},
		{"dup surrogate pair", `{"😀":1,"\ud83d\ude00":2}`, "dup:😀"},
		{"lone surrogates fold to U+FFFD", `{"\ud800":1,"\udc00":2}`, "dup:\ufffd"},
		{"dup after many keys", many(40, "k7"), "dup:k7"},
		{"dup escaped after many keys", many(40, `k\u0037`), "dup:k7"},
		{"many distinct", many(40, "z"), ""},
		{"empty", ``, "malformed"},
		{"two values", `{}{}`, "malformed"},
		{"trailing comma", `{"a":1,}`, "malformed"},
		{"array trailing comma", `[1,]`, "malformed"},
		{"leading zero", `{"a":01}`, "malformed"},
		{"bare dot", `{"a":1.}`, "malformed"},
		{"plus", `{"a":+1}`, "malformed"},
		{"exp no digits", `{"a":1e}`, "malformed"},
		{"bad literal", `{"a":tru}`, "malformed"},
		{"single quotes", `{'a':1}`, "malformed"},
		{"control char", "{\"a\":\"x\ny\"}", "malformed"},
		{"bad escape", `{"a":"\x"}`, "malformed"},
		{"short unicode", `{"a":"\u12"}`, "malformed"},
		{"invalid utf8", "{\"a\":\"\xff\"}", "malformed"},
		{"bom", "\xef\xbb\xbf{}", "malformed"},
		{"unterminated", `{"a":"b`, "malformed"},
		{"nul byte after", "{}\x00", "malformed"},
		{"deep", strings.Repeat("[", MaxDepth+1) + strings.Repeat("]", MaxDepth+1), "malformed"},
		{"deep ok", strings.Repeat("[", MaxDepth) + strings.Repeat("]", MaxDepth), ""},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			err := Check([]byte(c.doc))
			var dup *DuplicateKeyError
			switch {
			case c.want == "":
				if err != nil {
					t.Fatalf("Check: %v", err)
				}
			case c.want == "malformed":
				if !errors.Is(err, ErrMalformed) {
					t.Fatalf("Check = %v, want malformed", err)
				}
			case errors.As(err, &dup):
				if "dup:"+dup.Key != c.want {
					t.Fatalf("duplicate %q, want %s", dup.Key, c.want)
				}
			default:
				t.Fatalf("Check = %v, want %s", err, c.want)
			}
		})
	}
}

func TestCheckObject(t *testing.T) {
	for doc, want := range map[string]error{
		` {"a":1}`: nil, `[1]`: ErrNotObject, `"x"`: ErrNotObject, `null`: ErrNotObject, `{`: ErrMalformed,
	} {
		if err := CheckObject([]byte(doc)); !errors.Is(err, want) && !(want == nil && err == nil) {
			t.Errorf("CheckObject(%s) = %v, want %v", doc, err, want)
		}
	}
}

// chatBody is a typical chat completions request of about 2 KB.
var chatBody = []byte(`{"model":"gpt-4o-mini","stream":true,"stream_options":{"include_usage":true},"temperature":0.7,` +
	`"max_completion_tokens":1024,"messages":[{"role":"system","content":"You are a careful assistant. Answer briefly and cite sources when you can."},` +
	`{"role":"user","content":"` + strings.Repeat("Tell me about the history of the printing press in Europe. ", 20) + `"},` +
	`{"role":"assistant","content":"The printing press was introduced by Johannes Gutenberg around 1440 in Mainz."},` +
	`{"role":"user","content":[{"type":"text","text":"And what changed after that? Give three points."}]}],` +
	`"tools":[{"type":"function","function":{"name":"search","description":"Search the web","parameters":{"type":"object",` +
	`"properties":{"query":{"type":"string"},"limit":{"type":"integer","minimum":1,"maximum":10}},"required":["query"]}}}]}`)

func TestCheckDoesNotAllocate(t *testing.T) {
	if err := CheckObject(chatBody); err != nil {
		t.Fatal(err)
	}
	if n := testing.AllocsPerRun(100, func() { _ = CheckObject(chatBody) }); n != 0 {
		t.Fatalf("CheckObject allocates %v times per call", n)
	}
}

func BenchmarkCheckObject(b *testing.B) {
	b.SetBytes(int64(len(chatBody)))
	b.ReportAllocs()
	for b.Loop() {
		if err := CheckObject(chatBody); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkEncodingJSONValid(b *testing.B) {
	b.SetBytes(int64(len(chatBody)))
	b.ReportAllocs()
	for b.Loop() {
		if !json.Valid(chatBody) {
			b.Fatal("invalid")
		}
	}
}

// hasDuplicate is an independent reference: encoding/json's tokenizer,
// which decodes keys, with a set per open object.
func hasDuplicate(doc []byte) (bool, error) {
	dec := json.NewDecoder(bytes.NewReader(doc))
	dec.UseNumber() // numbers as text: a valid number too large for a float64 is still valid JSON
	type frame struct {
		obj    bool
		keys   map[string]bool
		expect bool // next string token in an object is a key
	}
	var stack []*frame
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return false, nil
		}
		if err != nil {
			return false, err
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if top != nil && top.obj && top.expect {
			if d, ok := tok.(json.Delim); ok && d == '}' {
				stack = stack[:len(stack)-1]
				if len(stack) > 0 {
					stack[len(stack)-1].expect = stack[len(stack)-1].obj
				}
				continue
			}
			k := tok.(string)
			if top.keys[k] {
				return true, nil
			}
			top.keys[k] = true
			top.expect = false
			continue
		}
		switch d := tok.(type) {
		case json.Delim:
			switch d {
			case '{':
				stack = append(stack, &frame{obj: true, keys: map[string]bool{}, expect: true})
				continue
			case '[':
				stack = append(stack, &frame{})
				continue
			default:
				stack = stack[:len(stack)-1]
			}
		}
		if len(stack) > 0 {
			stack[len(stack)-1].expect = stack[len(stack)-1].obj
		}
	}
}

func FuzzCheck(f *testing.F) {
	for _, s := range []string{`{"a":1,"a":2}`, `{"mod\u0065l":1,"model":2}`, `[{"x":[1,2,{"y":null}]}]`,
		`{"\ud800":1,"\udc00":2}`, `{"a":"\u00e9","\u00e9":true}`, string(chatBody), `1e5`, `-0.0E+1`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, doc []byte) {
		err := Check(doc)
		valid := json.Valid(doc) && utf8.Valid(doc)
		if err == nil && !json.Valid(doc) {
			t.Fatalf("Check accepted what encoding/json refuses: %q", doc)
		}
		if !valid || bytes.Count(doc, []byte("["))+bytes.Count(doc, []byte("{")) >= MaxDepth {
			return
		}
		if errors.Is(err, ErrMalformed) {
			t.Fatalf("Check refused valid %q: %v", doc, err)
		}
		dup, derr := hasDuplicate(doc)
		if derr != nil {
			t.Fatalf("reference: %v", derr)
		}
		var de *DuplicateKeyError
		if dup != errors.As(err, &de) {
			t.Fatalf("duplicate %v, Check %v: %q", dup, err, doc)
		}
	})
}
