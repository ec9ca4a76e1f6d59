package app_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"image/jpeg"
	"io"
	"io/fs"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/natter-chat/natter/client"
	"github.com/natter-chat/natter/internal/app"
	"github.com/natter-chat/natter/internal/blob"
	"github.com/natter-chat/natter/internal/chattest"
	"github.com/natter-chat/natter/internal/core"
)

// attachWorld is a node with a group of alice and bob, and carol, who is
// in no conversation with them.
type attachWorld struct {
	n                 *node
	alice, bob, carol *client.Client
	aliceID, bobID    string
	conv              string
}

func newAttachWorld(t *testing.T, mutate ...func(*app.Config)) *attachWorld {
	t.Helper()
	w := &attachWorld{n: startNode(t, "", mutate...)}
	w.alice, w.aliceID = w.n.user(t, "alice")
	w.bob, w.bobID = w.n.user(t, "bob")
	w.carol, _ = w.n.user(t, "carol")
	g, err := w.alice.CreateGroup(ctxT(t), "files", []string{w.bobID})
	if err != nil {
		t.Fatal(err)
	}
	w.conv = g.ID
	return w
}

// upload uploads data in one PUT and returns the finished attachment or
// the error.
func upload(t testing.TB, c *client.Client, conv, name string, data []byte) (client.Upload, error) {
	t.Helper()
	return c.UploadFile(ctxT(t), conv, name, "", bytes.NewReader(data), int64(len(data)), 0)
}

func mustUpload(t testing.TB, c *client.Client, conv, name string, data []byte) client.Upload {
	t.Helper()
	u, err := upload(t, c, conv, name, data)
	if err != nil {
		t.Fatalf("upload %s: %v", name, err)
	}
	if u.State != "ready" {
		t.Fatalf("upload %s is %s, want ready", name, u.State)
	}
	return u
}

func download(t testing.TB, c *client.Client, id string, thumbnail bool) ([]byte, http.Header) {
	t.Helper()
	var b bytes.Buffer
	h, err := c.Download(ctxT(t), id, thumbnail, &b)
	if err != nil {
		t.Fatalf("download %s (thumbnail %v): %v", id, thumbnail, err)
	}
	return b.Bytes(), h
}

func wantCode(t testing.TB, err error, code string) {
	t.Helper()
	var e *client.Error
	if !errors.As(err, &e) || e.Code != code {
		t.Fatalf("got %v, want error code %s", err, code)
	}
}

// get sends a GET with optional token and headers and returns the response
// with its body read.
func get(t testing.TB, u, token string, header ...string) (*http.Response, []byte) {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctxT(t), http.MethodGet, u, nil)
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res, b
}

// thumbnailOf waits until the attachment has a thumbnail and returns it.
func thumbnailOf(t testing.TB, c *client.Client, id string) []byte {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		u, err := c.Attachment(ctxT(t), id)
		if err != nil {
			t.Fatal(err)
		}
		if u.Thumbnail {
			b, _ := download(t, c, id, true)
			return b
		}
		if time.Now().After(deadline) {
			t.Fatalf("no thumbnail for %s after 20s", id)
		}
		time.Sleep(20 * time.Millisecond) // polling the worker's outcome
	}
}

