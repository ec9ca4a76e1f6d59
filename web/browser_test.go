package web_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/input"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/cdproto/target"
	"github.com/chromedp/chromedp"
)

// The browser tests drive the real client in headless Chromium against a
// real node. They run when Chromium is found: NATTER_TEST_CHROMIUM names
// the binary (then a browser that cannot start fails the test, as in CI),
// else /usr/bin/chromium is used if it exists, else they are skipped.

const (
	password    = "correct horse battery"
	stepTimeout = 15 * time.Second // one UI step, generous for a busy 2-core machine
	artifacts   = "../test-artifacts/screenshots"
)

func chromiumPath(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("NATTER_TEST_CHROMIUM"); p != "" {
		return p
	}
	if _, err := os.Stat("/usr/bin/chromium"); err == nil {
		return "/usr/bin/chromium"
	}
	t.Skip("browser tests need Chromium: install it (apt-get install chromium) or set NATTER_TEST_CHROMIUM=/path/to/chromium")
	return ""
}

// browser is one headless Chromium; each user gets a browser context of
// its own (separate cookies and localStorage, like separate devices).
type browser struct {
	t   *testing.T
	ctx context.Context
	url string
}

func startBrowser(t *testing.T, url string) *browser {
	t.Helper()
	path := chromiumPath(t)
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(path),
		chromedp.Flag("headless", true),
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.Flag("disable-background-networking", true),
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.Flag("disable-extensions", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("mute-audio", true),
		// Several pages are active at once; none may be throttled as hidden.
		chromedp.Flag("disable-background-timer-throttling", true),
		chromedp.Flag("disable-backgrounding-occluded-windows", true),
		chromedp.Flag("disable-renderer-backgrounding", true),
		chromedp.WindowSize(1280, 800),
	}
	alloc, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	ctx, cancel := chromedp.NewContext(alloc, chromedp.WithErrorf(func(format string, args ...any) {
		if msg := fmt.Sprintf(format, args...); !strings.Contains(msg, "unhandled node event") {
			t.Logf("chromedp: %s", msg)
		}
	}))
	t.Cleanup(func() { cancel(); cancelAlloc() })
	// The first Run starts the browser and ties it to ctx (not to a
	// shorter-lived context); a browser that cannot start fails this Run.
	if err := chromedp.Run(ctx); err != nil {
		t.Fatalf("start Chromium (%s): %v", path, err)
	}
	return &browser{t: t, ctx: ctx, url: url}
}

// user is one person in one browser context (one tab).
type user struct {
	t       *testing.T
	name    string
	url     string
	ctx     context.Context
	bc      cdp.BrowserContextID // its browser context: cookies, storage, permissions
	browser context.Context      // runs browser-level commands
	dialogs atomic.Int32         // alert/confirm/prompt dialogs opened by the page

	mu   sync.Mutex
	logs []string // console messages and uncaught exceptions, for failures
	urls []string // every URL the page requested or opened a WebSocket to
}

func (u *user) sawURL(url string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.urls = append(u.urls, url)
}

func (b *browser) newUser(name string) *user {
	t := b.t
	t.Helper()
	// A browser context of its own, and a tab in a new window of it:
	// chromedp.WithNewBrowserContext asks for the tab without a window,
	// which current headless Chromium refuses ("no browser is open").
	bx := cdp.WithExecutor(b.ctx, chromedp.FromContext(b.ctx).Browser)
	bcID, err := target.CreateBrowserContext().Do(bx)
	if err != nil {
		t.Fatalf("create a browser context for %s: %v", name, err)
	}
	tabID, err := target.CreateTarget("about:blank").WithBrowserContextID(bcID).WithNewWindow(true).Do(bx)
	if err != nil {
		t.Fatalf("open a tab for %s: %v", name, err)
	}
	ctx, cancel := chromedp.NewContext(b.ctx, chromedp.WithTargetID(tabID))
	t.Cleanup(func() {
		cancel()
		_ = target.DisposeBrowserContext(bcID).Do(bx)
	})
	u := &user{t: t, name: name, url: b.url, ctx: ctx, bc: bcID, browser: bx}
	chromedp.ListenTarget(ctx, func(ev any) {
		switch e := ev.(type) {
		case *page.EventJavascriptDialogOpening:
			u.dialogs.Add(1)
			u.log("DIALOG " + string(e.Type) + ": " + e.Message)
			// Dismiss it, or the page would block; the handler must not
			// call back into the event loop that delivers this event.
			go chromedp.Run(ctx, page.HandleJavaScriptDialog(false)) //nolint:errcheck
		case *runtime.EventConsoleAPICalled:
			var parts []string
			for _, a := range e.Args {
				parts = append(parts, string(a.Value)+a.Description)
			}
			u.log("console." + string(e.Type) + ": " + strings.Join(parts, " "))
		case *runtime.EventExceptionThrown:
			u.log("EXCEPTION: " + e.ExceptionDetails.Error())
		case *network.EventRequestWillBeSent:
			u.sawURL(e.Request.URL)
		case *network.EventWebSocketCreated:
			u.sawURL(e.URL)
		}
	})
	// As for the browser: the first Run, on ctx itself, opens the tab.
	if err := chromedp.Run(ctx, network.Enable(), runtime.Enable()); err != nil {
		t.Fatalf("open a tab for %s: %v", name, err)
	}
	return u
}

