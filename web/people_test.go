package web_test

import (
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/natter-chat/natter/internal/chattest"
)

// TestWebClient_DisplayName: alice sets a display name and a status in
// her profile; bob sees the name instead of her username after a reload
// (list, header, typing), and finds her by it in the people search.
func TestWebClient_DisplayName(t *testing.T) {
	node := chattest.StartNode(t, "")
	b := startBrowser(t, node.URL)
	alice, bob, carol := b.newUser("alice"), b.newUser("bob"), b.newUser("carol")
	alice.register()
	bob.register()
	carol.register()
	alice.startDirect("bob")
	alice.send("Hello from alice")

	alice.click("#edit-profile")
	alice.waitFor("the profile form loaded", `!document.querySelector('#profile-save')?.disabled`)
	alice.run(
		chromedp.SendKeys("#profile-name", "Zoë Liddell", chromedp.ByQuery),
		chromedp.SendKeys("#profile-status", "down the rabbit hole", chromedp.ByQuery),
	)
	alice.click("#profile-save")
	alice.waitFor("the dialog to close and her name to show", `!document.querySelector('#dlg-profile') && document.querySelector('#me-display').textContent === 'Zoë Liddell'`)

	bob.open("/")
	bob.waitReady()
	bob.openConv("Zoë Liddell")
	bob.waitMessage("Hello from alice")
	alice.run(chromedp.Evaluate(`(() => { const i = document.querySelector('#composer-input'); i.value = 'typing'; i.dispatchEvent(new Event('input')) })()`, nil))
	bob.waitFor("typing by display name", `document.querySelector('#typing').textContent.includes('Zoë Liddell is typing')`)

	// Carol finds alice by her display name, accents ignored.
	carol.click("#new-chat")
	carol.run(chromedp.WaitVisible("#dlg-new-chat .user-search", chromedp.ByQuery), chromedp.SendKeys("#dlg-new-chat .user-search", "zoe", chromedp.ByQuery))
	carol.waitFor("alice found as Zoë", `document.querySelector('#dlg-new-chat .user-result[data-username="alice"]')?.textContent.includes('Zoë Liddell (@alice)')`)
	carol.click(`#dlg-new-chat .user-result[data-username="alice"]`)
	carol.waitFor("the chat titled by display name", `document.querySelector('#thread-title')?.textContent === 'Zoë Liddell'`)
	alice.checkClean()
	bob.checkClean()
	carol.checkClean()
}

// TestWebClient_Block: bob blocks alice from their direct chat's menu;
// alice's next message fails with a clear "blocked" notice and never
// reaches bob or the server; after bob unblocks her, her retry arrives.
func TestWebClient_Block(t *testing.T) {
	node := chattest.StartNode(t, "")
	b := startBrowser(t, node.URL)
	alice, bob := b.newUser("alice"), b.newUser("bob")
	alice.register()
	bob.register()
	alice.startDirect("bob")
	alice.send("First")
	bob.openConv("alice")
	bob.waitMessage("First")

	bob.click("#thread-menu")
	bob.click("#conv-menu [data-action=block]")
	bob.click("#confirm-ok")
	bob.waitFor("the block to be stored", `document.querySelector('#toasts')?.textContent.includes('alice is blocked.')`)

	alice.send("Are you ignoring me?")
	alice.waitStatus("Are you ignoring me?", "failed")
	var bar string
	alice.eval(messageExpr("Are you ignoring me?")+`[0].querySelector('.failed-bar').textContent`, &bar)
	if want := "Not sent: this person has blocked you, so your messages are not delivered.RetryDiscard"; bar != want {
		t.Errorf("alice's failed message says %q, want %q", bar, want)
	}
	alice.screenshot("blocked")
	if n := serverHistory(t, node.URL, "bob")["Are you ignoring me?"]; n != 0 {
		t.Errorf("the server stored the blocked message %d times", n)
	}
	if n := bob.countMessages("Are you ignoring me?"); n != 0 {
		t.Errorf("bob shows the blocked message %d times", n)
	}

	bob.click("#thread-menu")
	bob.click("#conv-menu [data-action=unblock]")
	bob.waitFor("the unblock", `document.querySelector('#toasts')?.textContent.includes('alice is unblocked.')`)
	alice.run(chromedp.Evaluate(messageExpr("Are you ignoring me?")+`[0].querySelector('.failed-bar button').click()`, nil))
	bob.waitMessage("Are you ignoring me?")
	alice.waitStatus("Are you ignoring me?", "read")
	alice.checkClean()
	bob.checkClean()
}