func TestAttachments_JPEGLosesGPSAndGetsAnUprightThumbnail(t *testing.T) {
	w := newAttachWorld(t)
	src := chattest.JPEGWithGPS(t, 800, 600, 6) // sideways: to be turned 90° clockwise
	u := mustUpload(t, w.alice, w.conv, "holiday.jpg", src)
	if u.ContentType != "image/jpeg" || u.Width != 600 || u.Height != 800 {
		t.Fatalf("attachment %+v, want an upright 600×800 image/jpeg", u.Attachment)
	}
	stored, h := download(t, w.alice, u.ID, false)
	for _, s := range []string{"Exif", chattest.SecretNote, "\xFF\xE1"} {
		if bytes.Contains(stored, []byte(s)) {
			t.Errorf("the stored JPEG still contains %q", s)
		}
	}
	sum := sha256.Sum256(stored)
	if u.SHA256 != hex.EncodeToString(sum[:]) || u.Size != int64(len(stored)) {
		t.Errorf("recorded sha256 %s size %d; the stored bytes have %x and %d", u.SHA256, u.Size, sum, len(stored))
	}
	if h.Get("ETag") != `"`+u.SHA256+`"` || !strings.HasPrefix(h.Get("Content-Disposition"), "inline") || h.Get("Content-Type") != "image/jpeg" {
		t.Errorf("headers %v", h)
	}
	thumb := thumbnailOf(t, w.alice, u.ID)
	cfg, err := jpeg.DecodeConfig(bytes.NewReader(thumb))
	if err != nil {
		t.Fatalf("thumbnail is not a JPEG: %v", err)
	}
	if cfg.Width != 240 || cfg.Height != 320 {
		t.Errorf("thumbnail %d×%d, want 240×320 (longest side 320, aspect kept)", cfg.Width, cfg.Height)
	}
	img, _ := jpeg.Decode(bytes.NewReader(thumb))
	if r, _, b, _ := img.At(120, 40).RGBA(); r < b {
		t.Errorf("the thumbnail's top is not the photo's red left side: not upright")
	}
}

func TestAttachments_PNGLosesItsMetadata(t *testing.T) {
	w := newAttachWorld(t)
	u := mustUpload(t, w.alice, w.conv, "chart.png", chattest.PNGWithMetadata(t, 500, 100))
	if u.ContentType != "image/png" || u.Width != 500 || u.Height != 100 {
		t.Fatalf("attachment %+v", u.Attachment)
	}
	stored, _ := download(t, w.alice, u.ID, false)
	for _, s := range []string{"tEXt", "eXIf", chattest.SecretNote} {
		if bytes.Contains(stored, []byte(s)) {
			t.Errorf("the stored PNG still contains %q", s)
		}
	}
	cfg, err := jpeg.DecodeConfig(bytes.NewReader(thumbnailOf(t, w.alice, u.ID)))
	if err != nil || cfg.Width != 320 || cfg.Height != 64 {
		t.Errorf("thumbnail %d×%d (%v), want 320×64", cfg.Width, cfg.Height, err)
	}
}

func TestAttachments_DisguisedFilesAreRejected(t *testing.T) {
	w := newAttachWorld(t)
	for name, data := range map[string][]byte{
		"page.png":   []byte("<!DOCTYPE html><html><body><script>alert(document.cookie)</script></body></html>"),
		"tool.png":   append([]byte("\x7fELF\x02\x01\x01\x00"), make([]byte, 200)...),
		"setup.jpg":  append([]byte("MZ\x90\x00\x03\x00\x00\x00"), make([]byte, 200)...),
		"broken.jpg": append([]byte("\xFF\xD8\xFF\xE0"), make([]byte, 200)...),
	} {
		u, err := w.alice.CreateUpload(ctxT(t), w.conv, name, int64(len(data)), "image/png")
		if err != nil {
			t.Fatal(err)
		}
		_, err = w.alice.UploadChunk(ctxT(t), u.ID, 0, data, int64(len(data)))
		wantCode(t, err, "unsupported_media_type")
		if e := (*client.Error)(nil); errors.As(err, &e) && e.Status != http.StatusUnsupportedMediaType {
			t.Errorf("%s: status %d, want 415", name, e.Status)
		}
		got, err := w.alice.Attachment(ctxT(t), u.ID)
		if err != nil || got.State != "rejected" {
			t.Errorf("%s: state %q (%v), want rejected", name, got.State, err)
		}
		_, err = w.alice.SendAttachments(ctxT(t), w.conv, "send-"+name, "", []string{u.ID})
		wantCode(t, err, "conflict")
	}
}

// pdf returns n bytes that start like a PDF.
func pdf(n int) []byte {
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(i * 7 % 251)
	}
	copy(b, "%PDF-1.7\n")
	return b
}

