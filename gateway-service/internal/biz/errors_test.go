package biz

import (
	"bytes"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/lurus-switch/lurus-switch/lurus-common/golden"

	"github.com/lurus-switch/lurus-switch/lurus-common/apperr"
)

func TestErrorGolden(t *testing.T) {
	errs := []*apperr.Error{
		apperr.New(apperr.ReasonMalformedJSON, "request body is not valid JSON"),
		apperr.New(apperr.ReasonMissingCredentials, "no API key"),
		apperr.New(apperr.ReasonModelNotAllowed, `key may not use model "gpt-4o"`),
		apperr.New(apperr.ReasonInsufficientBalance, "balance too low"),
		apperr.New(apperr.ReasonQuotaExceeded, "token quota exhausted"),
		apperr.New(apperr.ReasonModelNotFound, `no provider serves model "x"`),
		apperr.New(apperr.ReasonBodyTooLarge, "request body exceeds 33554432 bytes"),
		apperr.New(apperr.ReasonUpstreamError, "upstream failed"),
		apperr.New(apperr.ReasonCircuitOpen, "every provider is cooling down"),
		apperr.New(apperr.ReasonUpstreamTimeout, "upstream did not answer in time"),
		apperr.Internal(fmt.Errorf("secret cause sk-lurus-xyz")),
	}
	for _, f := range []Format{FormatOpenAI, FormatAnthropic, FormatGemini} {
		var out bytes.Buffer
		for _, e := range errs {
			status, body := ErrorBody(f, e)
			fmt.Fprintf(&out, "%d %s\n", status, body)
		}
		fmt.Fprintf(&out, "stream: %q\n", StreamErrorEvent(f, false, ErrStreamCut))
		if f == FormatGemini {
			fmt.Fprintf(&out, "array: %q\n", StreamErrorEvent(f, true, ErrStreamCut))
		}
		golden.Bytes(t, filepath.Join("errors", f.String()+".golden"), out.Bytes())
		if bytes.Contains(out.Bytes(), []byte("secret cause")) {
			t.Errorf("%s: internal cause leaked", f)
		}
	}
}

func TestFormatForPath(t *testing.T) {
	for path, want := range map[string]Format{
		"/v1beta/models/x:foo": FormatGemini,
		"/v1/messages/batches": FormatAnthropic,
		"/v1/unknown":          FormatOpenAI,
		"/":                    FormatOpenAI,
	} {
		if got := FormatForPath(path); got != want {
			t.Errorf("FormatForPath(%q) = %s, want %s", path, got, want)
		}
	}
}
