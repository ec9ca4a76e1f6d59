package web_test

import (
	"testing"

	"github.com/chromedp/cdproto/emulation"
	"github.com/chromedp/chromedp"

	"github.com/natter-chat/natter/internal/chattest"
)

// TestWebClient_Group: three people in a group: mention, reply, react,
// edit, delete and read state; then the owner removes one member and
// another leaves. Bob uses a phone-sized screen throughout.
func TestWebClient_Group(t *testing.T) {
	node := chattest.StartNode(t, "")
	b := startBrowser(t, node.URL)
	carol, alice, bob := b.newUser("carol"), b.newUser("alice"), b.newUser("bob")
	bob.phone()
	for _, u := range []*user{carol, alice, bob} {
		u.register()
	}
	carol.createGroup("new-group-dialog", "Weekend trip", "alice", "bob")
	const question = "Who brings the tent, @bob?"
	carol.send(question)
	alice.openConv("Weekend trip")
	bob.waitFor("the group in bob's list", `document.querySelector('#conv-list .conv[data-name="Weekend trip"]')?.dataset.unread === '1'`)
	bob.screenshot("phone-conversation-list")
	bob.openConv("Weekend trip")
	bob.waitFor("the mention of bob", messageExpr(question)+`.some(m => m.classList.contains('mentions-me') && m.querySelector('.mention.me')?.textContent === '@bob')`)
	carol.waitStatus(question, "read")

	// Bob replies from the message menu; Escape first cancels a reply.
	bob.menu(question, "[data-action=reply]")
	bob.waitFor("the reply bar", `!document.querySelector('#composer-context').hidden`)
	bob.run(chromedp.Focus("#composer-input", chromedp.ByQuery), press("Escape", 27, ""))
	bob.waitFor("Escape to cancel the reply", `document.querySelector('#composer-context').hidden`)
	bob.menu(question, "[data-action=reply]")
	bob.send("I do.")
	carol.waitFor("bob's reply", messageExpr("I do.")+`.some(m => m.querySelector('.quote')?.textContent.includes('Who brings the tent'))`)

	// Mention completion: "@ca" + Tab becomes "@carol ".
	alice.run(chromedp.Focus("#composer-input", chromedp.ByQuery), chromedp.SendKeys("#composer-input", "Thanks @ca", chromedp.ByQuery))
	alice.waitFor("the mention suggestion", `document.querySelector('#mention-list li')?.textContent === '@carol'`)
	alice.run(press("Tab", 9, ""))
	alice.waitFor("the completed mention", `document.querySelector('#composer-input').value === 'Thanks @carol '`)
	alice.send("for planning")
	carol.waitFor("alice's mention of carol", messageExpr("Thanks @carol for planning")+`.some(m => m.classList.contains('mentions-me'))`)

	// React, edit, delete.
	alice.menu(question, `[data-emoji="👍"]`)
	carol.waitFor("alice's reaction", messageExpr(question)+`.some(m => m.querySelector('.reaction[data-emoji="👍"] .count')?.textContent === '1')`)
	carol.menu(question, "[data-action=edit]")
	carol.waitFor("the edit bar", `document.querySelector('#composer-context')?.dataset.mode === 'edit' && document.querySelector('#composer-input').value === `+js(question))
	carol.run(chromedp.Evaluate(`document.querySelector('#composer-input').value = ''`, nil))
	carol.send("Who brings the tent and the stove, @bob?")
	bob.waitFor("the edit", messageExpr("Who brings the tent and the stove, @bob?")+`.some(m => m.querySelector('.edited'))`)
	alice.send("wrong chat, sorry")
	alice.menu("wrong chat, sorry", "[data-action=delete]")
	alice.click("#confirm-ok")
	bob.waitFor("the tombstone", `[...document.querySelectorAll('#log .msg.deleted .text')].some(e => e.textContent === 'This message was deleted.') && `+messageExpr("wrong chat, sorry")+`.length === 0`)
	carol.waitStatus("Who brings the tent and the stove, @bob?", "read")
	bob.screenshot("phone-conversation")

	// Direct chats on the side, so carol's list has some life in it.
	bob.click(".thread-head .back") // on a phone the list is a screen of its own
	bob.startDirect("carol")
	bob.send("Running 5 min late, save me a seat")
	alice.startDirect("carol")
	alice.send("I can bring the stove")
	carol.waitFor("two unread direct chats", `document.title === '(2) Natter'`)
	carol.screenshot("group-conversation")
	carol.run(emulation.SetEmulatedMedia().WithFeatures([]*emulation.MediaFeature{{Name: "prefers-color-scheme", Value: "dark"}}))
	carol.screenshot("group-conversation-dark")
	carol.run(emulation.SetEmulatedMedia().WithFeatures([]*emulation.MediaFeature{}))
	alice.openConv("Weekend trip")
	bob.run(chromedp.NavigateBack())
	bob.waitFor("the back button to return to the list", `location.pathname === '/' && !!document.querySelector('#conv-list .conv[data-name="carol"]')`)
	bob.openConv("Weekend trip")

	// Roles: alice (member) may not remove anyone; carol (owner) removes
	// bob; alice leaves.
	alice.click("#thread-info")
	alice.run(chromedp.WaitVisible("#group-members", chromedp.ByQuery))
	var removable int
	alice.eval(`document.querySelectorAll('#group-members .remove').length`, &removable)
	if removable != 0 {
		t.Errorf("a plain member sees %d Remove buttons, want 0", removable)
	}
	alice.screenshot("group-dialog-member")
	alice.click("#dlg-group .dialog-head button")
	carol.click("#thread-info")
	carol.click(`#group-members li[data-username="bob"] .remove`)
	bob.waitFor("the group to leave bob's list", `location.pathname === '/' && !document.querySelector('#conv-list .conv[data-name="Weekend trip"]')`)
	alice.click("#thread-info")
	alice.click("#group-leave")
	alice.click("#confirm-ok")
	alice.waitFor("the group to leave alice's list", `!document.querySelector('#conv-list .conv[data-name="Weekend trip"]')`)
	carol.waitFor("one member left", `[...document.querySelectorAll('#group-members li')].length === 1 && document.querySelector('#thread-sub').textContent === '1 member'`)
	for _, u := range []*user{carol, alice, bob} {
		u.checkClean()
	}
}