func TestAttachments_ChunkedUploadResumesAfterAnInterruption(t *testing.T) {
	w := newAttachWorld(t)
	data := pdf(300 << 10)
	const chunk = 100 << 10
	ctx := ctxT(t)
	u, err := w.alice.CreateUpload(ctx, w.conv, "report.pdf", int64(len(data)), "application/pdf")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.alice.UploadChunk(ctx, u.ID, 0, data[:chunk], int64(len(data))); err != nil {
		t.Fatal(err)
	}
	// The connection dropped here. Where does the upload stand?
	req, _ := http.NewRequestWithContext(ctx, http.MethodHead, w.n.URL+"/v1/attachments/"+u.ID+"/content", nil)
	req.Header.Set("Authorization", "Bearer "+w.alice.Tokens().AccessToken)
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.Header.Get("Upload-Offset") != fmt.Sprint(chunk) {
		t.Fatalf("HEAD: status %d Upload-Offset %q, want %d", res.StatusCode, res.Header.Get("Upload-Offset"), chunk)
	}
	got, err := w.alice.Attachment(ctx, u.ID)
	if err != nil || got.Received != chunk || got.State != "uploading" {
		t.Fatalf("progress %+v (%v)", got, err)
	}
	// A chunk that skips ahead, or repeats the first, is refused.
	_, err = w.alice.UploadChunk(ctx, u.ID, 2*chunk, data[2*chunk:], int64(len(data)))
	wantCode(t, err, "conflict")
	_, err = w.alice.UploadChunk(ctx, u.ID, 0, data[:chunk], int64(len(data)))
	wantCode(t, err, "conflict")
	// A chunk too small to be anything but the last one is refused.
	_, err = w.alice.UploadChunk(ctx, u.ID, chunk, data[chunk:chunk+10], int64(len(data)))
	wantCode(t, err, "invalid_argument")
	// Someone else cannot add to it.
	_, err = w.bob.UploadChunk(ctx, u.ID, chunk, data[chunk:2*chunk], int64(len(data)))
	wantCode(t, err, "not_found")

	done, err := w.alice.ResumeUpload(ctx, u.ID, bytes.NewReader(data), int64(len(data)), chunk)
	if err != nil {
		t.Fatal(err)
	}
	sum := sha256.Sum256(data)
	if done.State != "ready" || done.ContentType != "application/pdf" || done.Size != int64(len(data)) || done.SHA256 != hex.EncodeToString(sum[:]) {
		t.Fatalf("finished upload %+v", done)
	}
	stored, h := download(t, w.alice, u.ID, false)
	if !bytes.Equal(stored, data) {
		t.Fatalf("downloaded %d bytes that differ from the %d uploaded", len(stored), len(data))
	}
	if !strings.HasPrefix(h.Get("Content-Disposition"), "attachment") || h.Get("X-Content-Type-Options") != "nosniff" {
		t.Errorf("a PDF is served with %v", h)
	}
	_, err = w.alice.UploadChunk(ctx, u.ID, 0, data[:chunk], int64(len(data)))
	wantCode(t, err, "conflict")
}

func TestAttachments_SizeLimit(t *testing.T) {
	w := newAttachWorld(t, func(c *app.Config) { c.Attachments.MaxUploadBytes = 1000 })
	ctx := ctxT(t)
	_, err := w.alice.CreateUpload(ctx, w.conv, "big.pdf", 1001, "")
	wantCode(t, err, "too_large")
	var e *client.Error
	if errors.As(err, &e) && e.Status != http.StatusRequestEntityTooLarge {
		t.Errorf("status %d, want 413", e.Status)
	}
	u, err := w.alice.CreateUpload(ctx, w.conv, "small.pdf", 500, "")
	if err != nil {
		t.Fatal(err)
	}
	// One PUT with more bytes than announced, and more than the limit.
	status, body := rawRequest(t, http.MethodPut, w.n.URL+"/v1/attachments/"+u.ID+"/content", w.alice.Tokens().AccessToken, string(pdf(1200)))
	if status != http.StatusRequestEntityTooLarge || !strings.Contains(body, "too_large") {
		t.Errorf("oversized PUT: %d %s", status, body)
	}
	mustUpload(t, w.alice, w.conv, "fits.pdf", pdf(1000))
}

