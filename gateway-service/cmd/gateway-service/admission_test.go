package main

import (
	"context"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/lurus-switch/lurus-switch/lurus-common/admission"
	"github.com/lurus-switch/lurus-switch/lurus-common/internalapi"
)

// admissions reads lurus_gateway_admissions_total{mode} from /metrics.
func (h *harness) admissions(mode string) int {
	h.t.Helper()
	resp, err := http.Get(h.url + "/metrics")
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	m := regexp.MustCompile(`lurus_gateway_admissions_total\{mode="` + mode + `"\} (\d+)`).FindSubmatch(b)
	if m == nil {
		return 0
	}
	n, _ := strconv.Atoi(string(m[1]))
	return n
}

// TestOverlappedAdmission: once a reservation has shown ample headroom,
// the next requests reserve beside their upstream call; each is still
// reserved (and billed) exactly as before.
func TestOverlappedAdmission(t *testing.T) {
	oa := newUpstream(t)
	h := startGateway(t, []internalapi.Provider{provider("prv_oa", internalapi.TypeOpenAI, oa, 0, 1, "gpt-4o")})
	var ids []string
	for i := 0; i < 4; i++ {
		resp, body := h.do(http.MethodPost, "/v1/chat/completions", chatBody, nil)
		if resp.StatusCode != http.StatusOK || gjson.GetBytes(body, "choices.0.message.content").Str == "" {
			t.Fatalf("request %d: %d %s", i, resp.StatusCode, body)
		}
		ids = append(ids, resp.Header.Get("X-Request-Id"))
	}
	if before, over := h.admissions("before"), h.admissions("overlapped"); before != 1 || over != 3 {
		t.Fatalf("admissions: before %d, overlapped %d; want 1 and 3", before, over)
	}
	// Every request holds its own reservation (the fake billing never
	// settles) and emits its billing.usage with it.
	st, err := h.billing.store.Get(context.Background(), h.userID)
	if err != nil || st.ReservedMicros <= 0 {
		t.Fatalf("mirror %+v %v", st, err)
	}
	perRequest := st.ReservedMicros / 4
	if perRequest*4 != st.ReservedMicros {
		t.Fatalf("reserved %d is not 4 equal holds", st.ReservedMicros)
	}
	for _, id := range ids {
		u, _ := h.eventsFor(id, true)
		if u == nil || u.ReservationID != id {
			t.Fatalf("request %s: billing.usage %+v", id, u)
		}
	}
}

// TestOverlappedAdmissionRefused: when the balance vanished behind the
// gateway's back, the overlapped reservation is refused, the upstream
// call is abandoned, the client gets 402, nothing is billed, and the next
// request is checked before it goes upstream.
func TestOverlappedAdmissionRefused(t *testing.T) {
	oa := newUpstream(t)
	h := startGateway(t, []internalapi.Provider{provider("prv_oa", internalapi.TypeOpenAI, oa, 0, 1, "gpt-4o")})
	if resp, body := h.do(http.MethodPost, "/v1/chat/completions", chatBody, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("first request: %d %s", resp.StatusCode, body)
	}
	// billing debits the user elsewhere (another gateway, an adjustment):
	// the mirror now holds almost nothing.
	if _, err := h.billing.store.Apply(context.Background(), admission.Account{UserID: h.userID, BalanceMicros: 1, Active: true, Version: 9}, ""); err != nil {
		t.Fatal(err)
	}
	resp, body := h.do(http.MethodPost, "/v1/chat/completions", chatBody, nil)
	if resp.StatusCode != http.StatusPaymentRequired || gjson.GetBytes(body, "error.code").Str != "INSUFFICIENT_BALANCE" {
		t.Fatalf("overlapped refusal: %d %s", resp.StatusCode, body)
	}
	if h.admissions("overlap_refused") != 1 {
		t.Fatal("the refused request did not take the overlapped path")
	}
	id := resp.Header.Get("X-Request-Id")
	u, logs := h.eventsFor(id, false)
	if u != nil {
		t.Fatalf("a refused request emitted billing.usage: %+v", u)
	}
	if logs[0].StatusCode != http.StatusPaymentRequired {
		t.Fatalf("log.write status %d", logs[0].StatusCode)
	}
	seen := oa.mock.Stats().Total
	resp, _ = h.do(http.MethodPost, "/v1/chat/completions", chatBody, nil)
	if resp.StatusCode != http.StatusPaymentRequired {
		t.Fatalf("next request: %d", resp.StatusCode)
	}
	if oa.mock.Stats().Total != seen || h.admissions("before") != 2 {
		t.Fatal("after a refusal the next request was not checked before going upstream")
	}
}
