package main

import (
	"context"
	"io"
	"net/http"
	"regexp"
	"strconv"
	"testing"

	"github.com/tidwall/gjson"

	"github.com/lurus-switch/lurus-switch/gateway-service/internal/conf"
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

// TestLeasedAdmission: the gateway holds one lease per key in Redis and
// admits further requests against it without a round trip; each request's
// billing.usage names the lease and its own estimate, and settling them
// (billing's part releases) plus the gateway's return of the rest leaves
// nothing held.
func TestLeasedAdmission(t *testing.T) {
	oa := newUpstream(t)
	h := startGateway(t, []internalapi.Provider{provider("prv_oa", internalapi.TypeOpenAI, oa, 0, 1, "gpt-4o")})
	ctx := context.Background()
	var ids []string
	for i := 0; i < 5; i++ {
		resp, body := h.do(http.MethodPost, "/v1/chat/completions", chatBody, nil)
		if resp.StatusCode != http.StatusOK || gjson.GetBytes(body, "choices.0.message.content").Str == "" {
			t.Fatalf("request %d: %d %s", i, resp.StatusCode, body)
		}
		ids = append(ids, resp.Header.Get("X-Request-Id"))
	}
	if ext, local := h.admissions("extended"), h.admissions("local"); ext != 1 || local != 4 {
		t.Fatalf("admissions: extended %d, local %d; want 1 and 4", ext, local)
	}
	st, err := h.billing.store.Get(ctx, h.userID)
	if err != nil {
		t.Fatal(err)
	}
	held := st.ReservedMicros
	var settled int64
	for _, id := range ids {
		u, _ := h.eventsFor(id, true)
		if u == nil || u.ReservationID == "" || u.ReservationID == id || u.ReservedMicros <= 0 {
			t.Fatalf("request %s: billing.usage %+v does not name the lease and its estimate", id, u)
		}
		// what billing does when it settles the request
		if _, err := h.billing.store.ReleasePart(ctx, h.userID, admission.PartRelease{ReservationID: u.ReservationID,
			RequestID: u.RequestID, Micros: u.ReservedMicros, Tokens: u.ReservedTokens}); err != nil {
			t.Fatal(err)
		}
		settled += u.ReservedMicros
	}
	st, _ = h.billing.store.Get(ctx, h.userID)
	if st.ReservedMicros != held-settled || st.ReservedMicros <= 0 {
		t.Fatalf("after settling: reserved %d, want the unused remainder %d", st.ReservedMicros, held-settled)
	}
	h.app.leases.ReturnAll(ctx) // what shutdown does
	if st, _ = h.billing.store.Get(ctx, h.userID); st.ReservedMicros != 0 || st.ReservedTokens != 0 {
		t.Fatalf("after returning the lease: %+v", st)
	}
}

// TestLeaseRefusedExtension: once the balance is gone, the lease cannot be
// extended: the request is refused before it reaches upstream and nothing
// is billed. (Background refills are off here so that the lease is
// exactly empty when the balance goes; what a refill holds was reserved
// while the balance was there, and internal/biz tests cover it.)
func TestLeaseRefusedExtension(t *testing.T) {
	oa := newUpstream(t)
	off := false
	h := startGateway(t, []internalapi.Provider{provider("prv_oa", internalapi.TypeOpenAI, oa, 0, 1, "gpt-4o")},
		func(c *conf.Config) { c.Admission.LeaseFactor, c.Admission.LeasePrefetch = 2, &off })
	if resp, body := h.do(http.MethodPost, "/v1/chat/completions", chatBody, nil); resp.StatusCode != http.StatusOK {
		t.Fatalf("first request: %d %s", resp.StatusCode, body)
	}
	if resp, _ := h.do(http.MethodPost, "/v1/chat/completions", chatBody, nil); resp.StatusCode != http.StatusOK {
		t.Fatal("second request (inside the lease) refused")
	}
	// billing debits the user elsewhere: the mirror now holds almost nothing
	if _, err := h.billing.store.Apply(context.Background(), admission.Account{UserID: h.userID, BalanceMicros: 1, Active: true, Version: 9}, ""); err != nil {
		t.Fatal(err)
	}
	seen := oa.mock.Stats().Total
	resp, body := h.do(http.MethodPost, "/v1/chat/completions", chatBody, nil)
	if resp.StatusCode != http.StatusPaymentRequired || gjson.GetBytes(body, "error.code").Str != "INSUFFICIENT_BALANCE" {
		t.Fatalf("refused extension: %d %s", resp.StatusCode, body)
	}
	if oa.mock.Stats().Total != seen {
		t.Fatal("a refused request reached upstream")
	}
	u, logs := h.eventsFor(resp.Header.Get("X-Request-Id"), false)
	if u != nil || logs[0].StatusCode != http.StatusPaymentRequired {
		t.Fatalf("refused request: billing.usage %+v, log status %d", u, logs[0].StatusCode)
	}
}
