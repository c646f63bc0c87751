package gemini

import (
	"bytes"
	"encoding/json"
	"io"
	"strings"

	"github.com/lurus-switch/lurus-switch/lurus-common/apperr"
	"github.com/lurus-switch/lurus-switch/lurus-common/wire"
)

// Gemini's parameters and responseSchema are an OpenAPI 3.0 subset, not
// JSON Schema. Translating to it:
//   - type: upper-cased; ["t","null"] becomes t with nullable: true.
//   - oneOf becomes anyOf; const (a string) becomes a one-value enum.
//   - local $ref (#/$defs/…, #/definitions/…) are inlined; a recursive or
//     remote one is refused, as are allOf, not, if/then/else, prefixItems,
//     tuple items, patternProperties, dependent* and contains, whose loss
//     would let the model answer outside the client's schema.
//   - kept: format, title, description, enum, required, properties, items,
//     anyOf, min/maxItems, min/maxLength, pattern, minimum, maximum,
//     min/maxProperties, default, example, nullable, propertyOrdering.
//   - every other key is dropped: annotations ($schema, $id, $comment,
//     examples, …), additionalProperties and unevaluatedProperties (Gemini
//     emits only the declared properties anyway) and the finer numeric
//     and array bounds Gemini lacks (multipleOf, exclusive bounds,
//     uniqueItems).
//   - properties keep the client's order through propertyOrdering, since
//     Gemini otherwise orders them alphabetically.
// Reading Gemini's dialect back lower-cases type, turns nullable into a
// type list and drops propertyOrdering and example.

// node is a JSON value that keeps the order of object keys.
type node struct {
	obj    []field // when isObj
	arr    []*node // when isArr
	isObj  bool
	isArr  bool
	scalar json.RawMessage
}

type field struct {
	key string
	val *node
}

func parseNode(raw []byte) (*node, error) {
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	n, err := readNode(dec)
	if err != nil {
		return nil, err
	}
	if _, err := dec.Token(); err != io.EOF {
		return nil, apperr.New(apperr.ReasonInvalidArgument, "schema is not one JSON value")
	}
	return n, nil
}

func readNode(dec *json.Decoder) (*node, error) {
	tok, err := dec.Token()
	if err != nil {
		return nil, apperr.New(apperr.ReasonInvalidArgument, "schema is not valid JSON")
	}
	switch t := tok.(type) {
	case json.Delim:
		if t == '[' {
			n := &node{isArr: true}
			for dec.More() {
				v, err := readNode(dec)
				if err != nil {
					return nil, err
				}
				n.arr = append(n.arr, v)
			}
			_, err := dec.Token()
			return n, err
		}
		n := &node{isObj: true}
		for dec.More() {
			kt, err := dec.Token()
			if err != nil {
				return nil, err
			}
			v, err := readNode(dec)
			if err != nil {
				return nil, err
			}
			n.obj = append(n.obj, field{key: kt.(string), val: v})
		}
		_, err := dec.Token()
		return n, err
	default:
		b, err := marshal(t)
		return &node{scalar: b}, err
	}
}

// MarshalJSON writes n with its keys in their order.
func (n *node) MarshalJSON() ([]byte, error) {
	var b []byte
	switch {
	case n.isObj:
		b = append(b, '{')
		for i, f := range n.obj {
			if i > 0 {
				b = append(b, ',')
			}
			k, _ := marshal(f.key)
			b = append(b, k...)
			b = append(b, ':')
			v, err := f.val.MarshalJSON()
			if err != nil {
				return nil, err
			}
			b = append(b, v...)
		}
		return append(b, '}'), nil
	case n.isArr:
		b = append(b, '[')
		for i, v := range n.arr {
			if i > 0 {
				b = append(b, ',')
			}
			vb, err := v.MarshalJSON()
			if err != nil {
				return nil, err
			}
			b = append(b, vb...)
		}
		return append(b, ']'), nil
	}
	return n.scalar, nil
}

func (n *node) get(key string) *node {
	for _, f := range n.obj {
		if f.key == key {
			return f.val
		}
	}
	return nil
}

func (n *node) str() (string, bool) {
	if n == nil || n.isObj || n.isArr || len(n.scalar) == 0 || n.scalar[0] != '"' {
		return "", false
	}
	var s string
	return s, json.Unmarshal(n.scalar, &s) == nil
}

func strNode(s string) *node {
	b, _ := marshal(s)
	return &node{scalar: b}
}

// schemaToJSON reads a Gemini Schema into JSON Schema.
func schemaToJSON(raw json.RawMessage) (json.RawMessage, error) {
	n, err := parseNode(raw)
	if err != nil {
		return nil, err
	}
	return marshal(fromGemini(n))
}

func fromGemini(n *node) *node {
	if !n.isObj {
		return n
	}
	out := &node{isObj: true}
	nullable := false
	if v := n.get("nullable"); v != nil && string(v.scalar) == "true" {
		nullable = true
	}
	for _, f := range n.obj {
		v := f.val
		switch f.key {
		case "nullable", "propertyOrdering", "example":
			continue
		case "type":
			if s, ok := v.str(); ok {
				v = strNode(strings.ToLower(s))
				if nullable {
					v = &node{isArr: true, arr: []*node{v, strNode("null")}}
				}
			}
		case "properties":
			if v.isObj {
				p := &node{isObj: true}
				for _, pf := range v.obj {
					p.obj = append(p.obj, field{pf.key, fromGemini(pf.val)})
				}
				v = p
			}
		case "items":
			v = fromGemini(v)
		case "anyOf":
			if v.isArr {
				a := &node{isArr: true}
				for _, e := range v.arr {
					a.arr = append(a.arr, fromGemini(e))
				}
				v = a
			}
		}
		out.obj = append(out.obj, field{f.key, v})
	}
	return out
}

