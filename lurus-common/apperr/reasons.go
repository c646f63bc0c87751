package apperr

// Reason is a stable, machine-readable error code. Clients match on it, so a
// reason is never renamed once released. Every shared reason is declared
// here, with the kind it belongs to; a reason only one service answers with
// is declared in that service and added to this registry with Register
// (log-service's INVALID_LOG_RECORD).
type Reason string

// Kind returns the kind the reason is registered with (KindInternal for an
// unregistered reason).
func (r Reason) Kind() Kind {
	if k, ok := registry[r]; ok {
		return k
	}
	return KindInternal
}

// The registry. Grouped by kind; add new reasons at the end of a group.
const (
	// internal
	ReasonInternal Reason = "INTERNAL"

	// invalid input
	ReasonInvalidArgument   Reason = "INVALID_ARGUMENT"
	ReasonMalformedJSON     Reason = "MALFORMED_JSON"
	ReasonMissingModel      Reason = "MISSING_MODEL"
	ReasonInvalidAmount     Reason = "INVALID_AMOUNT"
	ReasonInvalidIdemKey    Reason = "INVALID_IDEMPOTENCY_KEY"
	ReasonInvalidCursor     Reason = "INVALID_CURSOR"
	ReasonInvalidTimeRange  Reason = "INVALID_TIME_RANGE"
	ReasonUnknownType       Reason = "UNKNOWN_PROVIDER_TYPE"
	ReasonInvalidURL        Reason = "INVALID_URL"
	ReasonPrivateNetwork    Reason = "PRIVATE_NETWORK_NOT_ALLOWED"
	ReasonInvalidGlob       Reason = "INVALID_GLOB"
	ReasonEmptyModels       Reason = "EMPTY_MODEL_LIST"
	ReasonInvalidWeight     Reason = "INVALID_WEIGHT"
	ReasonInvalidDeviceID   Reason = "INVALID_DEVICE_ID"
	ReasonInvalidMessage    Reason = "INVALID_MESSAGE"
	ReasonUnsupportedAction Reason = "UNSUPPORTED_ACTION"
	// ReasonDuplicateKey: a JSON object of a request body repeats a key
	// (after decoding escapes); readers disagree on which one counts.
	ReasonDuplicateKey Reason = "DUPLICATE_KEY"
	// ReasonAmountOutOfRange: an amount, price or limit above its bound
	// (lurus-common/money), or a sum that would not fit in an int64.
	ReasonAmountOutOfRange Reason = "AMOUNT_OUT_OF_RANGE"
	// ReasonUnsupportedParameter: a translated call asks for a field the
	// serving provider's API cannot express, and dropping it would change
	// the answer (the message names the field).
	ReasonUnsupportedParameter Reason = "UNSUPPORTED_PARAMETER"
	// ReasonExceedsTPM: the request's token estimate alone (prompt + output
	// cap × choices) is above a tokens-per-minute limit, so no window can
	// ever admit it; waiting does not help, so it is not a 429.
	ReasonExceedsTPM Reason = "REQUEST_EXCEEDS_TPM_LIMIT"

	// model names (lurus-common/modelname) and Gemini actions
	ReasonInvalidModelName   Reason = "INVALID_MODEL_NAME"
	ReasonInvalidModelAction Reason = "INVALID_MODEL_ACTION"

	// unauthenticated
	ReasonMissingCredentials Reason = "MISSING_CREDENTIALS"
	ReasonInvalidCredentials Reason = "INVALID_CREDENTIALS"
	ReasonInvalidTicket      Reason = "INVALID_TICKET"

	// forbidden
	ReasonForbidden       Reason = "FORBIDDEN"
	ReasonModelNotAllowed Reason = "MODEL_NOT_ALLOWED"
	ReasonIPNotAllowed    Reason = "IP_NOT_ALLOWED"
	ReasonKeyExpired      Reason = "KEY_EXPIRED"
	ReasonKeyRevoked      Reason = "KEY_REVOKED"
	ReasonUserDisabled    Reason = "USER_DISABLED"
	ReasonOriginForbidden Reason = "ORIGIN_NOT_ALLOWED"

	// not found
	ReasonNotFound         Reason = "NOT_FOUND"
	ReasonUserNotFound     Reason = "USER_NOT_FOUND"
	ReasonKeyNotFound      Reason = "KEY_NOT_FOUND"
	ReasonProviderNotFound Reason = "PROVIDER_NOT_FOUND"
	ReasonModelNotFound    Reason = "MODEL_NOT_FOUND"
	ReasonRouteNotFound    Reason = "ROUTE_NOT_FOUND"
	ReasonPriceNotFound    Reason = "PRICE_NOT_FOUND"
	ReasonLogNotFound      Reason = "LOG_NOT_FOUND"

	// conflict
	ReasonConflict        Reason = "CONFLICT"
	ReasonDuplicateName   Reason = "DUPLICATE_NAME"
	ReasonIdemKeyReused   Reason = "IDEMPOTENCY_KEY_REUSED"
	ReasonAlreadyExists   Reason = "ALREADY_EXISTS"
	ReasonVersionConflict Reason = "VERSION_CONFLICT"
	// ReasonBalanceOutOfRange: a top-up or adjustment would take the
	// balance past ±money.MaxBalance.
	ReasonBalanceOutOfRange Reason = "BALANCE_OUT_OF_RANGE"

	// rate limited
	ReasonRateLimited   Reason = "RATE_LIMITED"
	ReasonQuotaExceeded Reason = "QUOTA_EXCEEDED"
	ReasonUpstreamLimit Reason = "UPSTREAM_RATE_LIMITED"
	// ReasonRateLimitedRPM, ReasonRateLimitedTPM, ReasonConcurrencyLimited:
	// a rate limit of the caller's key or user (requests or tokens per
	// minute, requests in flight) refused the request, or every upstream
	// key that could serve it is at its own limit (lurus-common/ratelimit).
	ReasonRateLimitedRPM     Reason = "RATE_LIMITED_RPM"
	ReasonRateLimitedTPM     Reason = "RATE_LIMITED_TPM"
	ReasonConcurrencyLimited Reason = "CONCURRENCY_LIMITED"

	// insufficient funds
	ReasonInsufficientBalance Reason = "INSUFFICIENT_BALANCE"
	ReasonKeySpendLimit       Reason = "KEY_SPEND_LIMIT_REACHED"

	// unavailable
	ReasonUnavailable    Reason = "UNAVAILABLE"
	ReasonNoProvider     Reason = "NO_PROVIDER_AVAILABLE"
	ReasonAdmissionDown  Reason = "ADMISSION_UNAVAILABLE"
	ReasonDependencyDown Reason = "DEPENDENCY_UNAVAILABLE"
	// ReasonEventsDown: the gateway can neither publish usage events nor
	// keep them in its file outbox (NATS unreachable and the outbox's disk
	// full or not writable), so a billable request would go unbilled.
	ReasonEventsDown          Reason = "EVENTS_UNAVAILABLE"
	ReasonShuttingDown        Reason = "SHUTTING_DOWN"
	ReasonCircuitOpen         Reason = "CIRCUIT_OPEN"
	ReasonUpstreamUnavailable Reason = "UPSTREAM_UNAVAILABLE"

	// too large
	ReasonBodyTooLarge Reason = "BODY_TOO_LARGE"

	// timeout
	ReasonUpstreamTimeout Reason = "UPSTREAM_TIMEOUT"

	// bad gateway
	ReasonUpstreamError Reason = "UPSTREAM_ERROR"
)