func (u *user) log(s string) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.logs = append(u.logs, time.Now().Format("15:04:05.000")+" "+s)
}

// logged reports whether the page logged a console message containing s.
func (u *user) logged(s string) bool {
	u.mu.Lock()
	defer u.mu.Unlock()
	for _, l := range u.logs {
		if strings.Contains(l, "console.") && strings.Contains(l, s) {
			return true
		}
	}
	return false
}

// exceptions returns the uncaught exceptions the page threw.
func (u *user) exceptions() []string {
	u.mu.Lock()
	defer u.mu.Unlock()
	var out []string
	for _, l := range u.logs {
		if strings.Contains(l, "EXCEPTION") {
			out = append(out, l)
		}
	}
	return out
}

// fail reports a failed step with the page's log and a screenshot.
func (u *user) fail(step string, err error) {
	u.t.Helper()
	u.mu.Lock()
	logs := strings.Join(u.logs, "\n  ")
	u.mu.Unlock()
	shot := u.screenshot("failed-" + u.t.Name() + "-" + u.name)
	u.t.Fatalf("%s: %s: %v\n  screenshot: %s\n  page log:\n  %s", u.name, step, err, shot, logs)
}

func (u *user) run(actions ...chromedp.Action) {
	u.t.Helper()
	ctx, cancel := context.WithTimeout(u.ctx, stepTimeout)
	defer cancel()
	if err := chromedp.Run(ctx, actions...); err != nil {
		u.fail(fmt.Sprintf("%d actions", len(actions)), err)
	}
}

// waitFor polls a JavaScript predicate until it is true.
func (u *user) waitFor(what, predicate string) {
	u.t.Helper()
	ctx, cancel := context.WithTimeout(u.ctx, stepTimeout)
	defer cancel()
	if err := chromedp.Run(ctx, chromedp.Poll(predicate, nil, chromedp.WithPollingInterval(50*time.Millisecond), chromedp.WithPollingTimeout(stepTimeout))); err != nil {
		u.fail("waiting for "+what, err)
	}
}

// eval evaluates a JavaScript expression into out.
func (u *user) eval(expr string, out any) {
	u.t.Helper()
	u.run(chromedp.Evaluate(expr, out))
}

