package app_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"image"
	_ "image/png" // decodes the avatars served
	"io"
	"io/fs"
	"net/http"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/natter-chat/natter/client"
	"github.com/natter-chat/natter/internal/app"
	"github.com/natter-chat/natter/internal/chattest"
)

// postAvatar uploads data as the caller's avatar and returns the status
// and the body.
func postAvatar(t testing.TB, n *node, c *client.Client, data []byte) (int, []byte) {
	t.Helper()
	req, _ := http.NewRequestWithContext(ctxT(t), http.MethodPost, n.URL+"/v1/users/me/avatar", bytes.NewReader(data))
	req.Header.Set("Authorization", "Bearer "+c.Tokens().AccessToken)
	req.Header.Set("Content-Type", "application/octet-stream")
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	b, _ := io.ReadAll(res.Body)
	return res.StatusCode, b
}

// mustPostAvatar uploads data as the caller's avatar and returns its id.
func mustPostAvatar(t testing.TB, n *node, c *client.Client, data []byte) string {
	t.Helper()
	status, body := postAvatar(t, n, c, data)
	var res struct{ User client.Profile }
	if err := json.Unmarshal(body, &res); err != nil || status != http.StatusOK || res.User.Avatar == nil || *res.User.Avatar == "" {
		t.Fatalf("POST avatar: %d %s", status, body)
	}
	return *res.User.Avatar
}

func sha(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

func TestAvatars_UploadServesACleanSquareToEveryone(t *testing.T) {
	w := newAttachWorld(t)
	id := mustPostAvatar(t, w.n, w.alice, chattest.PNGWithMetadata(t, 1000, 700))
	if p, err := w.bob.Profile(ctxT(t), w.aliceID); err != nil || p.Avatar == nil || *p.Avatar != id {
		t.Fatalf("alice's profile as bob sees it: %+v, %v", p, err)
	}
	url := w.n.URL + "/v1/users/" + w.aliceID + "/avatar"
	// carol shares no conversation with alice: avatars are public to users, as profiles.
	for _, c := range []*client.Client{w.alice, w.bob, w.carol} {
		res, body := get(t, url, c.Tokens().AccessToken)
		if res.StatusCode != http.StatusOK {
			t.Fatalf("GET avatar: %d %s", res.StatusCode, body)
		}
		h := res.Header
		if h.Get("Content-Type") != "image/png" || h.Get("ETag") != `"`+sha(body)+`"` ||
			h.Get("Cache-Control") != "private, max-age=3600" || h.Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("headers %v", h)
		}
		for _, s := range []string{"tEXt", "eXIf", chattest.SecretNote} {
			if bytes.Contains(body, []byte(s)) {
				t.Errorf("the avatar still contains %q", s)
			}
		}
		cfg, _, err := image.DecodeConfig(bytes.NewReader(body))
		if err != nil || cfg.Width != 512 || cfg.Height != 512 {
			t.Errorf("avatar %d×%d (%v), want 512×512", cfg.Width, cfg.Height, err)
		}
		again, _ := get(t, url, c.Tokens().AccessToken, "If-None-Match", h.Get("ETag"))
		if again.StatusCode != http.StatusNotModified {
			t.Errorf("If-None-Match: %d, want 304", again.StatusCode)
		}
	}
	res, thumb := get(t, url+"?size=thumb", w.bob.Tokens().AccessToken)
	cfg, _, err := image.DecodeConfig(bytes.NewReader(thumb))
	if res.StatusCode != 200 || err != nil || cfg.Width != 128 || cfg.Height != 128 || res.Header.Get("ETag") != `"`+sha(thumb)+`"` {
		t.Errorf("thumbnail: %d, %d×%d (%v), ETag %s", res.StatusCode, cfg.Width, cfg.Height, err, res.Header.Get("ETag"))
	}
	if res, _ := get(t, w.n.URL+"/v1/users/me/avatar", w.alice.Tokens().AccessToken); res.StatusCode != 200 {
		t.Errorf("GET /v1/users/me/avatar: %d", res.StatusCode)
	}
	// Trespass and bad input.
	if res, _ := get(t, url, ""); res.StatusCode != http.StatusUnauthorized {
		t.Errorf("without a token: %d, want 401", res.StatusCode)
	}
	if res, _ := get(t, url+"?size=huge", w.bob.Tokens().AccessToken); res.StatusCode != http.StatusBadRequest {
		t.Errorf("size=huge: %d, want 400", res.StatusCode)
	}
	for _, u := range []string{w.bobID, "999999999", "nobody"} {
		res, body := get(t, w.n.URL+"/v1/users/"+u+"/avatar", w.bob.Tokens().AccessToken)
		if res.StatusCode != http.StatusNotFound && !(u == "nobody" && res.StatusCode == http.StatusBadRequest) {
			t.Errorf("avatar of %s: %d %s", u, res.StatusCode, body)
		}
	}
}

