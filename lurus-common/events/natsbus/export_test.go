package natsbus

import "github.com/lurus-switch/lurus-switch/lurus-common/events"

// HoldReplaySlot takes one of f's replay slots, as a running replay does,
// until release is called.
func HoldReplaySlot(f *Feed) (release func()) {
	f.replays <- struct{}{}
	return func() { <-f.replays }
}

// Dispatch hands env, stored at stream sequence seq, to f's subscribers as
// its live consumer does (a test plays a lagging consumer with it).
func Dispatch(f *Feed, userID string, env events.Envelope, seq uint64) { f.dispatch(userID, env, seq) }
