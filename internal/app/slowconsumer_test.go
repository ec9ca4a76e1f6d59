package app_test

import (
	"encoding/json"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/natter-chat/natter/client"
	"github.com/natter-chat/natter/internal/app"
)

func TestSlowConsumer_IsCutOffWithoutStallingOthers(t *testing.T) {
	const (
		queue    = 64
		batch    = 200
		maxSends = 5000
		workers  = 4
	)
	n := startNode(t, "", func(c *app.Config) { c.WS.QueueFrames = queue })
	sender, _ := n.user(t, "sender")
	slowUser, slowID := n.user(t, "slow")
	fastUser, fastID := n.user(t, "fast")
	group, err := sender.CreateGroup(ctxT(t), "flood", []string{slowID, fastID})
	if err != nil {
		t.Fatal(err)
	}
	// The slow reader takes its ready frame, then stops reading: its TCP
	// buffers fill and the server's queue for it grows.
	slow := dialRaw(t, n, rawOptions{token: slowUser.Tokens().AccessToken, hold: true, holdAfter: 1, backlog: maxSends + 16})
	if f := slow.next(t); f.Type != "ready" {
		t.Fatalf("slow reader's first frame is %s, want ready", f.Type)
	}
	_, fast := connect(t, fastUser)
	out, _ := connect(t, sender)
	if c := metric(t, n, "natter_ws_connections"); c != 3 {
		t.Fatalf("%v connections open, want 3", c)
	}

	text := strings.Repeat("flood ", 700) // about 4 KiB
	sent := 0
	sendBatch := func() {
		t.Helper()
		var wg sync.WaitGroup
		errs := make(chan error, workers)
		for w := range workers {
			first := sent + w*batch/workers
			wg.Go(func() {
				for i := first; i < first+batch/workers; i++ {
					if _, _, err := out.Send(ctxT(t), group.ID, fmt.Sprintf("m%d", i), text); err != nil {
						errs <- fmt.Errorf("send m%d: %w", i, err)
						return
					}
				}
			})
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Fatalf("the sender, who reads normally, could not send: %v", err)
		}
		sent += batch
	}
	for metric(t, n, "natter_ws_slow_consumer_closes_total") < 1 {
		if sent >= maxSends {
			t.Fatalf("%d messages of 4 KiB to a client that reads nothing, and it was never cut off", sent)
		}
		sendBatch()
	}
	sendBatch() // some more after the cut, to catch up on later

	// The server drops the slow connection on its own, while the client is
	// still not reading.
	deadline := time.Now().Add(10 * time.Second)
	for metric(t, n, "natter_ws_connections") != 2 {
		if time.Now().After(deadline) {
			t.Fatalf("the slow consumer's connection is still open on the server 10s after it was cut off")
		}
		<-time.After(20 * time.Millisecond) // poll interval
	}
	if got := metric(t, n, "natter_ws_slow_consumer_closes_total"); got != 1 {
		t.Errorf("%v connections were closed as slow consumers, want 1 (only the one that stopped reading)", got)
	}

	// The reader who kept up got every message, in order, with no gap.
	got := fast.waitFor(t, "every message", func(ms []client.Message) bool { return len(ms) >= sent })
	for i, m := range got {
		if m.Seq != int64(i+1) || m.ClientID == "" {
			t.Fatalf("the fast reader's message %d has seq %d: lost or reordered behind the slow one", i, m.Seq)
		}
	}
	if len(got) != sent {
		t.Fatalf("the fast reader got %d messages, %d were sent", len(got), sent)
	}

	// Once the slow client reads again it finds its connection ended, after
	// a prefix of the messages without gaps.
	slow.release()
	slow.closeCode(t)
	var last int64
	for len(slow.frames) > 0 {
		var f client.ServerFrame
		if err := json.Unmarshal(<-slow.frames, &f); err != nil {
			t.Fatal(err)
		}
		if f.Type != client.TypeMessage {
			continue
		}
		m, err := f.Msg()
		if err != nil || m == nil {
			t.Fatalf("bad message frame: %v", err)
		}
		if m.Seq != last+1 {
			t.Fatalf("the slow reader got seq %d after %d: a gap inside what it was sent", m.Seq, last)
		}
		last = m.Seq
	}
	if last >= int64(sent) {
		t.Fatalf("the slow reader got all %d messages live: it was never behind", sent)
	}

	// It reconnects and catches up on exactly what it missed.
	again, _ := connect(t, slowUser)
	missed, err := again.CatchUp(ctxT(t), group.ID, last)
	if err != nil {
		t.Fatal(err)
	}
	if len(missed) != sent-int(last) {
		t.Fatalf("catch-up after seq %d gave %d messages, want %d", last, len(missed), sent-int(last))
	}
	for i, m := range missed {
		if m.Seq != last+int64(i)+1 {
			t.Fatalf("catch-up message %d has seq %d, want %d", i, m.Seq, last+int64(i)+1)
		}
	}
	t.Logf("cut off after %d live messages of %d", last, sent)
}