func TestAttachments_RangeAndConditionalRequests(t *testing.T) {
	w := newAttachWorld(t)
	data := pdf(5000)
	u := mustUpload(t, w.alice, w.conv, "doc.pdf", data)
	tok := w.alice.Tokens().AccessToken
	u1 := w.n.URL + "/v1/attachments/" + u.ID + "/content"
	res, body := get(t, u1, tok, "Range", "bytes=100-199")
	if res.StatusCode != http.StatusPartialContent || !bytes.Equal(body, data[100:200]) || res.Header.Get("Content-Range") != "bytes 100-199/5000" {
		t.Fatalf("range: %d %q, %d bytes", res.StatusCode, res.Header.Get("Content-Range"), len(body))
	}
	if res.Header.Get("Cache-Control") != "private, max-age=600" {
		t.Errorf("Cache-Control %q", res.Header.Get("Cache-Control"))
	}
	res, _ = get(t, u1, tok, "If-None-Match", `"`+u.SHA256+`"`)
	if res.StatusCode != http.StatusNotModified {
		t.Errorf("If-None-Match: %d, want 304", res.StatusCode)
	}
	res, _ = get(t, u1, tok, "If-None-Match", `"something else"`)
	if res.StatusCode != http.StatusOK {
		t.Errorf("If-None-Match of another ETag: %d, want 200", res.StatusCode)
	}
}

func TestAttachments_OnlyMembersGetThem(t *testing.T) {
	w := newAttachWorld(t, func(c *app.Config) { c.Attachments.URLTTL = 2 * time.Second })
	ctx := ctxT(t)
	img := mustUpload(t, w.alice, w.conv, "a.jpg", chattest.JPEGWithGPS(t, 64, 48, 1))
	other := mustUpload(t, w.alice, w.conv, "b.pdf", pdf(2000))
	thumbnailOf(t, w.alice, img.ID)
	paths := []string{"", "/content", "/thumbnail", "/url"}
	refused := func(who string, c *client.Client, id string) {
		t.Helper()
		for _, p := range paths {
			res, body := get(t, w.n.URL+"/v1/attachments/"+id+p, c.Tokens().AccessToken)
			if res.StatusCode != http.StatusNotFound || !strings.Contains(string(body), "not_found") {
				t.Errorf("%s GET %s: %d %s, want 404 not_found", who, p, res.StatusCode, body)
			}
		}
	}
	// Before it is sent, an upload is its uploader's alone.
	refused("bob before the send", w.bob, img.ID)
	refused("carol", w.carol, img.ID)
	refused("carol, unknown id", w.carol, "aaaaaaaaaaaaaaaaaaaaaaaaaa")
	if _, err := w.alice.SendAttachments(ctx, w.conv, "k1", "look", []string{img.ID}); err != nil {
		t.Fatal(err)
	}
	if b, _ := download(t, w.bob, img.ID, false); len(b) == 0 {
		t.Fatal("bob got no content")
	}
	download(t, w.bob, img.ID, true)
	refused("carol after the send", w.carol, img.ID)

	// Signed URLs: they work without a token, for that id, until they expire.
	signed, err := w.bob.AttachmentURL(ctx, img.ID)
	if err != nil || signed.ThumbnailURL == "" {
		t.Fatalf("AttachmentURL: %+v %v", signed, err)
	}
	res, body := get(t, w.n.URL+signed.URL, "")
	if res.StatusCode != http.StatusOK || len(body) == 0 || !strings.HasPrefix(res.Header.Get("Cache-Control"), "public, max-age=") ||
		!strings.HasSuffix(res.Header.Get("Cache-Control"), "immutable") {
		t.Fatalf("signed URL: %d, Cache-Control %q", res.StatusCode, res.Header.Get("Cache-Control"))
	}
	if res, _ := get(t, w.n.URL+signed.ThumbnailURL, ""); res.StatusCode != http.StatusOK {
		t.Fatalf("signed thumbnail URL: %d", res.StatusCode)
	}
	q, _ := url.ParseQuery(strings.SplitN(signed.URL, "?", 2)[1])
	sig, exp := q.Get("sig"), q.Get("exp")
	tampered := []string{
		"/v1/attachments/" + other.ID + "/content?exp=" + exp + "&sig=" + sig, // another id
		"/v1/attachments/" + img.ID + "/content?exp=" + exp + "9&sig=" + sig,  // a later expiry
		"/v1/attachments/" + img.ID + "/content?exp=" + exp + "&sig=" + strings.Repeat("A", len(sig)),
		"/v1/attachments/" + img.ID + "/content?exp=" + exp,
	}
	for _, p := range tampered {
		if res, _ := get(t, w.n.URL+p, ""); res.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s: %d, want 404", p, res.StatusCode)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for {
		res, _ := get(t, w.n.URL+signed.URL, "")
		if res.StatusCode == http.StatusNotFound {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a signed URL still works 10s after it expired")
		}
		time.Sleep(100 * time.Millisecond) // waiting for the clock to pass exp
	}

	// A removed member loses access at once.
	if err := w.alice.RemoveMember(ctx, w.conv, w.bobID); err != nil {
		t.Fatal(err)
	}
	refused("bob after his removal", w.bob, img.ID)
	if res, _ := get(t, w.n.URL+"/v1/attachments/"+img.ID+"/content", ""); res.StatusCode != http.StatusUnauthorized {
		t.Errorf("no token and no signature: %d, want 401", res.StatusCode)
	}
}