// schemaToGemini writes JSON Schema raw in Gemini's dialect; empty is an
// object schema without properties (Gemini refuses those for function
// parameters, so the caller leaves them out).
func schemaToGemini(raw json.RawMessage) (out json.RawMessage, empty bool, err error) {
	n, err := parseNode(raw)
	if err != nil {
		return nil, false, err
	}
	c := schemaConv{root: n, budget: maxSchemaNodes}
	g, err := c.convert(n, 0)
	if err != nil {
		return nil, false, err
	}
	if t, _ := g.get("type").str(); t == "OBJECT" {
		p := g.get("properties")
		empty = p == nil || len(p.obj) == 0
	}
	b, err := marshal(g)
	return b, empty, err
}

// schemaConv converts one schema. budget counts the nodes left to write,
// so inlining $ref cannot blow a small schema up exponentially.
type schemaConv struct {
	root   *node
	budget int
}

// maxRefDepth bounds $ref inlining; deeper is taken for recursion.
const maxRefDepth = 32

// maxSchemaNodes bounds the size of a translated schema.
const maxSchemaNodes = 10000

func unsupported(field string) error {
	return &wire.Unsupported{Field: field, Target: target}
}

func (c *schemaConv) convert(n *node, depth int) (*node, error) {
	if c.budget--; c.budget < 0 {
		return nil, unsupported("$ref")
	}
	if !n.isObj {
		if string(n.scalar) == "true" {
			return &node{isObj: true}, nil
		}
		return nil, unsupported("schema " + string(n.scalar))
	}
	if ref := n.get("$ref"); ref != nil {
		target, err := c.resolve(ref, depth)
		if err != nil {
			return nil, err
		}
		return c.convert(target, depth+1)
	}
	out := &node{isObj: true}
	var order []*node
	hasOrder := false
	for _, f := range n.obj {
		v := f.val
		key := f.key
		switch key {
		case "type":
			t, err := geminiType(v)
			if err != nil {
				return nil, err
			}
			out.obj = append(out.obj, t...)
			continue
		case "properties":
			if !v.isObj {
				return nil, unsupported("properties")
			}
			p := &node{isObj: true}
			for _, pf := range v.obj {
				cv, err := c.convert(pf.val, depth)
				if err != nil {
					return nil, err
				}
				p.obj = append(p.obj, field{pf.key, cv})
				order = append(order, strNode(pf.key))
			}
			v = p
		case "items":
			if !v.isObj {
				return nil, unsupported("items")
			}
			cv, err := c.convert(v, depth)
			if err != nil {
				return nil, err
			}
			v = cv
		case "anyOf", "oneOf":
			if !v.isArr || (key == "oneOf" && n.get("anyOf") != nil) {
				return nil, unsupported(key)
			}
			a := &node{isArr: true}
			for _, e := range v.arr {
				cv, err := c.convert(e, depth)
				if err != nil {
					return nil, err
				}
				a.arr = append(a.arr, cv)
			}
			key, v = "anyOf", a
		case "const":
			if _, ok := v.str(); !ok {
				return nil, unsupported("const")
			}
			key, v = "enum", &node{isArr: true, arr: []*node{v}}
		case "propertyOrdering":
			hasOrder = true
		case "format", "title", "description", "nullable", "enum", "required",
			"minItems", "maxItems", "minLength", "maxLength", "pattern",
			"minimum", "maximum", "minProperties", "maxProperties", "default", "example":
		case "allOf", "not", "if", "then", "else", "prefixItems", "patternProperties",
			"dependentRequired", "dependentSchemas", "contains":
			return nil, unsupported(key)
		default:
			continue
		}
		out.obj = append(out.obj, field{key, v})
	}
	if len(order) > 1 && !hasOrder {
		out.obj = append(out.obj, field{"propertyOrdering", &node{isArr: true, arr: order}})
	}
	return out, nil
}

// geminiType translates a JSON Schema type (a name or a list with "null").
func geminiType(v *node) ([]field, error) {
	if s, ok := v.str(); ok {
		return []field{{"type", strNode(strings.ToUpper(s))}}, nil
	}
	if !v.isArr {
		return nil, unsupported("type")
	}
	var types []string
	nullable := false
	for _, e := range v.arr {
		s, ok := e.str()
		switch {
		case !ok:
			return nil, unsupported("type")
		case s == "null":
			nullable = true
		default:
			types = append(types, s)
		}
	}
	if len(types) != 1 {
		return nil, unsupported("type")
	}
	out := []field{{"type", strNode(strings.ToUpper(types[0]))}}
	if nullable {
		out = append(out, field{"nullable", &node{scalar: json.RawMessage("true")}})
	}
	return out, nil
}

// resolve finds a local $ref in the root's $defs or definitions.
func (c *schemaConv) resolve(ref *node, depth int) (*node, error) {
	s, ok := ref.str()
	if !ok || depth >= maxRefDepth {
		return nil, unsupported("$ref")
	}
	for _, prefix := range []string{"#/$defs/", "#/definitions/"} {
		name, found := strings.CutPrefix(s, prefix)
		if !found {
			continue
		}
		defs := c.root.get(strings.TrimSuffix(strings.TrimPrefix(prefix, "#/"), "/"))
		if defs == nil {
			break
		}
		if t := defs.get(name); t != nil {
			return t, nil
		}
	}
	return nil, unsupported("$ref")
}
