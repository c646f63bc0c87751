package natsbus

import (
	"context"
)

// AckMode is how the runner acknowledges a message its handler succeeded
// on (ConsumerConfig.AckMode).
type AckMode int

// The ack modes.
const (
	// AckSync, the default, acknowledges with a round trip to the server
	// (AckSync / DoubleAck): once it returns, the server has recorded the
	// ack and will not redeliver the message.
	AckSync AckMode = iota
	// AckAsync sends the acknowledgement without waiting for the server's
	// reply. It costs the server and the client a fraction of AckSync (no
	// reply message per ack), which is what bounds a high-volume consumer;
	// in exchange an ack lost on the way goes unnoticed and the message is
	// redelivered after AckWait. Choose it only for handlers whose
	// redelivery is harmless and cheap, i.e. idempotent by a key they
	// check before writing (log-service's log.write consumer); keep
	// AckSync where a redelivery costs (billing).
	AckAsync
)

// ack acknowledges d the way the config says.
func (c *Consumer) ack(ctx context.Context, d Delivery) error {
	if c.cfg.AckMode == AckAsync {
		return d.Msg.Ack()
	}
	return d.Msg.DoubleAck(ctx)
}
