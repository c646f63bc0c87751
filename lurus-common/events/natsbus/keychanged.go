package natsbus

import (
	"encoding/json"
	"fmt"
	"log/slog"

	"github.com/nats-io/nats.go"

	"github.com/lurus-switch/lurus-switch/lurus-common/events"
)

// SubscribeKeyChanged calls fn for every key.changed notification in
// names' namespace: what each service's key cache (lurus-common/keyauth)
// evicts on. Core NATS delivers at most once; a notification that is lost
// is covered by the caches' bounded TTLs. An undecodable message, or one
// naming neither key nor user, is logged and skipped.
func SubscribeKeyChanged(nc *nats.Conn, names events.Names, log *slog.Logger, fn func(events.KeyChanged)) (*nats.Subscription, error) {
	sub, err := nc.Subscribe(names.Subject(events.SubjectKeyChanged), func(m *nats.Msg) {
		var kc events.KeyChanged
		if err := json.Unmarshal(m.Data, &kc); err != nil || (kc.KeyID == "" && kc.UserID == "") {
			log.Warn("key.changed: undecodable message ignored", "err", err)
			return
		}
		fn(kc)
	})
	if err != nil {
		return nil, fmt.Errorf("subscribe %s: %w", events.SubjectKeyChanged, err)
	}
	return sub, nil
}
