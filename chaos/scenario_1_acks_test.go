package chaos

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/lurus-switch/lurus-switch/lurus-common/events"
)

// Scenario 1, forced: billing-service is SIGKILLed exactly between commit
// and ack. Its NATS connection goes through a fault proxy that starts
// losing the acks billing sends while messages are being settled; once
// the usage rows of messages delivered beyond the server's ack floor are
// all committed, the process is killed, so
// those messages are settled in PostgreSQL and unacknowledged in
// JetStream. The restarted consumer gets them again and must not settle
// them twice. Each round sends load for a moment, loses the acks, stops
// the load (so no new delivery is in flight), waits for the commits and
// kills. CHAOS_ACK_KILLS rounds (default 5).
func TestBillingKilledBetweenCommitAndAck(t *testing.T) {
	kills := envInt("CHAOS_ACK_KILLS", 5)
	var fp *natsFault
	s := startStack(t, stackOptions{
		MockArgs: []string{"-usage", "prompt=1,completion=20", "-latency-ms", "5"},
		BillingNATS: func(url string) string {
			fp = newNATSFault(t, strings.TrimPrefix(url, "nats://"))
			return "nats://" + fp.Addr
		},
	})
	tn := s.setup(tenantOptions{TopupMicros: 50_000_000})
	nc, err := nats.Connect(s.NATSURL, nats.Timeout(2*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	names := events.NewNames("")
	st, err := js.Stream(context.Background(), names.Stream(events.StreamBilling))
	if err != nil {
		t.Fatal(err)
	}

	tr := newTraffic()
	var between, rounds int
	for range kills {
		load := startLoad(s.GatewayURLs, tn.Key, 20, 4, tr)
		time.Sleep(300 * time.Millisecond) // settling under load
		fp.DropAcks(true)
		time.Sleep(100 * time.Millisecond) // deliveries whose acks are lost
		load.stop()
		// Wait until a moment when every message delivered beyond the ack
		// floor has its row committed: each is then between commit and ack.
		var pending []string
		var unacked int
		s.eventually(30*time.Second, "the unacknowledged deliveries are committed", func() bool {
			ci, err := consumerInfo(context.Background(), js, names)
			if err != nil || ci.NumAckPending == 0 {
				return false
			}
			pending = pending[:0]
			// Above the ack floor: every unacknowledged message (and some
			// acknowledged out of order).
			for seq := ci.AckFloor.Stream + 1; seq <= ci.Delivered.Stream; seq++ {
				m, err := st.GetMsg(context.Background(), seq)
				if errors.Is(err, jetstream.ErrMsgNotFound) {
					continue
				} else if err != nil {
					return false
				}
				envs, err := events.ParseBody(m.Data)
				if err != nil {
					t.Fatalf("stream seq %d: %v", seq, err)
				}
				for _, e := range envs {
					pending = append(pending, e.ID)
				}
			}
			var missing int
			if err := s.BillingDB.QueryRow(context.Background(), `SELECT count(*) FROM unnest($1::text[]) AS a(id)
				WHERE NOT EXISTS (SELECT 1 FROM usage_records u WHERE u.request_id = a.id)`, pending).Scan(&missing); err != nil {
				return false
			}
			unacked = ci.NumAckPending
			return len(pending) > 0 && missing == 0
		})
		s.Billing.Kill()
		fp.DropAcks(false)
		fp.CutConns()
		between += unacked // messages (batches), as JetStream counts them
		rounds++
		s.RestartBilling()
	}
	rep := checkInvariants(s, tr, 0)
	t.Logf("RESULT scenario=1-forced kills=%d committed_unacked_at_kill=%d requests=%d accepted=%d statuses=%v %s",
		rounds, between, tr.Total(), tr.Accepted(), tr.statuses, rep)
	if between == 0 {
		t.Errorf("no message was committed and unacknowledged at a kill: the fault did not happen")
	}
	if rep.Redelivered < uint64(between) {
		t.Errorf("%d messages were committed and unacknowledged at the kills, only %d redeliveries", between, rep.Redelivered)
	}
}
