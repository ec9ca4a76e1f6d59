package web_test

import (
	"archive/zip"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	cdpbrowser "github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"

	"github.com/natter-chat/natter/client"
	"github.com/natter-chat/natter/internal/app"
	"github.com/natter-chat/natter/internal/chattest"
)

// restLogin logs username in over REST: a session of its own, beside the browser's.
func restLogin(t *testing.T, url, username string) *client.Client {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), stepTimeout)
	defer cancel()
	c := client.New(url, client.Options{})
	if _, err := c.Login(ctx, username, password); err != nil {
		t.Fatalf("log in as %s over REST: %v", username, err)
	}
	return c
}

// restJSON sends a request with c's access token and decodes a JSON
// answer into out (when not nil); it returns the status.
func restJSON(t *testing.T, url string, c *client.Client, method, path string, body io.Reader, out any) int {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), stepTimeout)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, method, url+path, body)
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Authorization", "Bearer "+c.Tokens().AccessToken)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	if out != nil && res.StatusCode == http.StatusOK {
		if err := json.NewDecoder(res.Body).Decode(out); err != nil {
			t.Fatalf("%s %s: decode: %v", method, path, err)
		}
	}
	return res.StatusCode
}

func contactNames(t *testing.T, c *client.Client) []string {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), stepTimeout)
	defer cancel()
	list, err := c.Contacts(ctx)
	if err != nil {
		t.Fatalf("contacts: %v", err)
	}
	var names []string
	for _, r := range list {
		names = append(names, r.User.Username)
	}
	return names
}

// TestWebClient_Contacts: alice adds bob from the contacts dialog's people
// search and carol from carol's profile card; both are listed (carol's
// hostile display name as text only) and stored; removing carol removes
// her on the server; a click on bob in the list opens the direct chat.
func TestWebClient_Contacts(t *testing.T) {
	node := chattest.StartNode(t, "")
	b := startBrowser(t, node.URL)
	alice, bob, carol := b.newUser("alice"), b.newUser("bob"), b.newUser("carol")
	alice.register()
	bob.register()
	carol.register()
	hostile := `<img src=x onerror="window.__pwned=1">`
	ctx, cancel := context.WithTimeout(context.Background(), stepTimeout)
	defer cancel()
	if _, err := restLogin(t, node.URL, "carol").UpdateProfile(ctx, client.ProfileRequest{DisplayName: &hostile}); err != nil {
		t.Fatalf("carol's display name: %v", err)
	}

	alice.click("#contacts")
	alice.waitFor("the empty list", `!document.querySelector('#contacts-empty').hidden`)
	alice.pickUser("#dlg-contacts", "bob")
	alice.waitFor("bob listed", `!!document.querySelector('#contact-list li[data-username="bob"]')`)
	alice.waitFor("bob marked in the search", `document.querySelector('#dlg-contacts .user-result[data-username="bob"]')?.getAttribute('aria-pressed') === 'true'`)
	alice.run(chromedp.Evaluate(`document.querySelector('#dlg-contacts').close()`, nil))

	// Carol, from her profile card in the direct chat's menu.
	alice.click("#new-chat")
	alice.pickUser("#dlg-new-chat", "carol")
	alice.waitFor("the chat with carol", `document.querySelector('#thread-title')?.textContent === `+js(hostile))
	alice.click("#thread-menu")
	alice.click("#conv-menu [data-action=profile]")
	alice.waitFor("carol's card", `document.querySelector('#card-name')?.textContent === `+js(hostile)+` && document.querySelector('#card-username')?.textContent === '@carol'`)
	alice.click(`#card-contact[data-contact="false"]`)
	alice.waitFor("carol added", `document.querySelector('#card-contact')?.dataset.contact === 'true'`)
	alice.run(chromedp.Evaluate(`document.querySelector('#dlg-card').close()`, nil))

	alice.click("#contacts")
	alice.waitFor("both listed", `[...document.querySelectorAll('#contact-list li')].map(li => li.dataset.username).join() === 'bob,carol'`)
	var shown struct {
		Carol    string
		Pwned    any
		Injected []string
	}
	alice.eval(`({
		Carol: document.querySelector('#contact-list li[data-username="carol"] .person-name').textContent,
		Pwned: window.__pwned ?? null,
		Injected: [...document.querySelectorAll('img:not(.avatar-img), [onerror]')].map(e => e.outerHTML),
	})`, &shown)
	if shown.Carol != hostile+" (@carol)" || shown.Pwned != nil || len(shown.Injected) != 0 {
		t.Errorf("carol's hostile name: shown %q, __pwned %v, injected %q; want the text only", shown.Carol, shown.Pwned, shown.Injected)
	}
	ac := restLogin(t, node.URL, "alice")
	if got := strings.Join(contactNames(t, ac), ","); got != "bob,carol" {
		t.Errorf("alice's contacts on the server: %q, want bob,carol", got)
	}
	alice.screenshot("contacts")

	alice.click(`#contact-list li[data-username="carol"] .contact-remove`)
	alice.waitFor("carol gone", `[...document.querySelectorAll('#contact-list li')].map(li => li.dataset.username).join() === 'bob'`)
	if got := strings.Join(contactNames(t, ac), ","); got != "bob" {
		t.Errorf("alice's contacts on the server after removing carol: %q, want bob", got)
	}

	alice.click(`#contact-list li[data-username="bob"] .contact-open`)
	alice.waitFor("the chat with bob", `document.querySelector('#thread-title')?.textContent === 'bob' && !document.querySelector('#dlg-contacts')`)
	alice.send("Hello from my contacts")
	bob.openConv("alice")
	bob.waitMessage("Hello from my contacts")
	alice.checkClean()
	bob.checkClean()
	carol.checkClean()
}