func TestAvatars_ReplacingAndDeletingRemoveTheBlobs(t *testing.T) {
	w := newAttachWorld(t)
	blobs := filepath.Join(w.n.Dir, "blobs", "objects")
	first := mustPostAvatar(t, w.n, w.alice, chattest.JPEGWithGPS(t, 300, 200, 6))
	if n := countFiles(t, blobs, first); n != 2 {
		t.Fatalf("%d blobs of the first avatar, want image and thumbnail", n)
	}
	res, body := get(t, w.n.URL+"/v1/users/"+w.aliceID+"/avatar", w.bob.Tokens().AccessToken)
	cfg, _, err := image.DecodeConfig(bytes.NewReader(body))
	if res.Header.Get("Content-Type") != "image/jpeg" || err != nil || cfg.Width != 200 || cfg.Height != 200 || bytes.Contains(body, []byte(chattest.SecretNote)) {
		t.Fatalf("a JPEG avatar: %v, %d×%d (%v)", res.Header, cfg.Width, cfg.Height, err)
	}
	second := mustPostAvatar(t, w.n, w.alice, chattest.PNGWithMetadata(t, 64, 64))
	if second == first {
		t.Fatal("a new avatar kept the old id")
	}
	if n := countFiles(t, blobs, first); n != 0 {
		t.Errorf("%d blobs of the replaced avatar remain", n)
	}
	if n := countFiles(t, blobs, second); n != 2 {
		t.Errorf("%d blobs of the new avatar, want 2", n)
	}
	// PATCH takes only the caller's own current avatar (or "").
	_, err = w.alice.UpdateProfile(ctxT(t), client.ProfileRequest{Avatar: strp(first)})
	wantCode(t, err, "not_found")
	_, err = w.bob.UpdateProfile(ctxT(t), client.ProfileRequest{Avatar: strp(second)})
	wantCode(t, err, "not_found")
	if _, err := w.alice.UpdateProfile(ctxT(t), client.ProfileRequest{Avatar: strp("")}); err != nil {
		t.Fatal(err)
	}
	if res, _ := get(t, w.n.URL+"/v1/users/"+w.aliceID+"/avatar", w.bob.Tokens().AccessToken); res.StatusCode != 404 {
		t.Errorf("an avatar taken off is still served: %d", res.StatusCode)
	}
	if p, err := w.alice.UpdateProfile(ctxT(t), client.ProfileRequest{Avatar: strp(second)}); err != nil || *p.Avatar != second {
		t.Fatalf("wearing it again: %+v %v", p, err)
	}
	status, text := rawRequest(t, http.MethodDelete, w.n.URL+"/v1/users/me/avatar", w.alice.Tokens().AccessToken, "")
	if status != 200 || strings.Contains(text, second) {
		t.Fatalf("DELETE avatar: %d %s", status, text)
	}
	if res, _ := get(t, w.n.URL+"/v1/users/"+w.aliceID+"/avatar", w.bob.Tokens().AccessToken); res.StatusCode != 404 {
		t.Errorf("a deleted avatar is still served: %d", res.StatusCode)
	}
	if n := countFiles(t, blobs, second); n != 0 {
		t.Errorf("%d blobs of the deleted avatar remain", n)
	}
	if status, _ := rawRequest(t, http.MethodDelete, w.n.URL+"/v1/users/me/avatar", w.alice.Tokens().AccessToken, ""); status != 200 {
		t.Errorf("deleting no avatar: %d, want 200", status)
	}
}

func TestAvatars_BadUploadsAreRefused(t *testing.T) {
	w := newAttachWorld(t)
	for _, c := range []struct {
		name   string
		data   []byte
		status int
		code   string
	}{
		{"empty", nil, 400, "invalid_argument"},
		{"a PDF", pdf(1), 415, "unsupported_media_type"},
		{"a PNG header with no pixels", chattest.PNGWithMetadata(t, 64, 64)[:60], 415, "unsupported_media_type"},
		{"too big", append(chattest.PNGWithMetadata(t, 8, 8), make([]byte, 5<<20)...), 413, "too_large"},
	} {
		status, body := postAvatar(t, w.n, w.alice, c.data)
		if status != c.status || !strings.Contains(string(body), `"`+c.code+`"`) {
			t.Errorf("%s: %d %s, want %d %s", c.name, status, body, c.status, c.code)
		}
	}
	req, _ := http.NewRequestWithContext(ctxT(t), http.MethodPost, w.n.URL+"/v1/users/me/avatar", bytes.NewReader(chattest.PNGWithMetadata(t, 8, 8)))
	res, err := http.DefaultClient.Do(req)
	if err != nil || res.StatusCode != http.StatusUnauthorized {
		t.Errorf("upload without a token: %v %v", res, err)
	}
	if res != nil {
		res.Body.Close()
	}
	if p, err := w.alice.Profile(ctxT(t), w.aliceID); err != nil || p.Avatar != nil && *p.Avatar != "" {
		t.Errorf("a refused upload changed the profile: %+v %v", p, err)
	}
}