var registry = map[Reason]Kind{
	ReasonInternal: KindInternal,

	ReasonInvalidArgument:   KindInvalid,
	ReasonMalformedJSON:     KindInvalid,
	ReasonMissingModel:      KindInvalid,
	ReasonInvalidAmount:     KindInvalid,
	ReasonInvalidIdemKey:    KindInvalid,
	ReasonInvalidCursor:     KindInvalid,
	ReasonInvalidTimeRange:  KindInvalid,
	ReasonUnknownType:       KindInvalid,
	ReasonInvalidURL:        KindInvalid,
	ReasonPrivateNetwork:    KindInvalid,
	ReasonInvalidGlob:       KindInvalid,
	ReasonEmptyModels:       KindInvalid,
	ReasonInvalidWeight:     KindInvalid,
	ReasonInvalidDeviceID:   KindInvalid,
	ReasonInvalidMessage:    KindInvalid,
	ReasonUnsupportedAction: KindNotFound,
	ReasonDuplicateKey:      KindInvalid,
	ReasonAmountOutOfRange:  KindInvalid,

	ReasonInvalidModelName:   KindInvalid,
	ReasonInvalidModelAction: KindInvalid,

	ReasonUnsupportedParameter: KindInvalid, // translation
	ReasonExceedsTPM:           KindInvalid, // rate limits

	ReasonMissingCredentials: KindUnauthenticated,
	ReasonInvalidCredentials: KindUnauthenticated,
	ReasonInvalidTicket:      KindUnauthenticated,

	ReasonForbidden:       KindForbidden,
	ReasonModelNotAllowed: KindForbidden,
	ReasonIPNotAllowed:    KindForbidden,
	ReasonKeyExpired:      KindForbidden,
	ReasonKeyRevoked:      KindUnauthenticated,
	ReasonUserDisabled:    KindForbidden,
	ReasonOriginForbidden: KindForbidden,

	ReasonNotFound:         KindNotFound,
	ReasonUserNotFound:     KindNotFound,
	ReasonKeyNotFound:      KindNotFound,
	ReasonProviderNotFound: KindNotFound,
	ReasonModelNotFound:    KindNotFound,
	ReasonRouteNotFound:    KindNotFound,
	ReasonPriceNotFound:    KindNotFound,
	ReasonLogNotFound:      KindNotFound,

	ReasonConflict:        KindConflict,
	ReasonDuplicateName:   KindConflict,
	ReasonIdemKeyReused:   KindConflict,
	ReasonAlreadyExists:   KindConflict,
	ReasonVersionConflict: KindConflict,

	ReasonBalanceOutOfRange: KindConflict,

	ReasonRateLimited:   KindRateLimited,
	ReasonQuotaExceeded: KindRateLimited,
	ReasonUpstreamLimit: KindRateLimited,

	ReasonRateLimitedRPM:     KindRateLimited,
	ReasonRateLimitedTPM:     KindRateLimited,
	ReasonConcurrencyLimited: KindRateLimited,

	ReasonInsufficientBalance: KindInsufficientFunds,
	ReasonKeySpendLimit:       KindInsufficientFunds,

	ReasonUnavailable:         KindUnavailable,
	ReasonNoProvider:          KindUnavailable,
	ReasonAdmissionDown:       KindUnavailable,
	ReasonDependencyDown:      KindUnavailable,
	ReasonEventsDown:          KindUnavailable,
	ReasonShuttingDown:        KindUnavailable,
	ReasonCircuitOpen:         KindUnavailable,
	ReasonUpstreamUnavailable: KindUnavailable,

	ReasonBodyTooLarge: KindTooLarge,

	ReasonUpstreamTimeout: KindTimeout,

	ReasonUpstreamError: KindBadGateway,
}

// Register adds a service-specific reason to the registry. Call it only from
// package init of the owning service; registering a reason twice with a
// different kind panics, because two meanings for one code break clients.
func Register(r Reason, k Kind) {
	if old, ok := registry[r]; ok && old != k {
		panic("apperr: reason " + string(r) + " registered twice with different kinds")
	}
	registry[r] = k
}

// Registered returns a copy of the registry: every reason known to this
// process (the common ones and those its packages registered) with its kind.
func Registered() map[Reason]Kind {
	out := make(map[Reason]Kind, len(registry))
	for r, k := range registry {
		out[r] = k
	}
	return out
}
