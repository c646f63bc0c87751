package natsbus

import (
	"context"
	"fmt"
	"time"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/lurus-switch/lurus-switch/lurus-common/events"
)

// StreamOptions tunes the streams EnsureStreams creates. Zero values take
// the defaults in parentheses.
type StreamOptions struct {
	Replicas        int           // (1)
	WorkAge         time.Duration // max age of billing.usage / log.write messages (7 days)
	UserEventsAge   time.Duration // max age of user events; resume reaches this far back (24 h)
	DeadAge         time.Duration // max age of dead letters (30 days)
	DuplicateWindow time.Duration // Nats-Msg-Id dedup window (10 min)
}

func (o StreamOptions) withDefaults() StreamOptions {
	if o.Replicas == 0 {
		o.Replicas = 1
	}
	if o.WorkAge == 0 {
		o.WorkAge = 7 * 24 * time.Hour
	}
	if o.UserEventsAge == 0 {
		o.UserEventsAge = 24 * time.Hour
	}
	if o.DeadAge == 0 {
		o.DeadAge = 30 * 24 * time.Hour
	}
	if o.DuplicateWindow == 0 {
		o.DuplicateWindow = 10 * time.Minute
	}
	return o
}

// StreamConfigs returns the configs of the four streams. Money-carrying
// streams never discard unconsumed messages: they are bounded by age only.
func StreamConfigs(n events.Names, o StreamOptions) []jetstream.StreamConfig {
	o = o.withDefaults()
	base := func(name string, subjects []string, age time.Duration) jetstream.StreamConfig {
		return jetstream.StreamConfig{
			Name:       n.Stream(name),
			Subjects:   subjects,
			Retention:  jetstream.LimitsPolicy,
			Storage:    jetstream.FileStorage,
			Replicas:   o.Replicas,
			MaxAge:     age,
			MaxMsgs:    -1,
			MaxBytes:   -1,
			Discard:    jetstream.DiscardOld,
			Duplicates: o.DuplicateWindow,
		}
	}
	return []jetstream.StreamConfig{
		base(events.StreamBilling, []string{n.Subject(events.SubjectBillingUsage)}, o.WorkAge),
		base(events.StreamLogs, []string{n.Subject(events.SubjectLogWrite)}, o.WorkAge),
		base(events.StreamEvents, []string{n.AllUsersFilter()}, o.UserEventsAge),
		base(events.StreamDead, []string{n.DeadSubject(events.StreamBilling), n.DeadSubject(events.StreamLogs), n.DeadSubject(events.StreamEvents)}, o.DeadAge),
	}
}

// EnsureStreams creates or updates every stream of the contract. It is
// idempotent and safe to call from every service at start.
func EnsureStreams(ctx context.Context, js jetstream.JetStream, n events.Names, o StreamOptions) error {
	for _, cfg := range StreamConfigs(n, o) {
		if _, err := js.CreateOrUpdateStream(ctx, cfg); err != nil {
			return fmt.Errorf("events: stream %s: %w", cfg.Name, err)
		}
	}
	return nil
}

// DeleteStreams removes the streams of namespace n (tests clean up with it).
func DeleteStreams(ctx context.Context, js jetstream.JetStream, n events.Names) error {
	for _, cfg := range StreamConfigs(n, StreamOptions{}) {
		if err := js.DeleteStream(ctx, cfg.Name); err != nil && err != jetstream.ErrStreamNotFound {
			return fmt.Errorf("events: delete stream %s: %w", cfg.Name, err)
		}
	}
	return nil
}
