package natsbus

// HoldReplaySlot takes one of f's replay slots, as a running replay does,
// until release is called.
func HoldReplaySlot(f *Feed) (release func()) {
	f.replays <- struct{}{}
	return func() { <-f.replays }
}