// TestWebClient_NotificationSettings: alice mutes a conversation from its
// menu (stored on the server, shown muted in the list, still after a
// reload), then chooses mentions only; and she hides message text in push
// notifications from the settings, which the server stores.
func TestWebClient_NotificationSettings(t *testing.T) {
	node := chattest.StartNode(t, "")
	b := startBrowser(t, node.URL)
	alice, bob := b.newUser("alice"), b.newUser("bob")
	alice.register()
	bob.register()
	alice.startDirect("bob")
	alice.send("Quiet please")
	conv := alice.convID()
	ac, bc := restLogin(t, node.URL, "alice"), restLogin(t, node.URL, "bob")
	level := func(c *client.Client) string {
		t.Helper()
		var body struct{ Level string }
		if status := restJSON(t, node.URL, c, http.MethodGet, "/v1/conversations/"+conv+"/notifications", nil, &body); status != http.StatusOK {
			t.Fatalf("GET notifications: %d", status)
		}
		return body.Level
	}

	alice.click("#thread-menu")
	alice.waitFor("the menu with 'all' checked", `document.querySelector('#conv-menu [data-level="all"]')?.getAttribute('aria-checked') === 'true'`)
	alice.click(`#conv-menu [data-level="none"]`)
	mutedInList := `(() => { const a = document.querySelector('#conv-list .conv[data-name="bob"]'); return a?.dataset.level === 'none' && a.querySelector('.level-mark')?.getAttribute('aria-label') === 'muted' })()`
	alice.waitFor("bob's chat muted in the list", mutedInList)
	alice.waitFor("the header's mark", `!document.querySelector('#thread-muted').hidden`)
	if got := level(ac); got != "none" {
		t.Errorf("alice's level on the server = %q, want none", got)
	}
	if got := level(bc); got != "all" {
		t.Errorf("bob's level changed to %q with alice's", got)
	}
	alice.screenshot("muted")

	// The reload reads every level in one request: none per conversation.
	before := alice.urlCount()
	alice.open("/")
	alice.waitReady()
	alice.waitFor("still muted after a reload", mutedInList)
	loaded := alice.urlsSince(before)
	if !slices.ContainsFunc(loaded, func(u string) bool { return strings.HasSuffix(u, "/v1/me/notification-levels") }) {
		t.Errorf("the reload did not read the levels with GET /v1/me/notification-levels; requests:\n%s", strings.Join(loaded, "\n"))
	}
	for _, u := range loaded {
		if strings.HasSuffix(u, "/notifications") {
			t.Errorf("the reload read a level per conversation: %s", u)
		}
	}
	alice.openConv("bob")
	alice.click("#thread-menu")
	alice.waitFor("the menu with 'none' checked", `document.querySelector('#conv-menu [data-level="none"]')?.getAttribute('aria-checked') === 'true'`)
	alice.click(`#conv-menu [data-level="mentions"]`)
	alice.waitFor("mentions only in the list", `document.querySelector('#conv-list .conv[data-name="bob"]')?.dataset.level === 'mentions'`)
	if got := level(ac); got != "mentions" {
		t.Errorf("alice's level on the server = %q, want mentions", got)
	}

	hideText := func() bool {
		t.Helper()
		var body struct {
			HideText bool `json:"hide_text"`
		}
		if status := restJSON(t, node.URL, ac, http.MethodGet, "/v1/me/push-settings", nil, &body); status != http.StatusOK {
			t.Fatalf("GET push-settings: %d", status)
		}
		return body.HideText
	}
	alice.click("#settings")
	alice.waitFor("the setting loaded, off", `document.querySelector('#push-hide-text')?.dataset.loaded === 'true' && !document.querySelector('#push-hide-text').checked`)
	alice.click("#push-hide-text")
	alice.waitFor("the setting saved", `document.querySelector('#push-hide-text').checked && !document.querySelector('#push-hide-text').disabled && document.querySelector('#toasts')?.textContent.includes('will not show message text')`)
	if !hideText() {
		t.Error("hide_text is false on the server after turning it on")
	}
	alice.screenshot("settings")
	alice.open("/")
	alice.waitReady()
	alice.click("#settings")
	alice.waitFor("the setting loaded, on", `document.querySelector('#push-hide-text')?.dataset.loaded === 'true' && document.querySelector('#push-hide-text').checked`)
	alice.click("#push-hide-text")
	alice.waitFor("the setting saved", `!document.querySelector('#push-hide-text').checked && !document.querySelector('#push-hide-text').disabled && document.querySelector('#toasts')?.textContent.includes('will show message text')`)
	if hideText() {
		t.Error("hide_text is true on the server after turning it off")
	}
	alice.checkClean()
	bob.checkClean()
}

