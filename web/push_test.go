package web_test

import (
	"net/http"
	"testing"

	cdpbrowser "github.com/chromedp/cdproto/browser"
	"github.com/chromedp/chromedp"

	"github.com/natter-chat/natter/internal/chattest"
)

// TestWebClient_PushServiceWorker: /sw.js is served as JavaScript from
// the root (so its default scope is the whole site, and no
// Service-Worker-Allowed header is needed); the Notifications toggle
// registers it with scope "/", after the user allowed notifications.
//
// Push delivery itself cannot be tested here: headless Chromium has no
// push service, so PushManager.subscribe fails; the test then checks that
// the failure is reported and the toggle stays off. (Had it succeeded, the
// subscription must be stored: the test checks that too.) The server's
// side of Web Push has its own tests with a fake push service.
func TestWebClient_PushServiceWorker(t *testing.T) {
	node := chattest.StartNode(t, "")
	res, err := http.Get(node.URL + "/sw.js")
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if ct := res.Header.Get("Content-Type"); res.StatusCode != 200 || ct != "text/javascript; charset=utf-8" {
		t.Errorf("GET /sw.js: %d, Content-Type %q; want 200 text/javascript", res.StatusCode, ct)
	}

	b := startBrowser(t, node.URL)
	alice := b.newUser("alice")
	alice.register()
	if err := chromedp.Run(alice.browser, cdpbrowser.GrantPermissions([]cdpbrowser.PermissionType{cdpbrowser.PermissionTypeNotifications}).
		WithOrigin(node.URL).WithBrowserContextID(alice.bc)); err != nil {
		t.Fatalf("grant the notification permission: %v", err)
	}
	alice.waitFor("the toggle", `document.querySelector('#push-toggle')?.getAttribute('aria-pressed') === 'false' && !document.querySelector('#push-toggle').hidden`)
	alice.click("#push-toggle")
	alice.waitFor("the service worker registered at the root", `(async () => {
		const r = await navigator.serviceWorker.getRegistration('/');
		return r?.scope === location.origin + '/' && !!(r.active || r.waiting || r.installing) && (r.active || r.waiting || r.installing).scriptURL === location.origin + '/sw.js';
	})()`)
	alice.waitFor("the toggle to settle", `!document.querySelector('#push-toggle').disabled`)
	var state struct {
		Pressed string
		Error   string
		Stored  bool
		Toast   string
	}
	alice.eval(`({
		Pressed: document.querySelector('#push-toggle').getAttribute('aria-pressed'),
		Error: document.querySelector('#push-toggle').dataset.error ?? '',
		Stored: Object.keys(localStorage).some(k => k.startsWith('natter.push.')),
		Toast: document.querySelector('#toasts')?.textContent ?? '',
	})`, &state)
	switch {
	case state.Pressed == "true":
		if !state.Stored {
			t.Error("notifications are on but no subscription id was stored")
		}
	case state.Error == "" || state.Stored:
		t.Errorf("the toggle is off without an error (%q) or with a stored subscription (%v)", state.Error, state.Stored)
	default:
		t.Logf("subscribing failed as expected in headless Chromium: %s", state.Toast)
	}
	alice.checkClean()
}
