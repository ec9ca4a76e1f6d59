package app_test

import (
	"bytes"
	"context"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/natter-chat/natter/internal/app"
	"github.com/natter-chat/natter/internal/chattest"
	"github.com/natter-chat/natter/internal/s3blob"
)

// s3Creds are the credentials the tests give nodes; the fake checks none.
func s3Creds(c *app.Config) {
	c.Attachments.S3AccessKey, c.Attachments.S3SecretKey = "natter", "natter-secret-key"
}

func hasKey(keys []string, suffix string) bool {
	return slices.ContainsFunc(keys, func(k string) bool { return strings.HasSuffix(k, suffix) })
}

// waitUntil polls cond until it holds or 10s pass.
func waitUntil(t testing.TB, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("after 10s: %s", what)
		}
		time.Sleep(20 * time.Millisecond) // polling the sweep
	}
}

func TestAttachmentsS3_UploadRangeAndSignedURL(t *testing.T) {
	fake := chattest.StartS3(t, "media")
	w := newAttachWorld(t, s3Creds, func(c *app.Config) { c.Attachments.Store = fake.URL("media", "natter") })
	ctx := ctxT(t)
	jpeg := chattest.JPEGWithGPS(t, 64, 48, 1)
	img := mustUpload(t, w.alice, w.conv, "photo.jpg", jpeg)
	thumbnailOf(t, w.alice, img.ID)
	if _, err := w.alice.SendAttachments(ctx, w.conv, "s3-1", "in the bucket", []string{img.ID}); err != nil {
		t.Fatal(err)
	}
	keys := fake.Keys(t, "media")
	if !slices.Contains(keys, "natter/att/"+img.ID+"/content") || !slices.Contains(keys, "natter/att/"+img.ID+"/thumbnail") {
		t.Fatalf("bucket holds %v, want the content and thumbnail under natter/", keys)
	}
	if _, err := os.Stat(filepath.Join(w.n.Dir, "blobs")); !os.IsNotExist(err) {
		t.Errorf("a blob directory was made although the bucket holds the bytes: %v", err)
	}
	whole, _ := download(t, w.bob, img.ID, false)
	if len(whole) != int(img.Size) {
		t.Fatalf("bob downloaded %d bytes, want %d", len(whole), img.Size)
	}
	res, body := get(t, w.n.URL+"/v1/attachments/"+img.ID+"/content", w.bob.Tokens().AccessToken, "Range", "bytes=10-109")
	if res.StatusCode != http.StatusPartialContent || !bytes.Equal(body, whole[10:110]) {
		t.Fatalf("range from the bucket: %d, %d bytes", res.StatusCode, len(body))
	}
	signed, err := w.bob.AttachmentURL(ctx, img.ID)
	if err != nil {
		t.Fatal(err)
	}
	if res, body := get(t, w.n.URL+signed.URL, ""); res.StatusCode != http.StatusOK || !bytes.Equal(body, whole) {
		t.Fatalf("signed URL: %d, %d bytes", res.StatusCode, len(body))
	}
	if res, _ := get(t, w.n.URL+"/v1/attachments/"+img.ID+"/content", w.carol.Tokens().AccessToken); res.StatusCode != http.StatusNotFound {
		t.Fatalf("carol, no member, got %d from the bucket, want 404", res.StatusCode)
	}
}

