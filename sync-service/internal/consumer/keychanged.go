// Package consumer holds sync-service's NATS subscribers other than the
// user-event feed: key.changed, which evicts cached key verifications and
// ends the sessions of a changed key or user.
package consumer

import (
	"log/slog"

	"github.com/nats-io/nats.go"

	"github.com/lurus-switch/lurus-switch/lurus-common/events"
	"github.com/lurus-switch/lurus-switch/lurus-common/events/natsbus"
	"github.com/lurus-switch/lurus-switch/lurus-common/keyauth"
	"github.com/lurus-switch/lurus-switch/sync-service/internal/biz"
)

// KeyChanged subscribes to the core NATS key.changed notifications of
// names' namespace. For each: the key (or every key of the user) leaves
// the verification cache, and the sessions it authenticated are closed
// with "credentials changed", so a revoked key or a disabled user stops
// receiving events at once, and a ticket issued to a revoked key is
// refused when redeemed; a client whose key is still valid reconnects and
// resumes without loss.
func KeyChanged(nc *nats.Conn, names events.Names, keys *keyauth.Cache, sessions *biz.SessionRegistry, log *slog.Logger) (*nats.Subscription, error) {
	return natsbus.SubscribeKeyChanged(nc, names, log, func(kc events.KeyChanged) {
		keys.Evict(kc.KeyID, kc.UserID)
		n := sessions.CloseKey(kc.KeyID, kc.UserID)
		log.Info("key.changed", "key_id", kc.KeyID, "user_id", kc.UserID, "sessions_closed", n)
	})
}
