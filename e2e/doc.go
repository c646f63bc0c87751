// Package e2e holds the end-to-end tests of Lurus Switch: they build
// billing-service, provider-service, gateway-service and mock-upstream,
// start them as subprocesses on random ports, each with its own
// PostgreSQL database, Redis key prefix and NATS namespace, configure a
// provider, a user, a key and a price through the admin APIs, and drive
// the gateway with the official OpenAI, Anthropic and Gemini SDKs.
//
// The same stack serves the gateway benchmark (bench_test.go, enabled by
// the -gateway-bench flag).
package e2e
