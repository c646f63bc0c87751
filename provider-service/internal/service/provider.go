// Package service is provider-service's HTTP edge: it decodes requests into
// biz types, calls the use cases and encodes responses. Errors are returned
// to the server's error encoder, which renders them through apperr.
package service

import (
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"slices"
	"strconv"
	"strings"

	khttp "github.com/go-kratos/kratos/v2/transport/http"

	"github.com/lurus-switch/lurus-switch/lurus-common/apperr"
	"github.com/lurus-switch/lurus-switch/lurus-common/internalapi"
	"github.com/lurus-switch/lurus-switch/provider-service/internal/biz"
)

// Providers serves the admin and internal provider routes.
type Providers struct {
	Providers *biz.Providers
	Probes    *biz.Probes
	Snapshots *biz.Snapshots
	// OnSnapshot, if set, is told the version of every snapshot served.
	OnSnapshot func(version int64)
}

// Create serves POST /api/v1/providers.
func (s *Providers) Create(ctx khttp.Context) error {
	var in specJSON
	if err := decode(ctx.Request(), &in); err != nil {
		return err
	}
	p, err := s.Providers.Create(ctx, in.toBiz())
	if err != nil {
		return err
	}
	ctx.Response().Header().Set("Location", "/api/v1/providers/"+p.ID)
	return ctx.JSON(http.StatusCreated, fromProvider(p))
}

// Get serves GET /api/v1/providers/{id}.
func (s *Providers) Get(ctx khttp.Context) error {
	p, err := s.Providers.Get(ctx, ctx.Vars().Get("id"))
	if err != nil {
		return err
	}
	return ctx.JSON(http.StatusOK, fromProvider(p))
}

// Replace serves PUT /api/v1/providers/{id}.
func (s *Providers) Replace(ctx khttp.Context) error {
	var in specJSON
	if err := decode(ctx.Request(), &in); err != nil {
		return err
	}
	p, err := s.Providers.Replace(ctx, ctx.Vars().Get("id"), in.toBiz())
	if err != nil {
		return err
	}
	return ctx.JSON(http.StatusOK, fromProvider(p))
}

// Patch serves PATCH /api/v1/providers/{id}.
func (s *Providers) Patch(ctx khttp.Context) error {
	var in patchJSON
	if err := decode(ctx.Request(), &in); err != nil {
		return err
	}
	p, err := s.Providers.Patch(ctx, ctx.Vars().Get("id"), in.toBiz())
	if err != nil {
		return err
	}
	return ctx.JSON(http.StatusOK, fromProvider(p))
}

// Delete serves DELETE /api/v1/providers/{id}.
func (s *Providers) Delete(ctx khttp.Context) error {
	if err := s.Providers.Delete(ctx, ctx.Vars().Get("id")); err != nil {
		return err
	}
	ctx.Response().WriteHeader(http.StatusNoContent)
	return nil
}

// List serves GET /api/v1/providers?type=&enabled=&model=&limit=&cursor=.
func (s *Providers) List(ctx khttp.Context) error {
	q := ctx.Query()
	f := biz.Filter{Type: q.Get("type"), Model: q.Get("model")}
	if f.Type != "" && !slices.Contains(internalapi.ProviderTypes, f.Type) {
		return apperr.Newf(apperr.ReasonUnknownType, "type %q is not one of %s", f.Type, strings.Join(internalapi.ProviderTypes, ", "))
	}
	if v := q.Get("enabled"); v != "" {
		b, err := strconv.ParseBool(v)
		if err != nil {
			return apperr.New(apperr.ReasonInvalidArgument, "enabled must be true or false")
		}
		f.Enabled = &b
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > biz.MaxListLimit {
			return apperr.Newf(apperr.ReasonInvalidArgument, "limit must be an integer from 1 to %d", biz.MaxListLimit)
		}
		f.Limit = n
	}
	var err error
	if f.After, err = decodeCursor(q.Get("cursor")); err != nil {
		return err
	}
	items, next, err := s.Providers.List(ctx, f)
	if err != nil {
		return err
	}
	out := listJSON{Items: make([]providerJSON, len(items))}
	for i, p := range items {
		out.Items[i] = fromProvider(p)
	}
	if next != "" {
		c := encodeCursor(next)
		out.NextCursor = &c
	}
	return ctx.JSON(http.StatusOK, out)
}

const cursorPrefix = "p1:"

// encodeCursor makes the opaque keyset cursor: the last id returned.
func encodeCursor(id string) string {
	return base64.RawURLEncoding.EncodeToString([]byte(cursorPrefix + id))
}

func decodeCursor(c string) (string, error) {
	if c == "" {
		return "", nil
	}
	raw, err := base64.RawURLEncoding.DecodeString(c)
	id, ok := strings.CutPrefix(string(raw), cursorPrefix)
	if err != nil || !ok || id == "" {
		return "", apperr.New(apperr.ReasonInvalidCursor, "cursor is not one this API returned")
	}
	return id, nil
}

