package web_test

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/natter-chat/natter/internal/chattest"
)

// TestWebClient_HostileTextIsOnlyText: markup, scripts and javascript:
// links sent as messages and as a group title reach the other browser as
// literal text; nothing runs, no dialog opens, no element is injected.
func TestWebClient_HostileTextIsOnlyText(t *testing.T) {
	node := chattest.StartNode(t, "")
	b := startBrowser(t, node.URL)
	mallory, bob := b.newUser("mallory"), b.newUser("bob")
	mallory.register()
	bob.register()

	title := `<img src=x onerror="window.__pwned='title'">`
	hostile := []string{
		`<img src=x onerror="window.__pwned='img';alert(1)">`,
		`<script>window.__pwned='script';alert(2)</script>`,
		`javascript:alert(3)`,
		`[click me](javascript:window.__pwned='md')`,
		`https://example.com/"><svg onload="window.__pwned='svg'">`,
		`<a href="javascript:alert(4)">link</a> & &amp; &lt;b&gt;`,
		`<iframe srcdoc="<script>parent.__pwned='iframe'</script>"></iframe> @bob`,
	}
	mallory.createGroup("", title, "bob")
	for _, text := range hostile {
		mallory.send(text)
	}
	bob.openConv(title)
	for _, text := range hostile {
		bob.waitMessage(text) // the exact text, as text
	}
	mallory.menu(hostile[0], "[data-action=reply]")
	mallory.send(`<b>reply</b>`)
	bob.waitFor("the reply quoting hostile text", messageExpr(`<b>reply</b>`)+`.some(m => m.querySelector('.quote-text')?.textContent === `+js(hostile[0])+`)`)

	var report struct {
		Pwned    any
		Injected []string
		BadLinks int
		Links    []string
		Title    string
		ListName string
	}
	bob.eval(`({
		Pwned: window.__pwned ?? null,
		Injected: [...document.body.querySelectorAll('img, script, iframe, object, embed, [onerror], [onload], svg:not(.icon)')].map(e => e.outerHTML),
		BadLinks: [...document.querySelectorAll('a')].filter(a => !/^https?:$/.test(a.protocol)).length,
		Links: [...document.querySelectorAll('#log a')].map(a => a.href),
		Title: document.querySelector('#thread-title').textContent,
		ListName: document.querySelector('#conv-list .conv .conv-name').textContent,
	})`, &report)
	if report.Pwned != nil {
		t.Errorf("hostile text ran script: window.__pwned = %v", report.Pwned)
	}
	if len(report.Injected) != 0 {
		t.Errorf("elements were injected by hostile text: %q", report.Injected)
	}
	if report.BadLinks != 0 {
		t.Errorf("%d links with a scheme other than http(s): %v", report.BadLinks, report.Links)
	}
	if want := []string{"https://example.com/"}; fmt.Sprint(report.Links) != fmt.Sprint(want) {
		t.Errorf("links in the log = %q, want %q (only the http URL, cut before the markup)", report.Links, want)
	}
	if report.Title != title || report.ListName != title {
		t.Errorf("group title shown as %q (header) and %q (list), want %q literally", report.Title, report.ListName, title)
	}
	bob.screenshot("hostile-text")
	mallory.checkClean()
	bob.checkClean()
}

// TestWebClient_FallsBackToServerSentEvents: when WebSocket is blocked on
// the way, the client switches to the event stream plus posted frames and
// everything still works both ways, live.
func TestWebClient_FallsBackToServerSentEvents(t *testing.T) {
	node := chattest.StartNode(t, "")
	b := startBrowser(t, node.URL)
	alice, bob := b.newUser("alice"), b.newUser("bob")
	bob.url = noWebSocketProxy(t, node.URL) // bob's network refuses WebSocket upgrades
	alice.register()
	bob.register()
	var transport string
	bob.eval(`document.body.dataset.transport`, &transport)
	if transport != "sse" {
		t.Fatalf("bob's transport = %q with WebSocket blocked, want sse", transport)
	}

	alice.startDirect("bob")
	alice.send("Can you hear me?")
	bob.openConv("alice")
	bob.waitMessage("Can you hear me?")
	alice.waitStatus("Can you hear me?", "read")
	bob.run(chromedp.Focus("#composer-input", chromedp.ByQuery), chromedp.SendKeys("#composer-input", "Loud and clear", chromedp.ByQuery))
	alice.waitFor("bob typing over the fallback", `document.querySelector('#typing')?.textContent.includes('bob is typing')`)
	bob.run(press("Enter", 13, "\r"))
	alice.waitMessage("Loud and clear")
	bob.waitStatus("Loud and clear", "read")
	alice.send("Good")
	bob.waitMessage("Good")
	if n := bob.countMessages("Loud and clear"); n != 1 {
		t.Errorf("bob shows his message %d times, want 1", n)
	}
	alice.checkClean()
	bob.checkClean()
}

// noWebSocketProxy starts a reverse proxy to target that refuses every
// WebSocket upgrade, like a corporate proxy; it returns its URL.
func noWebSocketProxy(t *testing.T, target string) string {
	t.Helper()
	u, err := url.Parse(target)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(u)
	proxy.ErrorHandler = func(w http.ResponseWriter, _ *http.Request, _ error) { w.WriteHeader(http.StatusBadGateway) } // quiet: streams end at cleanup
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.EqualFold(r.Header.Get("Upgrade"), "websocket") {
			http.Error(w, "WebSocket is not allowed here", http.StatusForbidden)
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	t.Cleanup(func() {
		srv.CloseClientConnections() // the page's event stream would keep Close waiting
		srv.Close()
	})
	return srv.URL
}
