package data

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/lurus-switch/lurus-switch/lurus-common/apperr"
	"github.com/lurus-switch/lurus-switch/lurus-common/internalapi"
)

// Billing reaches billing-service's internal routes.
type Billing struct {
	client *internalapi.Client
}

// NewBilling returns a Billing calling baseURL with the internal token.
func NewBilling(baseURL, internalToken string, timeout time.Duration) *Billing {
	return &Billing{client: internalapi.NewClient(baseURL, internalToken, timeout)}
}

// SyncState reads a user's full state with GET /internal/v1/sync/<user_id>.
func (b *Billing) SyncState(ctx context.Context, userID string) (internalapi.SyncState, error) {
	s, err := b.client.SyncState(ctx, userID)
	if err != nil {
		return internalapi.SyncState{}, internalError(err)
	}
	return s, nil
}

// Ping checks billing answers its health route (readiness).
func (b *Billing) Ping(ctx context.Context) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, b.client.BaseURL+"/health", nil)
	if err != nil {
		return err
	}
	resp, err := b.client.HTTP.Do(req)
	if err != nil {
		return err
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("billing /health: status %d", resp.StatusCode)
	}
	return nil
}

// internalError keeps billing's apperr answers (a refused key) and turns
// anything else (an undecodable body) into an unavailable dependency.
func internalError(err error) error {
	if apperr.KindOf(err) != apperr.KindInternal {
		return err
	}
	return apperr.Wrap(err, apperr.ReasonDependencyDown, "billing-service answered unexpectedly")
}
