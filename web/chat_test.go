package web_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/natter-chat/natter/client"
	"github.com/natter-chat/natter/internal/app"
	"github.com/natter-chat/natter/internal/chattest"
)

// serverHistory logs in as username with the Go client and counts the
// texts of every message in every conversation of theirs.
func serverHistory(t *testing.T, url, username string) map[string]int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c := client.New(url, client.Options{})
	if _, err := c.Login(ctx, username, password); err != nil {
		t.Fatalf("log in as %s: %v", username, err)
	}
	convs, err := c.Conversations(ctx)
	if err != nil {
		t.Fatalf("conversations of %s: %v", username, err)
	}
	counts := map[string]int{}
	for _, conv := range convs {
		for after := int64(0); ; {
			page, err := c.History(ctx, conv.ID, client.HistoryQuery{After: after, Forward: true, Limit: 500})
			if err != nil {
				t.Fatalf("history of %s: %v", conv.ID, err)
			}
			for _, m := range page.Messages {
				counts[m.Text]++
				after = m.Seq
			}
			if !page.HasMore {
				break
			}
		}
	}
	return counts
}

// TestWebClient_TwoPeopleChat: two people register in their own browsers,
// find each other, chat both ways in real time, see typing and read
// state; a reload keeps the session, the history and the unread counts.
func TestWebClient_TwoPeopleChat(t *testing.T) {
	node := chattest.StartNode(t, "", func(c *app.Config) { c.PresenceGrace = 100 * time.Millisecond })
	b := startBrowser(t, node.URL)
	alice, bob := b.newUser("alice"), b.newUser("bob")

	alice.open("/")
	alice.run(chromedp.WaitVisible("#auth-submit", chromedp.ByQuery))
	alice.screenshot("login")
	alice.register()
	bob.register()

	alice.startDirect("bob")
	alice.waitFor("bob online", `document.querySelector('#thread-sub').textContent === 'online' && document.querySelector('#conv-list .conv[data-name="bob"] .dot')?.dataset.status === 'online'`)
	alice.send("Hi Bob! Lunch today?")
	alice.waitStatus("Hi Bob! Lunch today?", "delivered") // bob's browser received it

	bob.waitFor("the new chat in bob's list", `document.querySelector('#conv-list .conv[data-name="alice"]')?.dataset.unread === '1'`)
	if got := bob.title(); got != "(1) Natter" {
		t.Errorf("bob's title = %q, want (1) Natter", got)
	}
	bob.openConv("alice")
	bob.waitMessage("Hi Bob! Lunch today?")
	alice.waitStatus("Hi Bob! Lunch today?", "read")
	bob.waitFor("the unread count to clear", `document.title === 'Natter'`)

	bob.run(chromedp.SendKeys("#composer-input", "Sure, ", chromedp.ByQuery))
	alice.waitFor("bob typing", `document.querySelector('#typing')?.textContent.includes('bob is typing')`)
	bob.send("12:30?") // after "Sure, ": the composer holds "Sure, 12:30?"
	alice.waitMessage("Sure, 12:30?")
	alice.waitFor("typing to stop", `document.querySelector('#typing').textContent === ''`)
	bob.waitStatus("Sure, 12:30?", "read")
	alice.screenshot("conversation")

	// Bob leaves the conversation; alice writes twice; bob reloads.
	bob.open("/")
	bob.waitReady()
	alice.send("12:30 works.")
	alice.send("See you there")
	bob.waitFor("two unread", `document.querySelector('#conv-list .conv[data-name="alice"]')?.dataset.unread === '2'`)
	bob.open("/")
	bob.waitReady()
	if got := bob.unreadOf("alice"); got != "2" {
		t.Errorf("after a reload bob's unread count = %s, want 2", got)
	}
	if got := bob.title(); got != "(2) Natter" {
		t.Errorf("after a reload bob's title = %q, want (2) Natter", got)
	}
	bob.screenshot("conversation-list")
	bob.openConv("alice")
	for _, text := range []string{"Hi Bob! Lunch today?", "Sure, 12:30?", "12:30 works.", "See you there"} {
		bob.waitMessage(text)
	}
	var order []string
	bob.eval(`[...document.querySelectorAll('#log .msg .text')].map(e => e.textContent)`, &order)
	want := []string{"Hi Bob! Lunch today?", "Sure, 12:30?", "12:30 works.", "See you there"}
	if len(order) != len(want) {
		t.Fatalf("bob's history after reload = %q, want %q", order, want)
	}
	for i := range want {
		if order[i] != want[i] {
			t.Fatalf("bob's history after reload = %q, want %q", order, want)
		}
	}
	alice.waitStatus("See you there", "read")

	// Bob closes the app: alice sees him go offline, with a last-seen time.
	bob.checkClean()
	bob.open("/../nothing-here.txt")
	alice.waitFor("bob offline", `document.querySelector('#thread-sub').textContent.startsWith('last seen today at') && document.querySelector('#conv-list .conv[data-name="bob"] .dot')?.dataset.status === 'offline'`)
}