// css quotes s as a CSS string, for attribute selectors.
func css(s string) string {
	return `"` + strings.NewReplacer(`\`, `\\`, `"`, `\"`, "\n", `\a `).Replace(s) + `"`
}

// js quotes s as a JavaScript string literal.
func js(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func (u *user) open(path string) {
	u.t.Helper()
	u.run(chromedp.Navigate(u.url + path))
}

func (u *user) register() {
	u.t.Helper()
	u.open("/")
	u.click("#auth-mode")
	u.run(
		chromedp.SendKeys("#auth-username", u.name, chromedp.ByQuery),
		chromedp.SendKeys("#auth-password", password, chromedp.ByQuery),
		chromedp.Click("#auth-submit", chromedp.ByQuery),
	)
	u.waitReady()
}

// waitReady waits until the chat is shown and caught up on a connection.
func (u *user) waitReady() {
	u.t.Helper()
	u.waitFor("the chat to be connected", `document.querySelector('#me')?.textContent === `+js(u.name)+` && document.body.dataset.synced === 'true'`)
}

// startDirect finds other by username and opens the direct chat.
func (u *user) startDirect(other string) {
	u.t.Helper()
	u.click("#new-chat")
	u.run(chromedp.WaitVisible("#dlg-new-chat .user-search", chromedp.ByQuery), chromedp.SendKeys("#dlg-new-chat .user-search", other[:3], chromedp.ByQuery))
	u.click(fmt.Sprintf(`#dlg-new-chat .user-result[data-username=%s]`, css(other)))
	u.waitFor("the chat with "+other, `document.querySelector('#thread-title')?.textContent === `+js(other))
}

// openConv opens the conversation named name from the list.
func (u *user) openConv(name string) {
	u.t.Helper()
	u.click(fmt.Sprintf(`#conv-list .conv[data-name=%s]`, css(name)))
	u.waitFor("conversation "+name+" to open", `document.querySelector('#thread-title')?.textContent === `+js(name)+` && !document.querySelector('#log .log-note:not(#log-start):not(#log-older)')`)
}

// click clicks the element sel once it is there and visible (a DOM click:
// it survives re-rendering between finding and clicking).
func (u *user) click(sel string) {
	u.t.Helper()
	u.waitFor("to click "+sel, `(() => { const e = document.querySelector(`+js(sel)+`); if (!e?.checkVisibility()) return false; e.click(); return true })()`)
}

// convID returns the id of the open conversation.
func (u *user) convID() string {
	var id string
	u.eval(`document.querySelector('#thread')?.dataset.conv ?? ''`, &id)
	if id == "" {
		u.fail("convID", fmt.Errorf("no conversation is open"))
	}
	return id
}

// send types text into the composer and presses Enter.
func (u *user) send(text string) {
	u.t.Helper()
	u.run(chromedp.Focus("#composer-input", chromedp.ByQuery), chromedp.SendKeys("#composer-input", text, chromedp.ByQuery), press("Enter", 13, "\r"))
	u.waitFor("the composer to clear", `document.querySelector('#composer-input').value === ''`)
}

// press sends one key the way a keyboard does: a keyDown that carries the
// text (so preventDefault on keydown stops it, as in a real browser; the
// separate char event of chromedp's SendKeys would not be stopped).
func press(key string, code int64, text string) chromedp.Action {
	return chromedp.ActionFunc(func(ctx context.Context) error {
		down := input.DispatchKeyEvent(input.KeyDown).WithKey(key).WithCode(key).WithWindowsVirtualKeyCode(code).WithNativeVirtualKeyCode(code)
		if text != "" {
			down = down.WithText(text).WithUnmodifiedText(text)
		}
		if err := down.Do(ctx); err != nil {
			return err
		}
		return input.DispatchKeyEvent(input.KeyUp).WithKey(key).WithCode(key).WithWindowsVirtualKeyCode(code).WithNativeVirtualKeyCode(code).Do(ctx)
	})
}

// messageExpr is a JavaScript expression for the log's messages with this exact text.
func messageExpr(text string) string {
	return `[...document.querySelectorAll('#log .msg')].filter(m => m.querySelector('.text')?.textContent === ` + js(text) + `)`
}

func (u *user) waitMessage(text string) {
	u.t.Helper()
	u.waitFor("message "+text, messageExpr(text)+`.length > 0`)
}

func (u *user) countMessages(text string) int {
	u.t.Helper()
	var n int
	u.eval(messageExpr(text)+`.length`, &n)
	return n
}

// waitStatus waits until the user's own message text shows status.
func (u *user) waitStatus(text, status string) {
	u.t.Helper()
	u.waitFor(fmt.Sprintf("%q to be %s", text, status), messageExpr(text)+`.some(m => m.dataset.status === `+js(status)+`)`)
}

func (u *user) unreadOf(conv string) string {
	var s string
	u.eval(fmt.Sprintf(`document.querySelector(%s)?.dataset.unread ?? 'missing'`, js(`#conv-list .conv[data-name=`+css(conv)+`]`)), &s)
	return s
}

func (u *user) title() string {
	var s string
	u.run(chromedp.Title(&s))
	return s
}

// screenshot saves the page as test-artifacts/screenshots/<name>.png and
// returns the path ("" if it could not).
func (u *user) screenshot(name string) string {
	var png []byte
	ctx, cancel := context.WithTimeout(u.ctx, stepTimeout)
	defer cancel()
	if err := chromedp.Run(ctx, chromedp.FullScreenshot(&png, 100)); err != nil {
		u.t.Logf("screenshot %s: %v", name, err)
		return ""
	}
	if err := os.MkdirAll(artifacts, 0o755); err != nil {
		u.t.Logf("screenshot dir: %v", err)
		return ""
	}
	path := filepath.Join(artifacts, strings.NewReplacer("/", "-", " ", "_").Replace(name)+".png")
	if err := os.WriteFile(path, png, 0o644); err != nil {
		u.t.Logf("screenshot %s: %v", name, err)
		return ""
	}
	return path
}

// offline cuts the page off the network (or reconnects it).
func (u *user) offline(off bool) {
	u.t.Helper()
	u.run(network.EmulateNetworkConditions(off, 0, -1, -1))
}

// checkClean fails the test if the page threw or opened a dialog.
func (u *user) checkClean() {
	u.t.Helper()
	if ex := u.exceptions(); len(ex) > 0 {
		u.t.Errorf("%s: uncaught exceptions in the page:\n%s", u.name, strings.Join(ex, "\n"))
	}
	if n := u.dialogs.Load(); n > 0 {
		u.t.Errorf("%s: the page opened %d dialog(s)", u.name, n)
	}
	u.mu.Lock()
	defer u.mu.Unlock()
	if len(u.urls) == 0 {
		u.t.Errorf("%s: no requests were recorded; the URL check is blind", u.name)
	}
	for _, url := range u.urls {
		if strings.HasPrefix(url, "data:") {
			continue // inline images (avatars): no request, and base64 may spell anything
		}
		// Access tokens are JWTs ("eyJ..."); refresh tokens never leave a body.
		if strings.Contains(url, "token") || strings.Contains(url, "eyJ") {
			u.t.Errorf("%s: a token in a URL: %s", u.name, url)
		}
	}
}

// phone makes the page phone-sized (390×844 CSS pixels, touch).
func (u *user) phone() {
	u.t.Helper()
	u.run(chromedp.EmulateViewport(390, 844, chromedp.EmulateScale(2), chromedp.EmulateMobile, chromedp.EmulateTouch))
}

// menu opens the actions menu of the message showing text and chooses the
// item (data-action or data-emoji) matching sel.
func (u *user) menu(text, sel string) {
	u.t.Helper()
	// A message still being sent has no menu yet: wait for the stored one.
	u.waitFor("the menu of "+text, `(() => { const more = `+messageExpr(text)+`.map(m => m.querySelector('.msg-more')).find(Boolean); more?.click(); return !!more })()`)
	u.click("#msg-menu " + sel)
}

// pickUser types a prefix into the search of dialog and clicks the result for name.
func (u *user) pickUser(dialog, name string) {
	u.t.Helper()
	search := dialog + " .user-search"
	result := fmt.Sprintf(`%s .user-result[data-username=%s]`, dialog, css(name))
	u.run(
		chromedp.WaitVisible(search, chromedp.ByQuery),
		chromedp.Evaluate(`document.querySelector(`+js(search)+`).value = ''`, nil),
		chromedp.SendKeys(search, name[:2], chromedp.ByQuery),
	)
	u.click(result)
}

// createGroup creates a group with title and members and opens it; with
// shot set, it saves a screenshot of the filled-in dialog under that name.
func (u *user) createGroup(shot, title string, members ...string) {
	u.t.Helper()
	u.click("#new-group")
	u.run(chromedp.WaitVisible("#group-title", chromedp.ByQuery), chromedp.SendKeys("#group-title", title, chromedp.ByQuery))
	for _, m := range members {
		u.pickUser("#dlg-new-group", m)
		u.waitFor(m+" picked", fmt.Sprintf(`[...document.querySelectorAll('#dlg-new-group .chip')].some(c => c.textContent === %s)`, js(m)))
	}
	if shot != "" {
		u.screenshot(shot)
	}
	u.click("#group-create")
	u.waitFor("the new group", `document.querySelector('#thread-title')?.textContent === `+js(title))
}
