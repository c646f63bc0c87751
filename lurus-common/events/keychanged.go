package events

import (
	"encoding/json"
	"fmt"
	"log/slog"

	"github.com/nats-io/nats.go"
)

// SubscribeKeyChanged calls fn for every key.changed notification in
// names' namespace: what each service's key cache (lurus-common/keyauth)
// evicts on. Core NATS delivers at most once; a notification that is lost
// is covered by the caches' bounded TTLs. An undecodable message, or one
// naming neither key nor user, is logged and skipped.
func SubscribeKeyChanged(nc *nats.Conn, names Names, log *slog.Logger, fn func(KeyChanged)) (*nats.Subscription, error) {
	sub, err := nc.Subscribe(names.Subject(SubjectKeyChanged), func(m *nats.Msg) {
		var kc KeyChanged
		if err := json.Unmarshal(m.Data, &kc); err != nil || (kc.KeyID == "" && kc.UserID == "") {
			log.Warn("key.changed: undecodable message ignored", "err", err)
			return
		}
		fn(kc)
	})
	if err != nil {
		return nil, fmt.Errorf("subscribe %s: %w", SubjectKeyChanged, err)
	}
	return sub, nil
}