// urlCount is how many URLs the page has requested so far.
func (u *user) urlCount() int {
	u.mu.Lock()
	defer u.mu.Unlock()
	return len(u.urls)
}

// urlsSince returns the URLs the page requested after the first n.
func (u *user) urlsSince(n int) []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	return slices.Clone(u.urls[n:])
}

// TestWebClient_Avatar: alice uploads a picture in her profile editor;
// bob's page shows it (list, header, her profile card) without reloading;
// when she removes it, bob's page goes back to her initials.
func TestWebClient_Avatar(t *testing.T) {
	node := chattest.StartNode(t, "")
	b := startBrowser(t, node.URL)
	alice, bob := b.newUser("alice"), b.newUser("bob")
	alice.register()
	bob.register()
	alice.startDirect("bob")
	alice.send("New picture soon")
	bob.openConv("alice")
	bob.waitMessage("New picture soon")

	alice.click("#edit-profile")
	alice.waitFor("the profile form loaded", `!document.querySelector('#profile-save')?.disabled`)
	pic := gradientPNG(t, t.TempDir(), "me.png", 300, 200)
	alice.run(chromedp.SetUploadFiles("#avatar-input", []string{pic}, chromedp.ByQuery))
	loaded := func(sel string) string {
		return `(() => { const i = document.querySelector(` + js(sel) + `); return !!i && i.complete && i.naturalWidth > 0 })()`
	}
	alice.waitFor("the upload", `document.querySelector('#avatar-status')?.dataset.state === 'done'`)
	alice.waitFor("her own preview", loaded("#avatar-preview img.avatar-img"))
	alice.waitFor("her sidebar avatar", loaded("#me-avatar img.avatar-img"))
	alice.screenshot("avatar-editor")

	bob.waitFor("alice's picture in bob's list", loaded(`#conv-list .conv[data-name="alice"] img.avatar-img`))
	bob.waitFor("alice's picture in bob's header", loaded("#thread-profile img.avatar-img"))
	var size struct{ W, H int }
	bob.eval(`(() => { const i = document.querySelector('#thread-profile img.avatar-img'); return { W: i.naturalWidth, H: i.naturalHeight } })()`, &size)
	if size.W != size.H || size.W > 128 {
		t.Errorf("bob shows a %d×%d picture, want the square thumbnail (at most 128 px)", size.W, size.H)
	}
	bob.click("#thread-profile")
	bob.waitFor("alice's card with her picture", loaded("#dlg-card .avatar.large img.avatar-img"))
	bob.screenshot("avatar-card")
	bob.run(chromedp.Evaluate(`document.querySelector('#dlg-card').close()`, nil))

	alice.click("#avatar-remove")
	alice.waitFor("the removal", `document.querySelector('#avatar-status')?.dataset.state === 'done' && !document.querySelector('#avatar-preview img')`)
	bob.waitFor("alice's initials again", `(() => {
		const a = document.querySelector('#conv-list .conv[data-name="alice"] .avatar');
		return !!a && !a.querySelector('img') && a.querySelector('.initials')?.textContent === 'AL' && !document.querySelector('#thread-profile img');
	})()`)
	alice.checkClean()
	bob.checkClean()
}

