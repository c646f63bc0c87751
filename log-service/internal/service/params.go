package service

import (
	"fmt"
	"net/url"
	"strconv"
	"time"

	"github.com/lurus-switch/lurus-switch/log-service/internal/biz"
	"github.com/lurus-switch/lurus-switch/lurus-common/apperr"
)

// Query parameters, by the routes that take them.
var (
	listParams    = paramSet("from", "to", "user_id", "key_id", "model", "provider_id", "status_class", "stream", "limit", "cursor")
	summaryParams = paramSet("from", "to", "user_id", "key_id", "model", "provider_id", "status_class", "stream")
	seriesParams  = paramSet("from", "to", "user_id", "model", "provider_id")
	topParams     = paramSet("from", "to", "user_id", "model", "provider_id", "limit", "sort")
)

func paramSet(names ...string) map[string]bool {
	m := make(map[string]bool, len(names))
	for _, n := range names {
		m[n] = true
	}
	return m
}

// maxParamLen bounds a filter value (the longest column value is shorter).
const maxParamLen = biz.MaxFieldLen

// rfc3339Hint is the message of every unparsable time.
const rfc3339Hint = "must be an RFC 3339 timestamp such as 2025-01-31T00:00:00Z"

// parseRequest reads the query string of a route that accepts allowed. An
// unknown or repeated parameter is INVALID_ARGUMENT, so a typo never
// silently widens a query; a bad time is INVALID_TIME_RANGE.
func parseRequest(v url.Values, allowed map[string]bool) (biz.Request, error) {
	var req biz.Request
	for name, vals := range v {
		if !allowed[name] {
			return req, apperr.Newf(apperr.ReasonInvalidArgument, "unknown query parameter %q", name)
		}
		if len(vals) != 1 {
			return req, apperr.Newf(apperr.ReasonInvalidArgument, "query parameter %q given more than once", name)
		}
		if len(vals[0]) > maxParamLen {
			return req, apperr.Newf(apperr.ReasonInvalidArgument, "%s is longer than %d bytes", name, maxParamLen)
		}
	}
	get := v.Get
	var err error
	if req.From, err = parseTime("from", get("from")); err != nil {
		return req, err
	}
	if req.To, err = parseTime("to", get("to")); err != nil {
		return req, err
	}
	req.Filter = biz.Filter{UserID: get("user_id"), KeyID: get("key_id"), Model: get("model"), ProviderID: get("provider_id")}
	if s := get("status_class"); s != "" {
		if len(s) != 3 || s[0] < '1' || s[0] > '5' || s[1:] != "xx" {
			return req, apperr.New(apperr.ReasonInvalidArgument, "status_class must be one of 1xx, 2xx, 3xx, 4xx, 5xx")
		}
		req.Filter.StatusClass = int(s[0] - '0')
	}
	switch s := get("stream"); s {
	case "":
	case "true", "false":
		b := s == "true"
		req.Filter.Stream = &b
	default:
		return req, apperr.New(apperr.ReasonInvalidArgument, "stream must be true or false")
	}
	if s := get("limit"); s != "" {
		n, err := strconv.Atoi(s)
		if err != nil {
			return req, apperr.Newf(apperr.ReasonInvalidArgument, "limit must be an integer in 1..%d", biz.MaxLimit)
		}
		req.Limit = &n
	}
	req.Cursor = get("cursor")
	if req.Sort, err = biz.ParseSortKey(get("sort")); err != nil {
		return req, err
	}
	return req, nil
}

func parseTime(name, s string) (time.Time, error) {
	if s == "" {
		return time.Time{}, nil
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		return time.Time{}, apperr.New(apperr.ReasonInvalidTimeRange, fmt.Sprintf("%s %s", name, rfc3339Hint))
	}
	return t, nil
}
