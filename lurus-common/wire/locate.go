package wire

import (
	"net/url"
	"strings"
)

// Call names the upstream operation a Locator places.
type Call struct {
	// Path is the operation after the base URL, as the provider's API
	// names it: a path (OpenAI "/chat/completions", Anthropic
	// "/v1/messages/count_tokens"; each base URL follows its SDK's
	// convention, with or without /v1) or, for Gemini, the action after
	// the model ("streamGenerateContent").
	Path string
	// SSE asks a stream as SSE events where the API otherwise streams a
	// JSON array (Gemini's alt=sse, on streamGenerateContent only).
	SSE bool
}

// Location is where an upstream call goes and how it is authorized.
type Location struct {
	URL string
	// Auth is the credential header (Authorization, api-key, x-api-key,
	// x-goog-api-key).
	Auth Header
	// PathModel: the model is a segment of URL's path (the Azure
	// deployment, the Gemini model), escaped by PathSegment. A caller that
	// promises a model of the lurus-common/modelname grammar checks it.
	PathModel bool
}

// Locator is the ability to place a call at a provider: the URL of an
// operation for u's model, and u's credential header. Writers build their
// requests with it and the gateway's pass-through relay asks it directly,
// so a translated and a relayed call cannot disagree about URLs, API
// versions or credentials.
type Locator interface {
	Locate(u Upstream, call Call) (Location, error)
}

// segmentEscaper escapes what url.PathEscape leaves of the modelname
// grammar's characters.
var segmentEscaper = strings.NewReplacer(":", "%3A", "@", "%40", "+", "%2B")

// PathSegment escapes s as exactly one URL path segment: url.PathEscape,
// and ':', '@' and '+', the characters of the model-name grammar it
// leaves. A name of the lurus-common/modelname grammar thus comes out
// exactly as modelname.PathSegment writes it, and ':' cannot name another
// Gemini action; what is outside the grammar keeps url.PathEscape's form.
func PathSegment(s string) string {
	return segmentEscaper.Replace(url.PathEscape(s))
}