func TestAttachments_SendRules(t *testing.T) {
	w := newAttachWorld(t)
	ctx := ctxT(t)
	other, err := w.alice.CreateGroup(ctx, "elsewhere", []string{w.bobID})
	if err != nil {
		t.Fatal(err)
	}
	mine := mustUpload(t, w.alice, w.conv, "mine.pdf", pdf(1000))
	bobs := mustUpload(t, w.bob, w.conv, "bobs.pdf", pdf(1000))
	elsewhere := mustUpload(t, w.alice, other.ID, "elsewhere.pdf", pdf(1000))
	_, err = w.alice.SendAttachments(ctx, w.conv, "s1", "", []string{bobs.ID})
	wantCode(t, err, "not_found")
	_, err = w.alice.SendAttachments(ctx, w.conv, "s2", "", []string{elsewhere.ID})
	wantCode(t, err, "not_found")
	_, err = w.alice.SendAttachments(ctx, w.conv, "s3", "", []string{"not-an-id"})
	wantCode(t, err, "invalid_argument")
	_, err = w.alice.SendAttachments(ctx, w.conv, "s4", "", []string{mine.ID, mine.ID})
	wantCode(t, err, "invalid_argument")
	eleven := make([]string, 11)
	for i := range eleven {
		eleven[i] = mine.ID
	}
	_, err = w.alice.SendAttachments(ctx, w.conv, "s5", "", eleven)
	wantCode(t, err, "invalid_argument")
	_, err = w.alice.SendAttachments(ctx, w.conv, "s6", "", nil)
	wantCode(t, err, "invalid_argument") // no text and no file

	conn, in := connect(t, w.bob)
	_ = conn
	sent, err := w.alice.SendAttachments(ctx, w.conv, "s7", "", []string{mine.ID})
	if err != nil {
		t.Fatal(err)
	}
	want := client.Attachment{ID: mine.ID, Name: "mine.pdf", ContentType: "application/pdf", Size: 1000, SHA256: mine.SHA256}
	if len(sent.Message.Attachments) != 1 || sent.Message.Attachments[0] != want {
		t.Fatalf("sent message carries %+v, want %+v", sent.Message.Attachments, want)
	}
	in.waitFor(t, "bob's message frame with the attachment", func(ms []client.Message) bool {
		for _, m := range ms {
			if m.ID == sent.Message.ID && len(m.Attachments) == 1 && m.Attachments[0] == want {
				return true
			}
		}
		return false
	})
	retry, err := w.alice.SendAttachments(ctx, w.conv, "s7", "", []string{mine.ID})
	if err != nil || !retry.Duplicate || len(retry.Message.Attachments) != 1 {
		t.Fatalf("retry: %+v %v", retry, err)
	}
	_, err = w.alice.SendAttachments(ctx, w.conv, "s8", "again", []string{mine.ID})
	wantCode(t, err, "conflict")
	page, err := w.bob.History(ctx, w.conv, client.HistoryQuery{})
	if err != nil || len(page.Messages) != 1 || len(page.Messages[0].Attachments) != 1 {
		t.Fatalf("history: %+v %v", page, err)
	}

	// Over the WebSocket too.
	second := mustUpload(t, w.bob, w.conv, "second.pdf", pdf(900))
	m, _, err := conn.SendAttachments(ctx, w.conv, "w1", "over ws", []string{second.ID})
	if err != nil || len(m.Attachments) != 1 || m.Attachments[0].ID != second.ID {
		t.Fatalf("ws send: %+v %v", m, err)
	}
}

