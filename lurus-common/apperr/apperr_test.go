package apperr

import (
	"errors"
	"fmt"
	"net/http"
	"testing"
	"time"
)

func TestKindStatus(t *testing.T) {
	tests := []struct {
		reason Reason
		status int
	}{
		{ReasonMalformedJSON, http.StatusBadRequest},
		{ReasonInvalidCredentials, http.StatusUnauthorized},
		{ReasonModelNotAllowed, http.StatusForbidden},
		{ReasonUserNotFound, http.StatusNotFound},
		{ReasonDuplicateName, http.StatusConflict},
		{ReasonQuotaExceeded, http.StatusTooManyRequests},
		{ReasonInsufficientBalance, http.StatusPaymentRequired},
		{ReasonAdmissionDown, http.StatusServiceUnavailable},
		{ReasonBodyTooLarge, http.StatusRequestEntityTooLarge},
		{ReasonUpstreamTimeout, http.StatusGatewayTimeout},
		{ReasonUpstreamError, http.StatusBadGateway},
		{Reason("NOT_REGISTERED"), http.StatusInternalServerError},
	}
	for _, tt := range tests {
		t.Run(string(tt.reason), func(t *testing.T) {
			if got := New(tt.reason, "x").Kind.HTTPStatus(); got != tt.status {
				t.Fatalf("status = %d, want %d", got, tt.status)
			}
		})
	}
}

func TestEveryReasonRegistered(t *testing.T) {
	for r, k := range registry {
		if r == "" || k.String() == "unknown" {
			t.Errorf("reason %q has kind %v", r, k)
		}
	}
}

func TestRenderHidesInternalCause(t *testing.T) {
	cause := errors.New("pq: password authentication failed for sk-secret")
	status, body := Render(fmt.Errorf("load user: %w", cause))
	if status != http.StatusInternalServerError {
		t.Fatalf("status = %d", status)
	}
	if body.Error.Reason != "INTERNAL" || body.Error.Message != "internal error" {
		t.Fatalf("body = %+v", body)
	}
}

func TestRenderKeepsReasonThroughWrapping(t *testing.T) {
	err := fmt.Errorf("topup: %w", New(ReasonInvalidAmount, "amount_micros must be positive"))
	status, body := Render(err)
	if status != http.StatusBadRequest || body.Error.Reason != "INVALID_AMOUNT" || body.Error.Message != "amount_micros must be positive" {
		t.Fatalf("got %d %+v", status, body)
	}
}

func TestIsMatchesByReason(t *testing.T) {
	sentinel := New(ReasonUserNotFound, "")
	err := fmt.Errorf("get: %w", Wrap(errors.New("no rows"), ReasonUserNotFound, "user 7 not found"))
	if !errors.Is(err, sentinel) {
		t.Fatal("errors.Is by reason failed")
	}
	if errors.Is(err, New(ReasonKeyNotFound, "")) {
		t.Fatal("matched a different reason")
	}
	if ReasonOf(err) != ReasonUserNotFound || KindOf(err) != KindNotFound {
		t.Fatal("ReasonOf/KindOf")
	}
}

func TestRegisterConflictPanics(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Fatal("no panic")
		}
	}()
	Register(ReasonInternal, KindInvalid)
}

func TestRetryAfterHeader(t *testing.T) {
	base := New(ReasonRateLimited, "slow down")
	for _, tc := range []struct {
		err  error
		want string
	}{
		{base, ""},
		{base.WithRetryAfter(1500 * time.Millisecond), "2"},
		{base.WithRetryAfter(time.Millisecond), "1"},
		{fmt.Errorf("wrapped: %w", base.WithRetryAfter(5*time.Minute)), "300"},
		{errors.New("foreign"), ""},
	} {
		if got := RetryAfterHeader(tc.err); got != tc.want {
			t.Errorf("RetryAfterHeader(%v) = %q, want %q", tc.err, got, tc.want)
		}
	}
	if RetryAfterHeader(base) != "" {
		t.Error("WithRetryAfter changed the original")
	}
}
