package web_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/natter-chat/natter/client"
	"github.com/natter-chat/natter/internal/chattest"
)

// TestWebClient_LongHistory: bob signs in (not registers) to find 120
// unread messages; opening the chat shows the newest page, scrolling up
// loads the rest in order, and logging out ends the session for good.
func TestWebClient_LongHistory(t *testing.T) {
	const total = 120
	node := chattest.StartNode(t, "")
	b := startBrowser(t, node.URL)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	alice, bobAPI := client.New(node.URL, client.Options{}), client.New(node.URL, client.Options{})
	if _, err := alice.Register(ctx, "alice", password); err != nil {
		t.Fatal(err)
	}
	bobAuth, err := bobAPI.Register(ctx, "bob", password)
	if err != nil {
		t.Fatal(err)
	}
	conv, err := alice.CreateDirect(ctx, bobAuth.User.ID)
	if err != nil {
		t.Fatal(err)
	}
	for i := 1; i <= total; i++ {
		if _, err := alice.Send(ctx, conv.ID, fmt.Sprintf("c-%d", i), fmt.Sprintf("Message %d", i)); err != nil {
			t.Fatal(err)
		}
	}

	bob := b.newUser("bob")
	bob.open("/")
	bob.run(
		chromedp.WaitVisible("#auth-username", chromedp.ByQuery),
		chromedp.SendKeys("#auth-username", "bob", chromedp.ByQuery),
		chromedp.SendKeys("#auth-password", "wrong password", chromedp.ByQuery),
		chromedp.Click("#auth-submit", chromedp.ByQuery),
	)
	bob.waitFor("the wrong-password message", `document.querySelector('#auth-error').textContent === 'Wrong username or password.'`)
	bob.run(
		chromedp.Evaluate(`document.querySelector('#auth-password').value = ''`, nil),
		chromedp.SendKeys("#auth-password", password, chromedp.ByQuery),
		chromedp.Click("#auth-submit", chromedp.ByQuery),
	)
	bob.waitReady()
	if got := bob.unreadOf("alice"); got != fmt.Sprint(total) {
		t.Errorf("unread = %s, want %d", got, total)
	}
	bob.openConv("alice")
	bob.waitMessage(fmt.Sprintf("Message %d", total))
	var shown int
	bob.eval(`document.querySelectorAll('#log .msg').length`, &shown)
	if shown >= total {
		t.Errorf("opening the chat rendered %d messages; history should load lazily", shown)
	}
	// Scroll up until the start of the conversation.
	bob.waitFor("the whole history", `(document.querySelector('#log').scrollTop = 0, !!document.querySelector('#log-start'))`)
	var texts []string
	bob.eval(`[...document.querySelectorAll('#log .msg .text')].map(e => e.textContent)`, &texts)
	if len(texts) != total {
		t.Fatalf("after scrolling up the log holds %d messages, want %d", len(texts), total)
	}
	for i, text := range texts {
		if want := fmt.Sprintf("Message %d", i+1); text != want {
			t.Fatalf("message %d is %q, want %q", i, text, want)
		}
	}
	bob.waitFor("the unread count to clear", `document.title === 'Natter'`)

	// Finding people pages through the results 20 at a time.
	for i := range 23 {
		if _, err := client.New(node.URL, client.Options{}).Register(ctx, fmt.Sprintf("pal%02d", i), password); err != nil {
			t.Fatal(err)
		}
	}
	bob.click("#new-chat")
	bob.run(chromedp.WaitVisible("#dlg-new-chat .user-search", chromedp.ByQuery), chromedp.SendKeys("#dlg-new-chat .user-search", "pal", chromedp.ByQuery))
	bob.waitFor("a first page of 20", `document.querySelectorAll('#dlg-new-chat .user-result').length === 20`)
	bob.click("#dlg-new-chat .more")
	bob.waitFor("all 23 after More results", `document.querySelectorAll('#dlg-new-chat .user-result').length === 23 && document.querySelector('#dlg-new-chat .more').hidden`)
	// In a search field the first Escape clears it (the browser's own
	// behaviour); the next one closes the dialog.
	bob.run(press("Escape", 27, ""))
	bob.waitFor("Escape to clear the search", `document.querySelector('#dlg-new-chat .user-search').value === ''`)
	bob.run(press("Escape", 27, ""))
	bob.waitFor("Escape to close the dialog", `!document.querySelector('#dlg-new-chat')`)

	bob.click("#logout")
	bob.waitFor("the sign-in form", `!!document.querySelector('#auth') && !Object.keys(localStorage).some(k => k === 'natter.session')`)
	bob.open("/")
	bob.run(chromedp.WaitVisible("#auth", chromedp.ByQuery))
	if sessions, err := bobAPI.Sessions(ctx); err != nil || len(sessions) != 1 {
		t.Errorf("bob's live sessions after the web logout: %d (err %v), want only the Go client's", len(sessions), err)
	}
	bob.checkClean()
}