func TestAttachments_DeletingTheMessageDeletesTheFiles(t *testing.T) {
	w := newAttachWorld(t, func(c *app.Config) { c.Attachments.SweepInterval = 50 * time.Millisecond })
	ctx := ctxT(t)
	img := mustUpload(t, w.alice, w.conv, "gone.jpg", chattest.JPEGWithGPS(t, 64, 48, 1))
	thumbnailOf(t, w.alice, img.ID)
	sent, err := w.alice.SendAttachments(ctx, w.conv, "d1", "soon gone", []string{img.ID})
	if err != nil {
		t.Fatal(err)
	}
	blobs := filepath.Join(w.n.Dir, "blobs", "objects")
	if n := countFiles(t, blobs, img.ID); n != 2 {
		t.Fatalf("%d blobs of %s before the deletion, want content and thumbnail", n, img.ID)
	}
	deleted, err := w.alice.Delete(ctx, w.conv, sent.Message.ID)
	if err != nil || len(deleted.Attachments) != 0 {
		t.Fatalf("delete: %+v %v", deleted, err)
	}
	for _, p := range []string{"/content", "/thumbnail", ""} {
		if res, _ := get(t, w.n.URL+"/v1/attachments/"+img.ID+p, w.bob.Tokens().AccessToken); res.StatusCode != http.StatusNotFound {
			t.Errorf("GET %s after the deletion: %d, want 404", p, res.StatusCode)
		}
	}
	deadline := time.Now().Add(10 * time.Second)
	for countFiles(t, blobs, img.ID) > 0 {
		if time.Now().After(deadline) {
			t.Fatal("the sweep left the deleted message's blobs for 10s")
		}
		time.Sleep(20 * time.Millisecond) // polling the sweep
	}
}

// countFiles counts the files under dir whose name mentions id.
func countFiles(t testing.TB, dir, id string) int {
	t.Helper()
	n := 0
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.Contains(d.Name(), id) {
			n++
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// TestAttachments_AnImageWithoutAPossibleThumbnailSaysSo damages an
// image's stored bytes after the upload checks (a job gate overwrites them
// before the first thumbnail attempt): the thumbnail job fails for good,
// the attachment says that no thumbnail will come, its content is still
// served, its thumbnail is 404 with a clear message, and the sweeps that
// follow do not queue it again. On SQLite (embedded) and PostgreSQL
// (cluster). That the sweep skips the image at all is shown by
// internal/core's thumbnail tests, with a clock that gets past the job
// runner's two-minute duplicate window; here the window alone would hide
// a re-queue.
func TestAttachments_AnImageWithoutAPossibleThumbnailSaysSo(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) {
		testUnthumbnailable(t, func(t *testing.T, mutate func(*app.Config)) *node { return startNode(t, "", mutate) })
	})
	t.Run("postgres", func(t *testing.T) {
		eachNATS(t, func(t *testing.T, c *cluster) {
			deleteJobStreams(t, c)
			testUnthumbnailable(t, func(t *testing.T, mutate func(*app.Config)) *node { return c.start(t, mutate) })
		})
	})
}

