package internalapi

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/lurus-switch/lurus-switch/lurus-common/apperr"
)

// CheckBearer reports, in constant time, whether an Authorization header
// value carries exactly "Bearer <token>". An empty token never matches.
func CheckBearer(header, token string) bool {
	got, ok := strings.CutPrefix(header, "Bearer ")
	if !ok || token == "" {
		return false
	}
	return subtle.ConstantTimeCompare([]byte(got), []byte(token)) == 1
}

// Client calls the internal routes of one service.
type Client struct {
	BaseURL string // e.g. http://127.0.0.1:18103
	Token   string // $LURUS_INTERNAL_TOKEN
	HTTP    *http.Client
}

// NewClient returns a client with a pooled HTTP transport and timeout.
func NewClient(baseURL, token string, timeout time.Duration) *Client {
	return &Client{
		BaseURL: strings.TrimRight(baseURL, "/"),
		Token:   token,
		HTTP: &http.Client{Timeout: timeout, Transport: &http.Transport{
			MaxIdleConnsPerHost: 64,
			IdleConnTimeout:     90 * time.Second,
		}},
	}
}

// VerifyKeyHash asks billing-service about the API key with this peppered
// hash. An unknown or revoked key returns an *apperr.Error with an
// unauthenticated reason.
func (c *Client) VerifyKeyHash(ctx context.Context, hash string) (VerifyKeyResponse, error) {
	var out VerifyKeyResponse
	err := c.do(ctx, http.MethodPost, RouteVerifyKey, VerifyKeyRequest{KeyHash: hash}, &out)
	return out, err
}

// Prices fetches billing-service's price table.
func (c *Client) Prices(ctx context.Context) (PriceTable, error) {
	var out PriceTable
	err := c.do(ctx, http.MethodGet, RoutePrices, nil, &out)
	return out, err
}

// LoadAccount asks billing-service to rewrite a user's admission mirror.
func (c *Client) LoadAccount(ctx context.Context, userID string) error {
	return c.do(ctx, http.MethodPost, RouteLoadAccount, LoadAccountRequest{UserID: userID}, nil)
}

// SyncState fetches a user's full state from billing-service.
func (c *Client) SyncState(ctx context.Context, userID string) (SyncState, error) {
	var out SyncState
	err := c.do(ctx, http.MethodGet, RouteSyncState+url.PathEscape(userID), nil, &out)
	return out, err
}

// Snapshot fetches provider-service's provider snapshot.
func (c *Client) Snapshot(ctx context.Context) (Snapshot, error) {
	var out Snapshot
	err := c.do(ctx, http.MethodGet, RouteProviderSnapshot, nil, &out)
	return out, err
}

// do sends one request. A non-2xx answer with an apperr body becomes that
// *apperr.Error; other failures become unavailable errors.
func (c *Client) do(ctx context.Context, method, path string, in, out any) error {
	var body io.Reader
	if in != nil {
		raw, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(raw)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.BaseURL+path, body)
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+c.Token)
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return apperr.Wrap(err, apperr.ReasonDependencyDown, "internal call failed: "+path)
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return apperr.Wrap(err, apperr.ReasonDependencyDown, "internal call failed: "+path)
	}
	if resp.StatusCode/100 != 2 {
		var eb apperr.Body
		if json.Unmarshal(raw, &eb) == nil && eb.Error.Reason != "" {
			return apperr.New(apperr.Reason(eb.Error.Reason), eb.Error.Message)
		}
		return apperr.Newf(apperr.ReasonDependencyDown, "internal call %s: status %d", path, resp.StatusCode)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(raw, out); err != nil {
		return fmt.Errorf("internalapi: decode %s: %w", path, err)
	}
	return nil
}