// TestWebClient_Offline: bob loses the network, sees a banner, writes
// while offline, comes back; alice gets his message exactly once, and bob
// catches up with what alice wrote meanwhile. Then a message queued while
// the API is unreachable survives a reload (the outbox is in
// localStorage) and is still delivered exactly once.
func TestWebClient_Offline(t *testing.T) {
	const maxReplay = 5
	node := chattest.StartNode(t, "", func(c *app.Config) { c.MaxReplay = maxReplay })
	b := startBrowser(t, node.URL)
	alice, bob := b.newUser("alice"), b.newUser("bob")
	alice.register()
	bob.register()
	alice.startDirect("bob")
	alice.send("Are you on the train?")
	bob.openConv("alice")
	bob.waitMessage("Are you on the train?")

	bob.offline(true)
	bob.waitFor("the offline banner", `!document.querySelector('#banner').hidden && document.body.dataset.conn !== 'online'`)
	alice.send("Tell me when you are back")
	bob.send("Tunnel, back soon")
	bob.waitStatus("Tunnel, back soon", "sending")
	bob.screenshot("offline")
	bob.offline(false)

	bob.waitFor("the banner to go", `document.querySelector('#banner').hidden`)
	bob.waitMessage("Tell me when you are back")
	alice.waitMessage("Tunnel, back soon")
	bob.waitStatus("Tunnel, back soon", "read")
	if n := alice.countMessages("Tunnel, back soon"); n != 1 {
		t.Errorf("alice shows the offline message %d times, want 1", n)
	}

	// Queued offline, then the page is reloaded while the API is still
	// unreachable (the page itself loads): the message now exists only in
	// localStorage, and goes out once when the API is back.
	conv := bob.convID()
	bob.offline(true)
	bob.waitFor("the offline banner", `!document.querySelector('#banner').hidden`)
	bob.send("Queued across a reload")
	bob.waitStatus("Queued across a reload", "sending")
	bob.run(network.SetBlockedURLs([]string{"*/v1/*"}))
	bob.offline(false)
	bob.open("/c/" + conv)
	bob.waitFor("the outbox in localStorage after the reload", `Object.keys(localStorage).some(k => k.startsWith('natter.outbox.') && localStorage.getItem(k).includes('Queued across a reload'))`)
	bob.run(network.SetBlockedURLs([]string{}))
	// Like a user who does not want to wait for the next attempt.
	bob.waitFor("the connection after Retry now", `(document.querySelector('#banner button')?.click(), document.body.dataset.synced === 'true')`)
	alice.waitMessage("Queued across a reload")
	bob.waitStatus("Queued across a reload", "read")

	for _, text := range []string{"Tunnel, back soon", "Queued across a reload"} {
		if n := alice.countMessages(text); n != 1 {
			t.Errorf("alice shows %q %d times, want 1", text, n)
		}
		if n := bob.countMessages(text); n != 1 {
			t.Errorf("bob shows %q %d times, want 1", text, n)
		}
	}

	// A long absence: more changes than the node replays (MaxReplay), so
	// bob's catch-up is told resync_required: he reloads the list and the
	// open history and goes on from the cursor he was given.
	bob.offline(true)
	bob.waitFor("the offline banner", `!document.querySelector('#banner').hidden`)
	for i := 1; i <= maxReplay+2; i++ {
		alice.send(fmt.Sprintf("Catch-up %d", i))
	}
	alice.waitFor("alice's messages to be stored", fmt.Sprintf(`[...document.querySelectorAll('#log .msg')].filter(m => m.dataset.id && m.querySelector('.text').textContent.startsWith('Catch-up ')).length === %d`, maxReplay+2))
	bob.offline(false)
	bob.waitFor("every message of the long absence", fmt.Sprintf(`[...document.querySelectorAll('#log .msg .text')].filter(e => e.textContent.startsWith('Catch-up ')).length === %d`, maxReplay+2))
	if !bob.logged("resync required") {
		t.Error("bob's catch-up did not go through resync_required")
	}
	alice.send("Still there?")
	bob.waitMessage("Still there?") // live again after the resync

	history := serverHistory(t, node.URL, "alice")
	for _, text := range []string{"Tunnel, back soon", "Queued across a reload"} {
		if n := history[text]; n != 1 {
			t.Errorf("the server stored %q %d times, want 1", text, n)
		}
	}
	alice.checkClean()
	bob.checkClean()
}
