package web_test

import (
	"context"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/natter-chat/natter/client"
	"github.com/natter-chat/natter/internal/chattest"
)

// TestWebClient_LiveSettings: alice's open page follows, without a
// reload, the settings she changes on another device (a Go client logged
// in as her): the muted and mentions-only marks in the conversation list,
// the hidden messages of a user she blocks and their return when she
// unblocks, her contacts list, and the hide-text switch of the settings;
// and what changed while it was offline once it is back, in the settings
// dialog too when it stayed open.
func TestWebClient_LiveSettings(t *testing.T) {
	node := chattest.StartNode(t, "")
	b := startBrowser(t, node.URL)
	alice := b.newUser("alice")
	alice.register()
	ctx, cancel := context.WithTimeout(context.Background(), 4*stepTimeout)
	defer cancel()
	bob := client.New(node.URL, client.Options{})
	reg, err := bob.Register(ctx, "bob", password)
	if err != nil {
		t.Fatalf("register bob: %v", err)
	}
	bobID := reg.User.ID
	other := restLogin(t, node.URL, "alice") // alice's other device
	must := func(what string, err error) {
		t.Helper()
		if err != nil {
			t.Fatalf("alice's other device: %s: %v", what, err)
		}
	}

	direct, err := other.CreateDirect(ctx, bobID)
	must("start the chat with bob", err)
	me, err := other.Me(ctx)
	must("who am I", err)
	group, err := bob.CreateGroup(ctx, "Hikers", []string{me.ID})
	if err != nil {
		t.Fatalf("bob's group: %v", err)
	}
	if _, err := bob.Send(ctx, group.ID, "b-1", "Bring snacks"); err != nil {
		t.Fatalf("bob's message: %v", err)
	}
	alice.openConv("Hikers")
	alice.waitMessage("Bring snacks")
	alice.waitFor("the chat with bob in the list", `!!document.querySelector('#conv-list .conv[data-name="bob"]')`)
	// Gone if the page loads again: every change below must arrive live.
	alice.run(chromedp.Evaluate(`window.__sameLoad = true`, nil))

	must("mute the chat with bob", other.SetNotificationLevel(ctx, direct.ID, "none"))
	alice.waitFor("bob's chat muted in the list", `(() => { const a = document.querySelector('#conv-list .conv[data-name="bob"]'); return a?.dataset.level === 'none' && a.querySelector('.level-mark')?.getAttribute('aria-label') === 'muted' })()`)
	must("mentions only", other.SetNotificationLevel(ctx, direct.ID, "mentions"))
	alice.waitFor("bob's chat at mentions only", `document.querySelector('#conv-list .conv[data-name="bob"]')?.dataset.level === 'mentions'`)

	must("block bob", other.Block(ctx, bobID))
	alice.waitFor("bob's message hidden in the group", messageExpr("Message from someone you blocked.")+`.some(m => m.dataset.sender === `+js(bobID)+`) && `+messageExpr("Bring snacks")+`.length === 0`)
	alice.screenshot("live-block")
	must("unblock bob", other.Unblock(ctx, bobID))
	alice.waitMessage("Bring snacks")

	alice.click("#contacts")
	alice.waitFor("the empty contacts list", `!document.querySelector('#contacts-empty').hidden`)
	must("add bob to the contacts", other.AddContact(ctx, bobID))
	alice.waitFor("bob listed", `document.querySelector('#contact-list li[data-username="bob"]')?.dataset.user === `+js(bobID)+` && document.querySelector('#contacts-empty').hidden`)
	must("remove bob from the contacts", other.RemoveContact(ctx, bobID))
	alice.waitFor("bob no longer listed", `!document.querySelector('#contact-list li') && !document.querySelector('#contacts-empty').hidden`)
	alice.run(chromedp.Evaluate(`document.querySelector('#dlg-contacts').close()`, nil))

	alice.click("#settings")
	alice.waitFor("the hide-text switch loaded, off", `document.querySelector('#push-hide-text')?.dataset.loaded === 'true' && !document.querySelector('#push-hide-text').checked`)
	must("hide message text", other.SetPushSettings(ctx, true))
	alice.waitFor("the hide-text switch on", `document.querySelector('#push-hide-text').checked`)
	alice.screenshot("live-hide-text")
	must("show message text", other.SetPushSettings(ctx, false))
	alice.waitFor("the hide-text switch off", `!document.querySelector('#push-hide-text').checked`)

	// Frames sent while the page is offline are lost; it reads the
	// settings again when it is back, and the settings dialog, left open,
	// shows what was read.
	alice.offline(true)
	alice.waitFor("the offline banner", `!document.querySelector('#banner').hidden && document.body.dataset.conn !== 'online'`)
	must("mute the chat with bob", other.SetNotificationLevel(ctx, direct.ID, "none"))
	must("block bob", other.Block(ctx, bobID))
	must("hide message text", other.SetPushSettings(ctx, true))
	alice.offline(false)
	alice.waitFor("bob's chat muted after the reconnect", `document.querySelector('#conv-list .conv[data-name="bob"]')?.dataset.level === 'none'`)
	alice.waitFor("bob's message hidden after the reconnect", messageExpr("Message from someone you blocked.")+`.length === 1 && `+messageExpr("Bring snacks")+`.length === 0`)
	alice.waitFor("the open dialog's hide-text switch on after the reconnect", `document.querySelector('#dlg-settings')?.open && document.querySelector('#push-hide-text').checked && !document.querySelector('#push-hide-text').disabled`)
	alice.run(chromedp.Evaluate(`document.querySelector('#dlg-settings').close()`, nil))

	var same bool
	alice.eval(`window.__sameLoad === true`, &same)
	if !same {
		t.Error("the page was loaded again; the changes were to arrive live")
	}
	alice.checkClean()
}
