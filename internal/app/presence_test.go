package app_test

import (
	"strings"
	"testing"
	"time"

	"github.com/natter-chat/natter/client"
	"github.com/natter-chat/natter/internal/app"
)

// presenceOf polls GET /v1/presence until user has status.
func presenceOf(t testing.TB, c *client.Client, user, status string) client.Presence {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		ps, err := c.Presence(ctxT(t), user)
		if err != nil {
			t.Fatal(err)
		}
		if ps[0].Status == status {
			return ps[0]
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s is %q, want %q", user, ps[0].Status, status)
		}
		time.Sleep(20 * time.Millisecond) // polling interval, not a wait for an event
	}
}

func TestPresence_TwoUsersWithSeveralDevices(t *testing.T) {
	n := startNode(t, "", func(c *app.Config) { c.PresenceGrace = 100 * time.Millisecond })
	alice, _ := n.user(t, "alice")
	bob, bobID := n.user(t, "bob")
	stranger, _ := n.user(t, "stranger")
	if _, err := alice.CreateDirect(ctxT(t), bobID); err != nil {
		t.Fatal(err)
	}
	_, aliceIn := connect(t, alice)
	_, strangerIn := connect(t, stranger)
	presenceOf(t, alice, bobID, "offline")

	phone, _ := connect(t, bob)
	laptop, _ := connect(t, bob)
	waitFrames(t, aliceIn, client.TypePresence, 1, func(f client.ServerFrame) bool { return f.User == bobID && f.Status == "online" })
	presenceOf(t, alice, bobID, "online")
	if status, body := rawRequest(t, "GET", n.URL+"/v1/users/"+bobID+"/presence", alice.Tokens().AccessToken, ""); status != 200 || !strings.Contains(body, `"status":"online"`) {
		t.Fatalf("GET /v1/users/{id}/presence: %d %s", status, body)
	}

	// One device away, the other online: online. Both away: away.
	if err := phone.SetStatus(ctxT(t), "away"); err != nil {
		t.Fatal(err)
	}
	if err := laptop.SetStatus(ctxT(t), "away"); err != nil {
		t.Fatal(err)
	}
	waitFrames(t, aliceIn, client.TypePresence, 1, func(f client.ServerFrame) bool { return f.User == bobID && f.Status == "away" })
	if err := laptop.SetStatus(ctxT(t), "sleeping"); client.ErrorCode(err) != "invalid_argument" {
		t.Fatalf("an unknown status: %v, want invalid_argument", err)
	}
	if err := laptop.SetStatus(ctxT(t), "online"); err != nil {
		t.Fatal(err)
	}
	presenceOf(t, alice, bobID, "online")

	// Closing one device keeps bob online; closing the last makes him
	// offline with a last_seen.
	_ = phone.Close()
	presenceOf(t, alice, bobID, "online")
	_ = laptop.Close()
	off := presenceOf(t, alice, bobID, "offline")
	if off.LastSeen == nil || time.Since(*off.LastSeen) > time.Minute {
		t.Fatalf("offline bob has last_seen %v", off.LastSeen)
	}
	waitFrames(t, aliceIn, client.TypePresence, 1, func(f client.ServerFrame) bool { return f.User == bobID && f.Status == "offline" && f.LastSeen != nil })
	// Someone who shares no conversation with bob is not told.
	for _, f := range framesOf(strangerIn, client.TypePresence) {
		if f.User == bobID {
			t.Fatalf("a stranger was told bob's presence: %+v", f)
		}
	}
}

func TestPresence_FlappingConnectionDoesNotFloodOthers(t *testing.T) {
	n := startNode(t, "", func(c *app.Config) { c.PresenceGrace = 2 * time.Second })
	alice, _ := n.user(t, "alice")
	bob, bobID := n.user(t, "bob")
	conv, err := alice.CreateDirect(ctxT(t), bobID)
	if err != nil {
		t.Fatal(err)
	}
	_, aliceIn := connect(t, alice)
	keep, _ := connect(t, bob)
	waitFrames(t, aliceIn, client.TypePresence, 1, func(f client.ServerFrame) bool { return f.User == bobID })
	_ = keep.Close()
	for range 10 { // reconnects within the grace period
		c, _ := connect(t, bob)
		_ = c.Close()
	}
	c, _ := connect(t, bob)
	defer c.Close()
	// A sentinel message orders the check after any presence frame.
	if _, err := bob.Send(ctxT(t), conv.ID, "sentinel", "here"); err != nil {
		t.Fatal(err)
	}
	aliceIn.waitFor(t, "the sentinel", func(ms []client.Message) bool { return len(ms) > 0 })
	if got := len(framesOf(aliceIn, client.TypePresence)); got > 2 {
		t.Fatalf("alice got %d presence frames for a flapping connection, want at most 2", got)
	}
}

func TestPresence_MissedHeartbeatsMakeAwayThenOffline(t *testing.T) {
	n := startNode(t, "", func(c *app.Config) {
		c.PresenceGrace = 50 * time.Millisecond
		c.WS.PingInterval = 50 * time.Millisecond
		c.WS.AwayAfter = 150 * time.Millisecond
		c.WS.IdleTimeout = 4 * time.Second // long enough for "away" to outlive the 1s presence debounce, even on a busy machine
	})
	alice, _ := n.user(t, "alice")
	bob, bobID := n.user(t, "bob")
	if _, err := alice.CreateDirect(ctxT(t), bobID); err != nil {
		t.Fatal(err)
	}
	_, aliceIn := connect(t, alice)
	// A half-dead device: it stops reading at the first frame (ready), so
	// it answers no ping from then on.
	dead := dialRaw(t, n, rawOptions{token: bob.Tokens().AccessToken, hold: true, holdAfter: 0})
	defer dead.release()
	waitFrames(t, aliceIn, client.TypePresence, 1, func(f client.ServerFrame) bool { return f.User == bobID && f.Status == "online" })
	// Missed pongs: away (the push may be debounced into the next window,
	// so ask), then the idle timeout drops the connection: offline.
	presenceOf(t, alice, bobID, "away")
	waitFrames(t, aliceIn, client.TypePresence, 1, func(f client.ServerFrame) bool { return f.User == bobID && f.Status == "offline" })
	presenceOf(t, alice, bobID, "offline")
}
