package web_test

import (
	"bytes"
	"image"
	"image/color"
	"image/png"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/natter-chat/natter/internal/chattest"
)

// noisePNG writes a w×h PNG of random pixels (it does not compress, so a
// large one is uploaded in chunks) to dir/name.
func noisePNG(t *testing.T, dir, name string, w, h int) string {
	t.Helper()
	r := rand.New(rand.NewPCG(1, 2))
	return writePNG(t, dir, name, w, h, func(_, _ int) color.NRGBA {
		return color.NRGBA{uint8(r.IntN(256)), uint8(r.IntN(256)), uint8(r.IntN(256)), 255}
	})
}

// gradientPNG writes a w×h PNG of smooth colours (a small file) to dir/name.
func gradientPNG(t *testing.T, dir, name string, w, h int) string {
	t.Helper()
	return writePNG(t, dir, name, w, h, func(x, y int) color.NRGBA {
		return color.NRGBA{uint8(x * 255 / w), uint8(y * 255 / h), 160, 255}
	})
}

// writePNG writes a w×h PNG whose pixel (x, y) is at(x, y), row by row,
// to dir/name and returns its path.
func writePNG(t *testing.T, dir, name string, w, h int, at func(x, y int) color.NRGBA) string {
	t.Helper()
	img := image.NewNRGBA(image.Rect(0, 0, w, h))
	for y := range h {
		for x := range w {
			img.Set(x, y, at(x, y))
		}
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestWebClient_Attachments: alice picks a PNG (large enough to go up in
// chunks, with a hostile file name) and a text file, sends them with a
// message; bob sees the thumbnail loaded, opens the full image, and
// downloads the text file; the hostile name is only text.
func TestWebClient_Attachments(t *testing.T) {
	node := chattest.StartNode(t, "")
	b := startBrowser(t, node.URL)
	alice, bob := b.newUser("alice"), b.newUser("bob")
	alice.register()
	bob.register()
	alice.startDirect("bob")

	dir := t.TempDir()
	hostile := `<img src=x onerror="window.__pwned=1">.png`
	pngPath := noisePNG(t, dir, hostile, 480, 400) // ~750 KB: two chunks
	notes := "Packing list: boots, map, cocoa\n"
	txtPath := filepath.Join(dir, "notes.txt")
	if err := os.WriteFile(txtPath, []byte(notes), 0o644); err != nil {
		t.Fatal(err)
	}
	alice.run(chromedp.SetUploadFiles("#attach-input", []string{pngPath, txtPath}, chromedp.ByQuery))
	alice.waitFor("both uploads ready", `[...document.querySelectorAll('#attach-tray .attach-item')].filter(i => i.dataset.state === 'ready').length === 2`)
	var tray []string
	alice.eval(`[...document.querySelectorAll('#attach-tray .attach-name')].map(e => e.textContent)`, &tray)
	if len(tray) != 2 || tray[0] != hostile || tray[1] != "notes.txt" {
		t.Errorf("the tray shows %q, want the two file names as text", tray)
	}
	alice.send("Photos from the trip")
	alice.waitFor("the tray to empty", `document.querySelector('#attach-tray').hidden`)
	alice.waitStatus("Photos from the trip", "delivered")

	bob.openConv("alice")
	bob.waitMessage("Photos from the trip")
	bob.waitFor("the thumbnail to load", `(() => { const i = document.querySelector('#log img.att-thumb'); return !!i && i.complete && i.naturalWidth > 0 })()`)
	var got struct {
		Alt, Title, Src string
		Pwned           any
		Injected        int
		FileName        string
		FileSize        string
		Download        string
		Href            string
	}
	bob.eval(`(() => {
		const img = document.querySelector('#log img.att-thumb');
		const a = document.querySelector('#log a.att-file');
		return {
			Alt: img.alt, Title: img.parentElement.title, Src: img.getAttribute('src'),
			Pwned: window.__pwned ?? null,
			Injected: document.querySelectorAll('#log img:not(.att-thumb), [onerror]').length,
			FileName: a.querySelector('.att-name').textContent, FileSize: a.querySelector('.att-size').textContent,
			Download: a.getAttribute('download'), Href: a.getAttribute('href') ?? '',
		};
	})()`, &got)
	if got.Alt != hostile || got.Pwned != nil || got.Injected != 0 {
		t.Errorf("hostile file name: alt %q, __pwned %v, %d injected elements; want the name as text and nothing run", got.Alt, got.Pwned, got.Injected)
	}
	if got.FileName != "notes.txt" || got.FileSize != "32 B" || got.Download != "notes.txt" || got.Href == "" {
		t.Errorf("file link: name %q, size %q, download %q, href %q", got.FileName, got.FileSize, got.Download, got.Href)
	}

	// The download link works without a token (a signed URL) and gives the bytes.
	var downloaded string
	bob.run(chromedp.Evaluate(`fetch(document.querySelector('#log a.att-file').href, {credentials: 'omit'}).then(r => r.ok ? r.text() : 'HTTP ' + r.status)`, &downloaded, awaitPromise))
	if downloaded != notes {
		t.Errorf("downloaded %q, want %q", downloaded, notes)
	}

	// A click on the thumbnail opens the full image.
	bob.click("#log .att-image")
	bob.waitFor("the full image", `(() => { const i = document.querySelector('#image-full'); return !!i && i.complete && i.naturalWidth === 480 })()`)
	bob.screenshot("attachments")
	bob.run(chromedp.Evaluate(`document.querySelector('#dlg-image').close()`, nil))

	alice.waitFor("alice's own thumbnail", `(() => { const i = document.querySelector('#log img.att-thumb'); return !!i && i.complete && i.naturalWidth > 0 })()`)
	alice.checkClean()
	bob.checkClean()
}

// awaitPromise makes chromedp.Evaluate wait for the promise the expression returns.
func awaitPromise(p *runtime.EvaluateParams) *runtime.EvaluateParams {
	return p.WithAwaitPromise(true)
}