// AddKey serves POST /api/v1/providers/{id}/keys with {"key", "enabled",
// "rpm_limit", "tpm_limit"}.
func (s *Providers) AddKey(ctx khttp.Context) error {
	var in keyInputJSON
	if err := decode(ctx.Request(), &in); err != nil {
		return err
	}
	k, err := s.Providers.AddKey(ctx, ctx.Vars().Get("id"), in.toBiz())
	if err != nil {
		return err
	}
	return ctx.JSON(http.StatusCreated, fromKey(k))
}

// DeleteKey serves DELETE /api/v1/providers/{id}/keys/{key_id}.
func (s *Providers) DeleteKey(ctx khttp.Context) error {
	v := ctx.Vars()
	if err := s.Providers.DeleteKey(ctx, v.Get("id"), v.Get("key_id")); err != nil {
		return err
	}
	ctx.Response().WriteHeader(http.StatusNoContent)
	return nil
}

// Test serves POST /api/v1/providers/{id}/test[?model=NAME]: probes every
// key now, with a one-token generate call for model (by default the
// provider's first exact model).
func (s *Providers) Test(ctx khttp.Context) error {
	h, err := s.Probes.Test(ctx, ctx.Vars().Get("id"), ctx.Request().URL.Query().Get("model"))
	if err != nil {
		return err
	}
	return ctx.JSON(http.StatusOK, fromHealth(h))
}

// Health serves GET /api/v1/providers/{id}/health: the last probe.
func (s *Providers) Health(ctx khttp.Context) error {
	h, err := s.Probes.Last(ctx, ctx.Vars().Get("id"))
	if err != nil {
		return err
	}
	return ctx.JSON(http.StatusOK, fromHealth(h))
}

// Snapshot serves GET /internal/v1/providers/snapshot. The ETag is the
// snapshot version; a matching If-None-Match is answered 304 without
// reading Redis or building anything. The body holds decrypted keys, so it
// must not be stored by any cache on the way.
func (s *Providers) Snapshot(ctx khttp.Context) error {
	current, err := s.Snapshots.Current(ctx)
	if err != nil {
		return apperr.Wrap(err, apperr.ReasonDependencyDown, "snapshot version unavailable")
	}
	h := ctx.Response().Header()
	h.Set("Cache-Control", "no-store")
	if etagMatches(ctx.Request().Header.Get("If-None-Match"), current) {
		h.Set("ETag", etag(current))
		ctx.Response().WriteHeader(http.StatusNotModified)
		return nil
	}
	snap, err := s.Snapshots.Get(ctx, current)
	if err != nil {
		return err
	}
	if s.OnSnapshot != nil {
		s.OnSnapshot(snap.Version)
	}
	h.Set("ETag", etag(snap.Version))
	return ctx.Blob(http.StatusOK, "application/json", snap.Body)
}

func etag(v int64) string { return `"` + strconv.FormatInt(v, 10) + `"` }

// etagMatches implements If-None-Match for version etags: a list of
// (possibly weak) tags, or "*".
func etagMatches(header string, v int64) bool {
	if header == "" {
		return false
	}
	want := etag(v)
	for _, t := range strings.Split(header, ",") {
		t = strings.TrimPrefix(strings.TrimSpace(t), "W/")
		if t == "*" || t == want || t == strconv.FormatInt(v, 10) {
			return true
		}
	}
	return false
}

// decode reads a JSON body strictly: unknown fields, trailing data and
// wrong types are 400s, an over-long body is 413.
func decode(r *http.Request, v any) error {
	dec := json.NewDecoder(r.Body)
	dec.DisallowUnknownFields()
	err := dec.Decode(v)
	if err == nil {
		if _, extra := dec.Token(); extra != io.EOF {
			err = errors.New("trailing data after the JSON value")
		}
	}
	var (
		tooLarge *http.MaxBytesError
		typeErr  *json.UnmarshalTypeError
		syntax   *json.SyntaxError
	)
	switch {
	case err == nil:
		return nil
	case errors.As(err, &tooLarge):
		return apperr.Newf(apperr.ReasonBodyTooLarge, "request body is larger than %d bytes", tooLarge.Limit)
	case errors.Is(err, io.EOF):
		return apperr.New(apperr.ReasonMalformedJSON, "request body is empty; send a JSON object")
	case errors.As(err, &typeErr):
		return apperr.Newf(apperr.ReasonInvalidArgument, "%s: expected %s, got JSON %s", fieldName(typeErr), typeErr.Type, typeErr.Value)
	case errors.As(err, &syntax), errors.Is(err, io.ErrUnexpectedEOF):
		return apperr.Newf(apperr.ReasonMalformedJSON, "request body is not valid JSON: %v", err)
	case strings.HasPrefix(err.Error(), "json: unknown field"):
		return apperr.Newf(apperr.ReasonInvalidArgument, "%s", strings.TrimPrefix(err.Error(), "json: "))
	}
	return apperr.Newf(apperr.ReasonMalformedJSON, "request body: %v", err)
}

func fieldName(e *json.UnmarshalTypeError) string {
	if e.Field != "" {
		return e.Field
	}
	return fmt.Sprintf("value at offset %d", e.Offset)
}