// TestWebClient_ExportAndDeleteAccount: alice downloads her data (a ZIP
// with her message in it, saved by the browser), then deletes her
// account: a wrong password is refused, the right one ends the session
// (the sign-in screen is back) and her tokens stop working.
func TestWebClient_ExportAndDeleteAccount(t *testing.T) {
	node := chattest.StartNode(t, "")
	b := startBrowser(t, node.URL)
	alice, bob := b.newUser("alice"), b.newUser("bob")
	alice.register()
	bob.register()
	alice.startDirect("bob")
	text := "Pack the cocoa, the map and the boots"
	alice.send(text)
	alice.waitFor("the message stored", messageExpr(text)+`.some(m => m.dataset.id)`)
	conv := alice.convID()

	dir := t.TempDir()
	if err := chromedp.Run(alice.browser, cdpbrowser.SetDownloadBehavior(cdpbrowser.SetDownloadBehaviorBehaviorAllowAndName).
		WithBrowserContextID(alice.bc).WithDownloadPath(dir)); err != nil {
		t.Fatalf("allow downloads: %v", err)
	}
	alice.click("#settings")
	alice.click("#export")
	alice.waitFor("the export saved", `document.querySelector('#export-status')?.dataset.state === 'done'`)
	zr := downloadedZIP(t, dir)
	var found []string
	for _, f := range zr.File {
		found = append(found, f.Name)
		if f.Name != "messages/"+conv+".json" {
			continue
		}
		r, err := f.Open()
		if err != nil {
			t.Fatal(err)
		}
		var msgs []struct{ Text string }
		err = json.NewDecoder(r).Decode(&msgs)
		r.Close()
		if err != nil || len(msgs) != 1 || msgs[0].Text != text {
			t.Errorf("%s holds %+v (%v), want alice's one message", f.Name, msgs, err)
		}
	}
	if want := "messages/" + conv + ".json"; !strings.Contains(strings.Join(found, " "), want) || !strings.Contains(strings.Join(found, " "), "manifest.json") {
		t.Errorf("the archive holds %q, want manifest.json and %s", found, want)
	}
	var status string
	alice.eval(`document.querySelector('#export-status').textContent`, &status)
	if !strings.HasPrefix(status, "Saved natter") {
		t.Errorf("export status %q, want Saved <the server's file name>", status)
	}

	rest := restLogin(t, node.URL, "alice") // another session: it must end too
	alice.click("#delete-account")
	alice.run(chromedp.WaitVisible("#delete-confirm", chromedp.ByQuery), chromedp.SendKeys("#delete-confirm", "alice", chromedp.ByQuery))
	var disabled bool
	alice.eval(`document.querySelector('#delete-submit').disabled`, &disabled)
	if !disabled {
		t.Error("the delete button is enabled without a password")
	}
	alice.run(chromedp.SendKeys("#delete-password", "not my password", chromedp.ByQuery))
	alice.click("#delete-submit")
	alice.waitFor("the wrong password refused", `document.querySelector('#delete-error')?.textContent === 'Wrong password.'`)
	alice.screenshot("delete-account")
	alice.run(chromedp.Evaluate(`document.querySelector('#delete-password').value = ''`, nil), chromedp.SendKeys("#delete-password", password, chromedp.ByQuery))
	alice.click("#delete-submit")
	alice.waitFor("the sign-in screen", `!!document.querySelector('#auth') && !document.querySelector('dialog[open]') && !localStorage.getItem('natter.session') && document.querySelector('#toasts')?.textContent.includes('Your account was deleted.')`)
	if status := restJSON(t, node.URL, rest, http.MethodGet, "/v1/users/me", nil, nil); status != http.StatusUnauthorized {
		t.Errorf("alice's other session after the deletion: GET /v1/users/me = %d, want 401", status)
	}
	bob.waitFor("bob's chat without alice", `document.querySelector('#conv-list .conv')?.dataset.name === 'Direct chat'`)
	alice.checkClean()
	bob.checkClean()
}