func testUnthumbnailable(t *testing.T, start func(t *testing.T, mutate func(*app.Config)) *node) {
	blobs := t.TempDir()
	damaged := chattest.UndecodablePNG(t, 64, 48)
	var attempts atomic.Int32
	damage := func(ctx context.Context, kind string, payload []byte) error {
		if kind != core.JobThumbnail || attempts.Add(1) > 1 {
			return nil
		}
		d, err := blob.OpenDisk(blobs)
		if err != nil {
			return err
		}
		defer d.Close()
		_, err = d.Put(ctx, "att/"+string(payload)+"/content", bytes.NewReader(damaged))
		return err
	}
	n := start(t, func(cfg *app.Config) {
		cfg.Attachments.Dir, cfg.Attachments.SweepInterval, cfg.JobGate = blobs, 50*time.Millisecond, damage
	})
	ctx := ctxT(t)
	alice, _ := n.user(t, "alice")
	g, err := alice.CreateGroup(ctx, "files", nil)
	if err != nil {
		t.Fatal(err)
	}
	tok := alice.Tokens().AccessToken
	u := mustUpload(t, alice, g.ID, "photo.png", chattest.PNGWithMetadata(t, 64, 48))

	var got struct {
		Attachment struct {
			Thumbnail       bool `json:"thumbnail"`
			ThumbnailFailed bool `json:"thumbnail_failed"`
		} `json:"attachment"`
	}
	eventually(t, 20*time.Second, "the attachment to say that no thumbnail will come", func() bool {
		_, body := get(t, n.URL+"/v1/attachments/"+u.ID, tok)
		if err := json.Unmarshal(body, &got); err != nil {
			t.Fatalf("GET attachment: %s", body)
		}
		return got.Attachment.ThumbnailFailed
	})
	if got.Attachment.Thumbnail {
		t.Errorf("the attachment says both thumbnail and thumbnail_failed")
	}
	if content, _ := download(t, alice, u.ID, false); !bytes.Equal(content, damaged) {
		t.Errorf("the content download gave %d bytes, want the %d stored", len(content), len(damaged))
	}
	res, body := get(t, n.URL+"/v1/attachments/"+u.ID+"/thumbnail", tok)
	if res.StatusCode != http.StatusNotFound || !strings.Contains(string(body), `"code":"not_found"`) ||
		!strings.Contains(string(body), "no thumbnail can be made of this image") {
		t.Errorf("GET thumbnail: %d %s, want 404 not_found saying that no thumbnail can be made", res.StatusCode, body)
	}
	if signed, err := alice.AttachmentURL(ctx, u.ID); err != nil || signed.URL == "" || signed.ThumbnailURL != "" {
		t.Errorf("signed URLs %+v (%v), want a content URL and no thumbnail URL", signed, err)
	}
	sent, err := alice.SendAttachments(ctx, g.ID, "k1", "", []string{u.ID})
	if err != nil {
		t.Fatal(err)
	}
	_, body = get(t, n.URL+"/v1/conversations/"+g.ID+"/messages/"+sent.Message.ID, tok)
	if !strings.Contains(string(body), `"thumbnail_failed":true`) {
		t.Errorf("the message carries %s, want its attachment with thumbnail_failed", body)
	}

	// Two sweeps later (each removes a rejected upload made after the
	// last), the job has still run once, and died once.
	for i := range 2 {
		name := fmt.Sprintf("page%d.png", i)
		page := []byte("<!DOCTYPE html><html><body>not an image</body></html>")
		r, err := alice.CreateUpload(ctx, g.ID, name, int64(len(page)), "")
		if err != nil {
			t.Fatal(err)
		}
		_, err = alice.UploadChunk(ctx, r.ID, 0, page, int64(len(page)))
		wantCode(t, err, "unsupported_media_type")
		eventually(t, 20*time.Second, "a sweep to remove "+name, func() bool {
			res, _ := get(t, n.URL+"/v1/attachments/"+r.ID, tok)
			return res.StatusCode == http.StatusNotFound
		})
	}
	if a := attempts.Load(); a != 1 {
		t.Errorf("the thumbnail job ran %d times, want once", a)
	}
	if dead := jobsCount(t, n.URL, "dead"); dead != "1" {
		t.Errorf("%q thumbnail jobs dead-lettered, want 1", dead)
	}
}

// jobsCount reads natter_jobs_total{kind="thumbnail",result=result} from
// a node's /metrics ("" when absent).
func jobsCount(t *testing.T, url, result string) string {
	t.Helper()
	_, body := get(t, url+"/metrics", "")
	prefix := `natter_jobs_total{kind="thumbnail",result="` + result + `"} `
	for line := range strings.Lines(string(body)) {
		if strings.HasPrefix(line, prefix) {
			return strings.TrimSpace(strings.TrimPrefix(line, prefix))
		}
	}
	return ""
}
