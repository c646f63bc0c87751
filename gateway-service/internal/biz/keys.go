package biz

import "github.com/lurus-switch/lurus-switch/lurus-common/keyauth"

// KeyInfo is a verified API key. The gateway authorizes keys the way every
// service does (lurus-common/keyauth); on the relay routes it adds the
// model allow-list (KeyInfo.AuthorizeModel).
type KeyInfo = keyauth.Info

// KeyCache verifies keys with billing-service and keeps the answers
// (lurus-common/keyauth: TTLs, the stale bound, eviction on key.changed).
type KeyCache = keyauth.Cache