// exportZip downloads c's export.
func exportZip(t testing.TB, c *client.Client) map[string][]byte {
	t.Helper()
	var buf bytes.Buffer
	if _, err := c.Export(ctxT(t), &buf); err != nil {
		t.Fatal(err)
	}
	return readZip(t, buf.Bytes())
}

func TestExport_CarriesTheUsersFilesOnly(t *testing.T) {
	w := newAttachWorld(t)
	img := mustUpload(t, w.alice, w.conv, "..:secret..photo?.jpg", chattest.JPEGWithGPS(t, 64, 48, 1))
	doc := mustUpload(t, w.alice, w.conv, "notes.pdf", pdf(3))
	gone := mustUpload(t, w.alice, w.conv, "gone.pdf", pdf(4))
	bobs := mustUpload(t, w.bob, w.conv, "bob-SECRET.pdf", pdf(5))
	sent, err := w.alice.SendAttachments(ctxT(t), w.conv, "x1", "photo", []string{img.ID})
	if err != nil {
		t.Fatal(err)
	}
	deleted, err := w.alice.SendAttachments(ctxT(t), w.conv, "x2", "soon gone", []string{gone.ID})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.alice.Delete(ctxT(t), w.conv, deleted.Message.ID); err != nil {
		t.Fatal(err)
	}
	if _, err := w.bob.SendAttachments(ctxT(t), w.conv, "b1", "mine", []string{bobs.ID}); err != nil {
		t.Fatal(err)
	}
	avatar := mustPostAvatar(t, w.n, w.alice, chattest.PNGWithMetadata(t, 40, 40))

	files := exportZip(t, w.alice)
	var manifest struct {
		Files []struct {
			Path, Kind, ID, Name, ContentType, SHA256, Conversation, Message string
			Size                                                             int64
		}
	}
	if err := json.Unmarshal(files["manifest.json"], &manifest); err != nil {
		t.Fatal(err)
	}
	byID := map[string]int{}
	for i, f := range manifest.Files {
		byID[f.ID] = i
		data, ok := files[f.Path]
		if !ok {
			t.Errorf("manifest lists %s, which the archive lacks", f.Path)
			continue
		}
		if sha(data) != f.SHA256 || int64(len(data)) != f.Size {
			t.Errorf("%s: sha256 %s size %d, manifest says %s %d", f.Path, sha(data), len(data), f.SHA256, f.Size)
		}
	}
	if len(manifest.Files) != 3 {
		t.Errorf("manifest lists %d files, want alice's photo, notes and avatar: %+v", len(manifest.Files), manifest.Files)
	}
	photo := manifest.Files[byID[img.ID]]
	if photo.Path != "attachments/"+img.ID+"-_secret_photo_.jpg" || photo.Name != img.Name || photo.Conversation != w.conv ||
		photo.Message != sent.Message.ID || photo.SHA256 != img.SHA256 {
		t.Errorf("photo entry %+v", photo)
	}
	if notes := manifest.Files[byID[doc.ID]]; notes.Path != "attachments/"+doc.ID+"-notes.pdf" || notes.Message != "" || notes.Kind != "attachment" {
		t.Errorf("unsent upload entry %+v", notes)
	}
	if av := manifest.Files[byID[avatar]]; av.Path != "avatar.png" || av.Kind != "avatar" {
		t.Errorf("avatar entry %+v", av)
	}
	if _, ok := byID[gone.ID]; ok {
		t.Error("the export has the attachment of a deleted message")
	}
	for name := range files {
		if strings.Contains(name, bobs.ID) || strings.Contains(name, "SECRET") || strings.Contains(name, "..") {
			t.Errorf("the export holds %s", name)
		}
	}
	// bob's export has his file and none of alice's.
	bobFiles := exportZip(t, w.bob)
	if _, ok := bobFiles["attachments/"+bobs.ID+"-bob-SECRET.pdf"]; !ok || len(bobFiles) != len(files)-2 {
		names := []string{}
		for n := range bobFiles {
			names = append(names, n)
		}
		t.Errorf("bob's export: %v", names)
	}
}

