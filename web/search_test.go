package web_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/natter-chat/natter/client"
	"github.com/natter-chat/natter/internal/app"
	"github.com/natter-chat/natter/internal/chattest"
)

// TestWebClient_Search: "/" focuses the search box; "cafe" finds the
// accented "café" with the word highlighted, and a hostile message found
// by the search stays text; a click on a result far back in the history
// opens the conversation at that message.
func TestWebClient_Search(t *testing.T) {
	node := chattest.StartNode(t, "", func(c *app.Config) { c.SearchInterval = 50 * time.Millisecond })
	b := startBrowser(t, node.URL)
	alice, bob := b.newUser("alice"), b.newUser("bob")
	alice.register()
	bob.register()
	alice.startDirect("bob")
	conv := alice.convID()
	hostile := `<img src=x onerror="window.__pwned=1"> cafe?`
	alice.send("Rendez-vous au Café à midi")
	alice.send(hostile)

	// Enough later messages that the café one is not in the first page.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	c := client.New(node.URL, client.Options{})
	if _, err := c.Login(ctx, "bob", password); err != nil {
		t.Fatal(err)
	}
	for i := range 80 {
		if _, err := c.Send(ctx, conv, fmt.Sprintf("filler-%d", i), fmt.Sprintf("Filler message %d", i)); err != nil {
			t.Fatal(err)
		}
	}

	bob.waitFor("the conversation in the list", `!!document.querySelector('#conv-list .conv[data-name="alice"]')`)
	bob.run(press("/", 191, "/"))
	bob.waitFor("the search box focused by /", `document.activeElement?.id === 'search-input' && document.activeElement.value === ''`)
	bob.run(chromedp.KeyEvent("cafe"))
	bob.waitFor("two results", `document.querySelectorAll('#search-results .search-result').length === 2`)
	var res struct {
		Marks    []string
		Snippets []string
		Pwned    any
		Injected int
		ListHid  bool
	}
	bob.eval(`({
		Marks: [...document.querySelectorAll('#search-results mark')].map(m => m.textContent),
		Snippets: [...document.querySelectorAll('#search-results .snippet')].map(s => s.textContent),
		Pwned: window.__pwned ?? null,
		Injected: document.querySelectorAll('#search-results img, #search-results [onerror]').length,
		ListHid: document.querySelector('.conv-nav').hidden,
	})`, &res)
	if fmt.Sprint(res.Marks) != "[Café cafe]" && fmt.Sprint(res.Marks) != "[cafe Café]" {
		t.Errorf("highlighted words = %q, want Café and cafe", res.Marks)
	}
	if res.Pwned != nil || res.Injected != 0 {
		t.Errorf("a hostile result ran or injected markup: __pwned %v, %d elements", res.Pwned, res.Injected)
	}
	found := false
	for _, s := range res.Snippets {
		found = found || s == "alice: "+hostile
	}
	if !found {
		t.Errorf("snippets %q lack the hostile text as text", res.Snippets)
	}
	if !res.ListHid {
		t.Error("the conversation list is still shown under the results")
	}
	bob.screenshot("search")

	bob.click(`#search-results .search-result[data-seq="1"]`)
	bob.waitFor("the café message shown and highlighted", `(() => {
		const m = document.querySelector('#log .msg.flash');
		return m?.dataset.seq === '1' && m.querySelector('.text').textContent === 'Rendez-vous au Café à midi' && location.pathname === '/c/`+conv+`'
	})()`)
	// The window is contiguous: every message from the café one to the newest is there.
	var n int
	bob.eval(`document.querySelectorAll('#log .msg[data-seq]').length`, &n)
	if n != 82 {
		t.Errorf("the log holds %d messages, want all 82 (one contiguous window)", n)
	}

	// Escape in the search box brings the list back.
	bob.run(chromedp.Focus("#search-input", chromedp.ByQuery), press("Escape", 27, ""))
	bob.waitFor("the list back", `!document.querySelector('.conv-nav').hidden && document.querySelector('.search-pane').hidden`)
	alice.checkClean()
	bob.checkClean()
}