// downloadedZIP waits until the browser has saved one complete ZIP into
// dir (a file still being written has no central directory yet) and opens it.
func downloadedZIP(t *testing.T, dir string) *zip.Reader {
	t.Helper()
	deadline := time.Now().Add(2 * stepTimeout)
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	var last error
	for time.Now().Before(deadline) {
		ents, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		for _, e := range ents {
			data, err := os.ReadFile(filepath.Join(dir, e.Name()))
			if err != nil {
				last = err
				continue
			}
			zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
			if err == nil {
				return zr
			}
			last = fmt.Errorf("%s (%d bytes): %w", e.Name(), len(data), err)
		}
		<-tick.C
	}
	t.Fatalf("no complete ZIP was downloaded into %s: last %v", dir, last)
	return nil
}

// TestWebClient_ExportTooLarge: on a server whose export cap is smaller
// than the user's files, the download is refused with a clear message.
func TestWebClient_ExportTooLarge(t *testing.T) {
	node := chattest.StartNode(t, "", func(c *app.Config) { c.ExportMaxBytes = 10 })
	b := startBrowser(t, node.URL)
	alice := b.newUser("alice")
	alice.register()
	pic, err := os.ReadFile(gradientPNG(t, t.TempDir(), "me.png", 64, 64))
	if err != nil {
		t.Fatal(err)
	}
	if status := restJSON(t, node.URL, restLogin(t, node.URL, "alice"), http.MethodPost, "/v1/users/me/avatar", bytes.NewReader(pic), nil); status != http.StatusOK {
		t.Fatalf("upload an avatar: %d", status)
	}
	alice.click("#settings")
	alice.click("#export")
	alice.waitFor("the refusal", `document.querySelector('#export-status')?.dataset.state === 'failed'`)
	var got struct{ Code, Text string }
	alice.eval(`({ Code: document.querySelector('#export-status').dataset.code, Text: document.querySelector('#export-status').textContent })`, &got)
	if got.Code != "too_large" || !strings.Contains(got.Text, "larger than this server can export") {
		t.Errorf("export status %+v, want too_large explained", got)
	}
	alice.checkClean()
}
