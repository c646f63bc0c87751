// Package data implements the interfaces internal/biz declares against the
// real dependencies: billing-service's internal routes (key verification,
// sync state) and Redis (tickets).
package data
