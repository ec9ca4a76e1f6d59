package loadtest

import (
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/natter-chat/natter/client"
)

// tracker follows every message of a run from send to ack to each
// delivery, without locks: message k has client id prefix+k, and its
// state lives at index k.
type tracker struct {
	prefix   string
	base     time.Time      // sent times are offsets from base (monotonic)
	sent     []atomic.Int64 // nanoseconds after base; 0 while not sent
	acked    []atomic.Bool
	received []atomic.Int32 // deliveries seen, over all receiving connections

	ack, delivery Samples
	errors        Tally
	attempts      atomic.Int64
	acks          atomic.Int64
	duplicates    atomic.Int64
}

func newTracker(prefix string, n int) *tracker {
	return &tracker{
		prefix: prefix, base: time.Now(),
		sent: make([]atomic.Int64, n), acked: make([]atomic.Bool, n), received: make([]atomic.Int32, n),
	}
}

func (t *tracker) clientID(k int) string { return t.prefix + strconv.Itoa(k) }

// sending records that message k is about to be sent, and returns the
// send time.
func (t *tracker) sending(k int) time.Time {
	now := time.Now()
	t.sent[k].Store(max(int64(now.Sub(t.base)), 1))
	t.attempts.Add(1)
	return now
}

// done records the outcome of sending message k at sentAt. A failure
// caused by the end of the measured phase (stopped) is not an error.
func (t *tracker) done(k int, sentAt time.Time, duplicate bool, err error, stopped bool) {
	switch {
	case err == nil:
		t.ack.Add(time.Since(sentAt))
		t.acked[k].Store(true)
		t.acks.Add(1)
		if duplicate {
			t.duplicates.Add(1)
		}
	case stopped:
		t.attempts.Add(-1)
	default:
		t.errors.Add(errorKind(err))
	}
}

// onPush is the OnEvent of a receiving connection: it records the delivery
// latency of each message frame of this run.
func (t *tracker) onPush(f client.ServerFrame) {
	if f.Type != client.TypeMessage {
		return
	}
	now := time.Now()
	m, err := f.Msg()
	if err != nil || m == nil {
		return
	}
	rest, ok := strings.CutPrefix(m.ClientID, t.prefix)
	if !ok {
		return
	}
	k, err := strconv.Atoi(rest)
	if err != nil || k < 0 || k >= len(t.sent) {
		return
	}
	sent := t.sent[k].Load()
	if sent == 0 {
		return
	}
	t.received[k].Add(1)
	t.delivery.Add(now.Sub(t.base) - time.Duration(sent))
}

// deliveries returns how many deliveries of acknowledged messages were
// seen.
func (t *tracker) deliveries() int64 {
	var n int64
	for k := range t.acked {
		if t.acked[k].Load() {
			n += int64(t.received[k].Load())
		}
	}
	return n
}

// waitDeliveries polls until want deliveries of acknowledged messages
// were seen or timeout passes, and returns how many were.
func (t *tracker) waitDeliveries(want int64, timeout time.Duration, stop <-chan struct{}) int64 {
	deadline := time.Now().Add(timeout)
	for {
		got := t.deliveries()
		if got >= want || time.Now().After(deadline) {
			return got
		}
		select {
		case <-time.After(20 * time.Millisecond):
		case <-stop:
			return got
		}
	}
}

// fill copies the tracker's measurements into res.
func (t *tracker) fill(res *Result, elapsed time.Duration, perMessage int64) {
	res.ElapsedSec = elapsed.Seconds()
	res.Sent = int(t.attempts.Load())
	res.Acked = int(t.acks.Load())
	res.Duplicates = int(t.duplicates.Load())
	if elapsed > 0 {
		res.SendsPerSec = float64(res.Acked) / elapsed.Seconds()
	}
	ack, delivery := t.ack.Summary(), t.delivery.Summary()
	res.Ack, res.Delivery = &ack, &delivery
	res.ExpectedDeliveries = int64(res.Acked) * perMessage
	res.Errors = t.errors.Map()
}
