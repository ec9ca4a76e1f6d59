package app_test

import (
	"testing"
	"time"

	"github.com/natter-chat/natter/client"
	"github.com/natter-chat/natter/internal/chattest"
)

func TestMediaMeta_VideoAndAudioCarryDurationAndSize(t *testing.T) {
	w := newAttachWorld(t)
	video := mustUpload(t, w.alice, w.conv, "clip.mp4", chattest.MP4(83_500, 1280, 720))
	if video.ContentType != "video/mp4" || video.DurationMS != 83_500 || video.Width != 1280 || video.Height != 720 {
		t.Errorf("video = %+v; want video/mp4, 83500 ms, 1280x720", video.Attachment)
	}
	audio := mustUpload(t, w.alice, w.conv, "note.wav", chattest.WAV(8000, 1500))
	if audio.ContentType != "audio/wav" || audio.DurationMS != 1500 || audio.Width != 0 {
		t.Errorf("audio = %+v; want audio/wav, 1500 ms, no size", audio.Attachment)
	}
	// What the uploader saw is what members read back.
	got, err := w.alice.Attachment(ctxT(t), video.ID)
	if err != nil || got.DurationMS != 83_500 {
		t.Errorf("GET attachment = %+v, %v", got.Attachment, err)
	}
}

func TestProfile_LiveFrameReachesOnlyConversationPeers(t *testing.T) {
	w := newAttachWorld(t) // alice and bob share a group; carol shares nothing
	_, bobIn := connect(t, w.bob)
	_, carolIn := connect(t, w.carol)
	if _, err := w.alice.UpdateProfile(ctxT(t), client.ProfileRequest{DisplayName: strp("Alice L."), StatusText: strp("reading")}); err != nil {
		t.Fatal(err)
	}
	frame := waitFrame(t, bobIn, "bob's profile frame", func(f client.ServerFrame) bool { return f.Type == "profile" })
	if frame.User != w.aliceID || frame.DisplayName == nil || *frame.DisplayName != "Alice L." || frame.StatusText != "reading" || frame.Avatar != nil {
		t.Errorf("profile frame = %+v", frame)
	}
	// Trespass: carol shares no conversation with alice and hears nothing.
	// A later frame she does get (her own profile change) bounds the wait.
	if _, err := w.carol.UpdateProfile(ctxT(t), client.ProfileRequest{StatusText: strp("here")}); err != nil {
		t.Fatal(err)
	}
	waitFrame(t, carolIn, "carol's own profile frame", func(f client.ServerFrame) bool { return f.Type == "profile" && f.StatusText == "here" })
	for _, f := range carolIn.frames() {
		if f.Type == "profile" && f.User == w.aliceID {
			t.Errorf("carol got alice's profile frame: %+v", f)
		}
	}
}

func TestProfile_AvatarMustBeTheCallersReadyImage(t *testing.T) {
	w := newAttachWorld(t)
	// Conversation uploads are no avatars (the sweep would remove them):
	// only the id of the caller's current avatar (POST /v1/users/me/avatar) is.
	img := mustUpload(t, w.alice, w.conv, "me.jpg", chattest.JPEGWithGPS(t, 64, 48, 1))
	_, err := w.alice.UpdateProfile(ctxT(t), client.ProfileRequest{Avatar: strp(img.ID)})
	wantCode(t, err, "not_found")
	mine := mustPostAvatar(t, w.n, w.alice, chattest.JPEGWithGPS(t, 64, 48, 1))
	// Trespass: bob cannot wear alice's avatar; nobody can name one that does not exist.
	_, err = w.bob.UpdateProfile(ctxT(t), client.ProfileRequest{Avatar: strp(mine)})
	wantCode(t, err, "not_found")
	_, err = w.alice.UpdateProfile(ctxT(t), client.ProfileRequest{Avatar: strp("abcdefghijklmnopqrstuvwxyz")})
	wantCode(t, err, "not_found")
	got, err := w.alice.UpdateProfile(ctxT(t), client.ProfileRequest{Avatar: strp(mine)})
	if err != nil || got.Avatar == nil || *got.Avatar != mine {
		t.Fatalf("setting her own avatar: %+v, %v", got, err)
	}
}

// waitFrame polls in until a frame satisfies cond and returns it.
func waitFrame(t testing.TB, in *inbox, what string, cond func(client.ServerFrame) bool) client.ServerFrame {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		for _, f := range in.frames() {
			if cond(f) {
				return f
			}
		}
		select {
		case <-in.ch:
		case <-time.After(50 * time.Millisecond):
		}
	}
	t.Fatalf("timed out waiting for %s", what)
	return client.ServerFrame{}
}