func TestExport_OverTheCapIsRefusedUpFront(t *testing.T) {
	w := newAttachWorld(t, func(c *app.Config) { c.ExportMaxBytes = 2500 })
	mustUpload(t, w.alice, w.conv, "a.pdf", pdf(1500))
	if len(exportZip(t, w.alice)) == 0 {
		t.Fatal("an export under the cap failed")
	}
	mustUpload(t, w.alice, w.conv, "b.pdf", pdf(1500))
	status, body := rawRequest(t, http.MethodGet, w.n.URL+"/v1/users/me/export", w.alice.Tokens().AccessToken, "")
	if status != http.StatusRequestEntityTooLarge || !strings.Contains(body, `"too_large"`) {
		t.Fatalf("export over the cap: %d %s", status, body)
	}
	if _, err := w.bob.Export(ctxT(t), io.Discard); err != nil {
		t.Errorf("bob's export is under the cap: %v", err)
	}
}

func TestAvatars_DeletingTheAccountRemovesAvatarAndFiles(t *testing.T) {
	w := newAttachWorld(t, func(c *app.Config) { c.Attachments.SweepInterval = 50 * time.Millisecond })
	ctx := ctxT(t)
	blobs := filepath.Join(w.n.Dir, "blobs", "objects")
	avatar := mustPostAvatar(t, w.n, w.alice, chattest.PNGWithMetadata(t, 64, 64))
	sentFile := mustUpload(t, w.alice, w.conv, "sent.pdf", pdf(2))
	unsent := mustUpload(t, w.alice, w.conv, "unsent.pdf", pdf(3))
	bobs := mustUpload(t, w.bob, w.conv, "bobs.pdf", pdf(4))
	if _, err := w.alice.SendAttachments(ctx, w.conv, "s1", "file", []string{sentFile.ID}); err != nil {
		t.Fatal(err)
	}
	if _, err := w.bob.SendAttachments(ctx, w.conv, "b1", "bob's file", []string{bobs.ID}); err != nil {
		t.Fatal(err)
	}
	if b, _ := download(t, w.bob, sentFile.ID, false); len(b) == 0 {
		t.Fatal("bob cannot download alice's file before the deletion")
	}
	if err := w.alice.DeleteAccount(ctx, "a long enough passphrase"); err != nil {
		t.Fatal(err)
	}
	if res, _ := get(t, w.n.URL+"/v1/users/"+w.aliceID+"/avatar", w.bob.Tokens().AccessToken); res.StatusCode != http.StatusNotFound {
		t.Errorf("the deleted account's avatar: %d, want 404", res.StatusCode)
	}
	if n := countFiles(t, blobs, avatar); n != 0 {
		t.Errorf("%d avatar blobs remain after the account deletion", n)
	}
	if res, _ := get(t, w.n.URL+"/v1/attachments/"+sentFile.ID+"/content", w.bob.Tokens().AccessToken); res.StatusCode != http.StatusNotFound {
		t.Errorf("the deleted account's sent file: %d, want 404", res.StatusCode)
	}
	deadline := time.Now().Add(10 * time.Second)
	for countFiles(t, blobs, sentFile.ID)+countFiles(t, blobs, unsent.ID) > 0 {
		if time.Now().After(deadline) {
			t.Fatal("the sweep left the deleted account's attachments for 10s")
		}
		time.Sleep(20 * time.Millisecond) // polling the sweep
	}
	if b, _ := download(t, w.bob, bobs.ID, false); sha(b) != bobs.SHA256 {
		t.Error("bob's own file went with alice's account")
	}
}

// TestAvatars_ConcurrentUploadsAndDeletesAgree runs rounds of eight
// avatar uploads and deletions by one user at once. After each round the
// profile wears the avatar that is stored (served to others, not 404) or
// none, the blob directory holds that avatar's two files and nothing else,
// and the last profile frame a peer got carries that state. On SQLite
// (one node) and PostgreSQL (two nodes sharing the blobs, requests spread
// over both; frames from two nodes have no order, so only the store's
// agreement is checked there).
func TestAvatars_ConcurrentUploadsAndDeletesAgree(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) {
		blobs := t.TempDir()
		n := startNode(t, "", func(cfg *app.Config) { cfg.Attachments.Dir = blobs })
		testAvatarRace(t, blobs, []*node{n}, true)
	})
	t.Run("postgres", func(t *testing.T) {
		eachNATS(t, func(t *testing.T, c *cluster) {
			blobs := t.TempDir()
			shared := func(cfg *app.Config) { cfg.Attachments.Dir = blobs }
			testAvatarRace(t, blobs, []*node{c.start(t, shared), c.start(t, shared)}, false)
		})
	})
}

