package events

// Message header names. A message of envelopes carries HeaderType (beside
// Nats-Msg-Id: the envelope id, or a batch id); a dead letter carries the
// HeaderDead ones, saying where it came from and why it was given up on.
const (
	HeaderType       = "Lurus-Type"
	HeaderDeadReason = "Lurus-Dead-Reason"
	HeaderDeadFrom   = "Lurus-Dead-Subject"
	HeaderDeadSeq    = "Lurus-Dead-Stream-Seq"
	// HeaderDeadPart is the index of a dead-lettered envelope in its batch
	// message (absent when the message carried one envelope).
	HeaderDeadPart = "Lurus-Dead-Part"
)
