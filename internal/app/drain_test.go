package app_test

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/natter-chat/natter/client"
)

func TestDrain_ClientsReconnectAndNoAcknowledgedSendIsLost(t *testing.T) {
	const jitter = 50 * time.Millisecond // startNode's DrainJitter
	dir := t.TempDir()
	n := startNode(t, dir)
	owner, _ := n.user(t, "owner")
	users := []*client.Client{owner}
	var ids []string
	for range 3 {
		c, id := n.user(t, "member")
		users = append(users, c)
		ids = append(ids, id)
	}
	group, err := owner.CreateGroup(ctxT(t), "drain", ids)
	if err != nil {
		t.Fatal(err)
	}
	conns := make([]*client.Conn, len(users))
	inboxes := make([]*inbox, len(users))
	for i, u := range users {
		conns[i], inboxes[i] = connect(t, u)
	}

	// Every user sends without pause over its WebSocket, and the owner over
	// REST too, until the node goes away under them.
	var (
		mu    sync.Mutex
		acked []client.Message
		wg    sync.WaitGroup
	)
	record := func(m client.Message) {
		mu.Lock()
		acked = append(acked, m)
		mu.Unlock()
	}
	for i, conn := range conns {
		wg.Go(func() {
			for j := 0; ; j++ {
				m, _, err := conn.Send(ctxT(t), group.ID, fmt.Sprintf("ws-%d-%d", i, j), "in flight")
				if err != nil {
					return
				}
				record(m)
			}
		})
	}
	wg.Go(func() {
		for j := 0; ; j++ {
			r, err := owner.Send(ctxT(t), group.ID, fmt.Sprintf("rest-%d", j), "in flight over REST")
			if err != nil {
				return
			}
			record(r.Message)
		}
	})
	deadline := time.Now().Add(20 * time.Second)
	for {
		mu.Lock()
		count := len(acked)
		mu.Unlock()
		if count >= 100 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("only %d sends acknowledged in 20s", count)
		}
		<-time.After(10 * time.Millisecond) // poll interval
	}

	n.stop()
	stopped := make(chan struct{})
	go func() { wg.Wait(); close(stopped) }()
	select {
	case <-stopped:
	case <-time.After(20 * time.Second):
		t.Fatalf("senders still running 20s after the node stopped")
	}

	// Every client was told to come back after a jittered delay, and then
	// closed with 1001 (going away).
	for i, conn := range conns {
		select {
		case <-conn.Done():
		case <-time.After(10 * time.Second):
			t.Fatalf("connection %d still open after the node stopped", i)
		}
		if code := conn.CloseCode(); code != 1001 {
			t.Errorf("connection %d closed with %d (%v), want 1001", i, code, conn.Err())
		}
		var reconnect *client.ServerFrame
		deadline := time.Now().Add(10 * time.Second)
		for reconnect == nil && time.Now().Before(deadline) {
			frames := inboxes[i].frames()
			if k := slices.IndexFunc(frames, func(f client.ServerFrame) bool { return f.Type == client.TypeReconnect }); k >= 0 {
				reconnect = &frames[k]
				break
			}
			<-time.After(10 * time.Millisecond) // poll interval
		}
		if reconnect == nil {
			t.Errorf("connection %d got no reconnect frame before it closed", i)
		} else if after := time.Duration(reconnect.AfterMS) * time.Millisecond; after < 0 || after >= jitter {
			t.Errorf("connection %d was told to reconnect after %v, want within the %v jitter", i, after, jitter)
		}
	}

	// A node on the same data holds every acknowledged message, unchanged,
	// and the old tokens still work (same signing key).
	n2 := startNode(t, dir)
	again := client.New(n2.URL, client.Options{})
	again.SetTokens(owner.Tokens())
	stored := historyAfter(t, again, group.ID, 0)
	byID := make(map[string]client.Message, len(stored))
	for i, m := range stored {
		if m.Seq != int64(i+1) {
			t.Fatalf("stored message %d has seq %d: a gap after the restart", i, m.Seq)
		}
		byID[m.ID] = m
	}
	for _, m := range acked {
		s, ok := byID[m.ID]
		if !ok {
			t.Errorf("acknowledged message %s (seq %d) was lost in the shutdown", m.ClientID, m.Seq)
			continue
		}
		if s.Seq != m.Seq || s.Text != m.Text || s.ClientID != m.ClientID {
			t.Errorf("acknowledged %+v but stored %+v", m, s)
		}
	}
	t.Logf("%d sends acknowledged, %d stored", len(acked), len(stored))

	// And the new node takes new connections and sends.
	conn, _ := connect(t, again)
	if _, _, err := conn.Send(ctxT(t), group.ID, "after-restart", "back"); err != nil {
		t.Fatalf("send after the restart: %v", err)
	}
}