func testAvatarRace(t *testing.T, blobs string, nodes []*node, ordered bool) {
	ctx := ctxT(t)
	first := nodes[0]
	alice, aliceID := first.user(t, "alice")
	bob, bobID := first.user(t, "bob")
	if _, err := alice.CreateGroup(ctx, "peers", []string{bobID}); err != nil {
		t.Fatal(err)
	}
	_, bobIn := connect(t, bob)
	images := [][]byte{chattest.PNGWithMetadata(t, 40, 30), chattest.JPEGWithGPS(t, 40, 30, 1)}
	const ops = 8
	for round := range 4 {
		var wg sync.WaitGroup
		for i := range ops {
			n := nodes[i%len(nodes)]
			wg.Go(func() {
				method, body := http.MethodPost, images[i%2]
				if i%4 == 3 {
					method, body = http.MethodDelete, nil
				}
				req, _ := http.NewRequestWithContext(ctx, method, n.URL+"/v1/users/me/avatar", bytes.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+alice.Tokens().AccessToken)
				res, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Errorf("%s avatar: %v", method, err)
					return
				}
				b, _ := io.ReadAll(res.Body)
				res.Body.Close()
				if res.StatusCode != http.StatusOK {
					t.Errorf("%s avatar: %d %s", method, res.StatusCode, b)
				}
			})
		}
		wg.Wait()

		// A profile change after the round: its frame follows the round's.
		marker := fmt.Sprintf("after round %d", round)
		if _, err := alice.UpdateProfile(ctx, client.ProfileRequest{StatusText: &marker}); err != nil {
			t.Fatal(err)
		}
		p, err := bob.Profile(ctx, aliceID)
		if err != nil || p.StatusText != marker {
			t.Fatalf("round %d: alice's profile %+v, %v", round, p, err)
		}
		res, img := get(t, first.URL+"/v1/users/"+aliceID+"/avatar", bob.Tokens().AccessToken)
		files := avatarFiles(t, blobs)
		if p.Avatar == nil {
			if res.StatusCode != http.StatusNotFound || len(files) != 0 {
				t.Errorf("round %d: no avatar worn, yet GET avatar is %d and the blobs hold %v", round, res.StatusCode, files)
			}
		} else {
			if _, _, err := image.DecodeConfig(bytes.NewReader(img)); res.StatusCode != http.StatusOK || err != nil {
				t.Errorf("round %d: the profile wears %s, but GET avatar is %d (%v)", round, *p.Avatar, res.StatusCode, err)
			}
			if len(files) != 2 || !strings.Contains(files[0], *p.Avatar) || !strings.Contains(files[1], *p.Avatar) {
				t.Errorf("round %d: the profile wears %s; the blobs hold %v, want its image and thumbnail only", round, *p.Avatar, files)
			}
		}
		waitFrame(t, bobIn, "the frame of "+marker, func(f client.ServerFrame) bool {
			return f.Type == "profile" && f.User == aliceID && f.StatusText == marker
		})
		var seen []client.ServerFrame
		for _, f := range bobIn.frames() {
			if f.Type == "profile" && f.User == aliceID {
				seen = append(seen, f)
				if f.StatusText == marker {
					break
				}
			}
		}
		if ordered && len(seen) >= 2 && !equalAvatar(seen[len(seen)-2].Avatar, p.Avatar) {
			t.Errorf("round %d: the last frame of the round wears %v, the profile %v", round, avatarOf(seen[len(seen)-2].Avatar), avatarOf(p.Avatar))
		}
		if !equalAvatar(seen[len(seen)-1].Avatar, p.Avatar) {
			t.Errorf("round %d: the marker's frame wears %v, the profile %v", round, avatarOf(seen[len(seen)-1].Avatar), avatarOf(p.Avatar))
		}
	}
}

// avatarFiles lists the avatar blobs under blobs, sorted.
func avatarFiles(t *testing.T, blobs string) []string {
	t.Helper()
	var out []string
	err := filepath.WalkDir(filepath.Join(blobs, "objects"), func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() && strings.HasPrefix(d.Name(), "avatar") {
			out = append(out, d.Name())
		}
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(out)
	return out
}

func equalAvatar(a, b *string) bool { return a == nil && b == nil || a != nil && b != nil && *a == *b }

func avatarOf(s *string) string {
	if s == nil {
		return "none"
	}
	return *s
}