func TestAttachmentsCold_OldContentMovesAndStillDownloads(t *testing.T) {
	setups := []struct {
		name  string
		start func(t *testing.T) (mutate func(*app.Config), hot, cold func() []string)
	}{
		{"s3 to s3", func(t *testing.T) (func(*app.Config), func() []string, func() []string) {
			fake := chattest.StartS3(t, "hot", "cold")
			return func(c *app.Config) {
					s3Creds(c)
					c.Attachments.Store, c.Attachments.ColdStore = fake.URL("hot", ""), fake.URL("cold", "archive")
				}, func() []string { return fake.Keys(t, "hot") },
				func() []string { return fake.Keys(t, "cold") }
		}},
		{"disk to directory", func(t *testing.T) (func(*app.Config), func() []string, func() []string) {
			hot, cold := t.TempDir(), t.TempDir()
			list := func(dir string) func() []string {
				return func() []string {
					var out []string
					_ = filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
						if err == nil && !d.IsDir() && strings.Contains(p, "objects") {
							out = append(out, strings.ReplaceAll(d.Name(), "~", "/"))
						}
						return nil
					})
					return out
				}
			}
			return func(c *app.Config) { c.Attachments.Dir, c.Attachments.ColdStore = hot, cold }, list(hot), list(cold)
		}},
	}
	for _, s := range setups {
		t.Run(s.name, func(t *testing.T) {
			mutate, hot, cold := s.start(t)
			w := newAttachWorld(t, mutate, func(c *app.Config) {
				c.Attachments.ColdAfter, c.Attachments.SweepInterval = time.Nanosecond, 30*time.Millisecond
			})
			ctx := ctxT(t)
			img := mustUpload(t, w.alice, w.conv, "old.jpg", chattest.JPEGWithGPS(t, 64, 48, 1))
			before, _ := download(t, w.alice, img.ID, false)
			thumb := thumbnailOf(t, w.alice, img.ID)
			content := "att/" + img.ID + "/content"
			if hasKey(cold(), content) {
				t.Fatal("an upload no message carries moved to the cold tier")
			}
			sent, err := w.alice.SendAttachments(ctx, w.conv, "cold-1", "for the archive", []string{img.ID})
			if err != nil {
				t.Fatal(err)
			}
			waitUntil(t, "the content is still hot", func() bool { return hasKey(cold(), content) && !hasKey(hot(), content) })
			if !hasKey(hot(), "att/"+img.ID+"/thumbnail") {
				t.Errorf("the thumbnail left the hot tier: hot %v", hot())
			}
			after, _ := download(t, w.bob, img.ID, false)
			if !bytes.Equal(after, before) {
				t.Fatalf("content from the cold tier differs: %d bytes, want %d", len(after), len(before))
			}
			res, body := get(t, w.n.URL+"/v1/attachments/"+img.ID+"/content", w.bob.Tokens().AccessToken, "Range", "bytes=5-24")
			if res.StatusCode != http.StatusPartialContent || !bytes.Equal(body, before[5:25]) {
				t.Fatalf("range from the cold tier: %d, %d bytes", res.StatusCode, len(body))
			}
			if got, _ := download(t, w.bob, img.ID, true); !bytes.Equal(got, thumb) {
				t.Fatal("the thumbnail changed")
			}
			signed, err := w.bob.AttachmentURL(ctx, img.ID)
			if err != nil {
				t.Fatal(err)
			}
			if res, body := get(t, w.n.URL+signed.URL, ""); res.StatusCode != http.StatusOK || !bytes.Equal(body, before) {
				t.Fatalf("signed URL of cold content: %d, %d bytes", res.StatusCode, len(body))
			}
			if res, _ := get(t, w.n.URL+"/v1/attachments/"+img.ID+"/content", w.carol.Tokens().AccessToken); res.StatusCode != http.StatusNotFound {
				t.Fatalf("carol, no member, got %d for cold content, want 404", res.StatusCode)
			}

			if _, err := w.alice.Delete(ctx, w.conv, sent.Message.ID); err != nil {
				t.Fatal(err)
			}
			waitUntil(t, "the deleted message's blobs are still stored", func() bool {
				return !slices.ContainsFunc(append(hot(), cold()...), func(k string) bool { return strings.Contains(k, img.ID) })
			})
		})
	}
}

// A download finds content in the other tier when the metadata's tier
// lacks it (the window of a move, or a copy restored by hand).
func TestAttachmentsCold_DownloadFallsBackToTheOtherTier(t *testing.T) {
	fake := chattest.StartS3(t, "hot", "cold")
	w := newAttachWorld(t, s3Creds, func(c *app.Config) {
		c.Attachments.Store, c.Attachments.ColdStore = fake.URL("hot", ""), fake.URL("cold", "")
		c.Attachments.ColdAfter, c.Attachments.SweepInterval = time.Nanosecond, 30*time.Millisecond
	})
	ctx := ctxT(t)
	doc := mustUpload(t, w.alice, w.conv, "doc.pdf", pdf(4000))
	want, _ := download(t, w.alice, doc.ID, false)
	if _, err := w.alice.SendAttachments(ctx, w.conv, "fb-1", "", []string{doc.ID}); err != nil {
		t.Fatal(err)
	}
	content := "att/" + doc.ID + "/content"
	waitUntil(t, "the content is still hot", func() bool {
		return hasKey(fake.Keys(t, "cold"), content) && !hasKey(fake.Keys(t, "hot"), content)
	})
	// Put the content back in the hot bucket only, as if the move had
	// recorded the tier but the cold copy were lost.
	open := func(bucket string) *s3blob.Store {
		cfg, err := s3blob.ParseURL(fake.URL(bucket, ""))
		if err != nil {
			t.Fatal(err)
		}
		s, err := s3blob.Open(ctx, cfg)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	if _, err := open("hot").Put(ctx, content, bytes.NewReader(want)); err != nil {
		t.Fatal(err)
	}
	if err := open("cold").Delete(ctx, content); err != nil {
		t.Fatal(err)
	}
	if got, _ := download(t, w.bob, doc.ID, false); !bytes.Equal(got, want) {
		t.Fatalf("fallback download: %d bytes, want %d", len(got), len(want))
	}
}

func TestAttachmentsS3_BadConfigurationIsRefused(t *testing.T) {
	fake := chattest.StartS3(t, "media")
	creds := filepath.Join(t.TempDir(), "creds")
	if err := os.WriteFile(creds, []byte("only-one-line-secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		cfg  app.AttachmentConfig
		want string
	}{
		{"directory and bucket", app.AttachmentConfig{Dir: t.TempDir(), Store: fake.URL("media", "")}, "not both"},
		{"store not s3", app.AttachmentConfig{Store: "/var/natter"}, "s3://"},
		{"missing bucket", app.AttachmentConfig{Store: fake.URL("absent", "")}, "does not exist"},
		{"bad URL", app.AttachmentConfig{Store: "s3://media?colour=blue"}, "unknown parameter"},
		{"cold same as hot", app.AttachmentConfig{Store: fake.URL("media", ""), ColdStore: fake.URL("media", "")}, "differ"},
		{"cold of unknown kind", app.AttachmentConfig{ColdStore: "ftp://archive"}, "s3:// URL or a directory"},
		{"negative age", app.AttachmentConfig{ColdStore: t.TempDir(), ColdAfter: -time.Hour}, "negative"},
		{"bad credentials file", app.AttachmentConfig{Store: fake.URL("media", ""), S3CredentialsFile: creds}, "two lines"},
	} {
		t.Run(c.name, func(t *testing.T) {
			cfg := app.Config{Addr: "127.0.0.1:0", DataDir: t.TempDir(), Attachments: c.cfg}
			a, err := app.New(context.Background(), cfg)
			if err == nil {
				_ = a
				t.Fatal("app.New succeeded")
			}
			if !strings.Contains(err.Error(), c.want) || strings.Contains(err.Error(), "only-one-line") {
				t.Fatalf("app.New: %v; want an error mentioning %q and no secret", err, c.want)
			}
		})
	}
}

func TestAttachmentsS3_CredentialsFile(t *testing.T) {
	fake := chattest.StartS3(t, "media")
	creds := filepath.Join(t.TempDir(), "creds")
	if err := os.WriteFile(creds, []byte("natter\nnatter-secret-key\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	w := newAttachWorld(t, func(c *app.Config) {
		c.Attachments.Store, c.Attachments.S3CredentialsFile = fake.URL("media", ""), creds
	})
	doc := mustUpload(t, w.alice, w.conv, "doc.pdf", pdf(1000))
	if !hasKey(fake.Keys(t, "media"), "att/"+doc.ID+"/content") {
		t.Fatalf("bucket holds %v", fake.Keys(t, "media"))
	}
}

// Content whose hot copy no longer matches the size and SHA-256 recorded
// at upload is left where it is: a move never spreads a corrupt copy.
func TestAttachmentsCold_AMismatchingCopyIsNotMoved(t *testing.T) {
	fake := chattest.StartS3(t, "hot", "cold")
	w := newAttachWorld(t, s3Creds, func(c *app.Config) {
		c.Attachments.Store, c.Attachments.ColdStore = fake.URL("hot", ""), fake.URL("cold", "")
		c.Attachments.ColdAfter, c.Attachments.SweepInterval = time.Nanosecond, 20*time.Millisecond
	})
	ctx := ctxT(t)
	// bad is older, so a sweep tries it before good: once good has moved,
	// bad has been tried.
	bad := mustUpload(t, w.alice, w.conv, "bad.pdf", pdf(3000))
	time.Sleep(2 * time.Millisecond) // created_at has millisecond precision
	good := mustUpload(t, w.alice, w.conv, "good.pdf", pdf(3000))
	cfg, _ := s3blob.ParseURL(fake.URL("hot", ""))
	hot, err := s3blob.Open(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := hot.Put(ctx, "att/"+bad.ID+"/content", strings.NewReader("tampered")); err != nil {
		t.Fatal(err)
	}
	if _, err := w.alice.SendAttachments(ctx, w.conv, "mm-1", "", []string{bad.ID, good.ID}); err != nil {
		t.Fatal(err)
	}
	waitUntil(t, "the good content did not move", func() bool { return hasKey(fake.Keys(t, "cold"), "att/"+good.ID+"/content") })
	if hasKey(fake.Keys(t, "cold"), "att/"+bad.ID+"/content") || !hasKey(fake.Keys(t, "hot"), "att/"+bad.ID+"/content") {
		t.Fatalf("the tampered copy moved: hot %v, cold %v", fake.Keys(t, "hot"), fake.Keys(t, "cold"))
	}
}
