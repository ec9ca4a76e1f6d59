package core_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/natter-chat/natter/internal/blob"
	"github.com/natter-chat/natter/internal/chat"
	"github.com/natter-chat/natter/internal/chattest"
	"github.com/natter-chat/natter/internal/core"
	"github.com/natter-chat/natter/internal/jobs"
	"github.com/natter-chat/natter/internal/membus"
	"github.com/natter-chat/natter/internal/postgres"
	"github.com/natter-chat/natter/internal/snowflake"
	"github.com/natter-chat/natter/internal/sqlite"
)

// Thumbnail failures: an image whose pixels cannot be decoded is marked
// once and never queued again by the sweep, while a failure to read its
// bytes is retried and leaves no mark. These tests drive the sweep and the
// in-process job runner directly, with a step clock, so that the runner's
// two-minute duplicate window cannot hide a re-queue.

func TestThumbnails_AnUndecodableImageIsMarkedOnceAndNotQueuedAgain(t *testing.T) {
	eachStore(t, func(t *testing.T, s chat.Store) {
		w := newThumbWorld(t, s, nil)
		ctx := t.Context()
		broken := w.image(t, "broken", chattest.UndecodablePNG(t, 64, 48))
		huge := w.image(t, "huge", chattest.HugePNG(20_000, 20_000))
		failedAt := w.clock.Now()
		w.svc.SweepAttachments(ctx)
		for _, id := range []chat.AttachmentID{broken, huge} {
			w.eventually(t, "the failure of "+string(id)+" to be recorded", func() bool {
				return !w.get(t, id).ThumbnailFailedAt.IsZero()
			})
			a := w.get(t, id)
			if !a.ThumbnailFailedAt.Equal(failedAt) || a.ThumbnailError == "" || a.ThumbnailKey != "" || a.State != chat.AttachmentReady {
				t.Errorf("%s after its job: %+v, want a ready image that failed at %v with a reason", id, a, failedAt)
			}
		}
		w.eventually(t, "two dead letters", func() bool { return w.outcome(jobs.ResultDead) == 2 })

		// Two sweeps, minutes apart: without the mark they would queue
		// both images again, and each job would die again.
		for range 2 {
			w.clock.Advance(3 * time.Minute)
			w.svc.SweepAttachments(ctx)
		}
		// A good image queued after them: one worker takes jobs in order,
		// so once its thumbnail is made, any job queued before has run.
		w.clock.Advance(time.Second)
		good := w.image(t, "good", chattest.PNGWithMetadata(t, 64, 48))
		w.clock.Advance(3 * time.Minute)
		w.svc.SweepAttachments(ctx)
		w.eventually(t, "the good image's thumbnail", func() bool { return w.get(t, good).ThumbnailKey != "" })
		w.eventually(t, "the good image's job to be counted", func() bool { return w.outcome(jobs.ResultDone) >= 1 })
		if a := w.get(t, good); !a.ThumbnailFailedAt.IsZero() {
			t.Errorf("the good image is marked failed: %+v", a)
		}
		done, dead, retried := w.outcome(jobs.ResultDone), w.outcome(jobs.ResultDead), w.outcome(jobs.ResultRetry)
		if done != 1 || dead != 2 || retried != 0 {
			t.Errorf("thumbnail jobs: %d done, %d dead, %d retried; want 1 done (the good image), "+
				"2 dead (one per broken image: the sweeps did not queue them again), none retried", done, dead, retried)
		}
		letters, _ := w.runner.DeadLetters()
		var payloads []string
		for _, l := range letters {
			payloads = append(payloads, string(l.Payload))
		}
		slices.Sort(payloads)
		if want := []string{string(broken), string(huge)}; !slices.Equal(payloads, want) {
			t.Errorf("dead letters for %v, want one for each of %v", payloads, want)
		}
	})
}

func TestThumbnails_AFailedReadIsRetriedAndNotMarked(t *testing.T) {
	eachStore(t, func(t *testing.T, s chat.Store) {
		faults := &faultyBlobs{}
		w := newThumbWorld(t, s, faults)
		ctx := t.Context()
		unopened := w.image(t, "unopened", chattest.PNGWithMetadata(t, 64, 48))
		unread := w.image(t, "unread", chattest.PNGWithMetadata(t, 64, 48))
		gone := chat.Unavailable("blob.Open", errors.New("the disk is gone"))
		faults.fail(contentKey(unopened), gone, nil)
		faults.fail(contentKey(unread), nil, errors.New("connection reset by peer"))
		w.svc.SweepAttachments(ctx)
		w.eventually(t, "both jobs to fail once", func() bool { return w.outcome(jobs.ResultRetry) >= 2 })
		for _, id := range []chat.AttachmentID{unopened, unread} {
			if a := w.get(t, id); !a.ThumbnailFailedAt.IsZero() || a.ThumbnailError != "" {
				t.Errorf("%s was marked after a read failure: %+v", id, a)
			}
		}
		if dead := w.outcome(jobs.ResultDead); dead != 0 {
			t.Errorf("%d jobs dead-lettered after read failures, want 0 (retried)", dead)
		}
		missing, err := w.as.ListMissingThumbnails(ctx, 10)
		if err != nil {
			t.Fatal(err)
		}
		if len(missing) != 2 {
			t.Errorf("the sweep would queue %d images, want both again", len(missing))
		}
	})
}

// eachStore runs f on a fresh SQLite store, and on a fresh PostgreSQL
// schema when NATTER_TEST_POSTGRES_URL is set.
func eachStore(t *testing.T, f func(t *testing.T, s chat.Store)) {
	t.Run("sqlite", func(t *testing.T) {
		s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "natter.db"), sqlite.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		f(t, s)
	})
	t.Run("postgres", func(t *testing.T) {
		url, schema := chattest.PostgresSchema(t, "t_core_")
		s, err := postgres.Open(context.Background(), url, postgres.Options{Schema: schema, MaxConns: 4})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		f(t, s)
	})
}

// thumbWorld is a Service with attachments on s, blobs on disk, one
// thumbnail worker on an in-process runner that counts outcomes, a step
// clock, and alice's group to upload to.
type thumbWorld struct {
	svc    *core.Service
	as     chat.AttachmentStore
	blobs  chat.BlobStore
	runner *jobs.Memory
	clock  *stepClock
	ids    *chattest.IDs
	alice  chat.UserID
	conv   chat.ConversationID

	mu       sync.Mutex
	outcomes map[string]int // guarded by mu: thumbnail job outcomes by result
}

// newThumbWorld builds the world; faults, if not nil, wraps the blob
// store to inject failures.
func newThumbWorld(t *testing.T, s chat.Store, faults *faultyBlobs) *thumbWorld {
	t.Helper()
	disk, err := blob.OpenDisk(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { disk.Close() })
	var blobs chat.BlobStore = disk
	if faults != nil {
		faults.BlobStore = disk
		blobs = faults
	}
	w := &thumbWorld{as: s.(chat.AttachmentStore), blobs: blobs, clock: &stepClock{now: chattest.At(0)},
		ids: chattest.NewIDs(), outcomes: map[string]int{}}
	w.runner = jobs.NewMemory(jobs.MemoryOptions{Now: w.clock.Now, Observe: func(kind, result string) {
		if kind == core.JobThumbnail {
			w.mu.Lock()
			w.outcomes[result]++
			w.mu.Unlock()
		}
	}})
	ids, err := snowflake.New(1, nil)
	if err != nil {
		t.Fatal(err)
	}
	w.svc = core.New(core.Deps{Store: s, Bus: membus.New(64), IDs: ids, Attachments: w.as, Blobs: blobs, Jobs: w.runner},
		core.Options{Now: w.clock.Now, Attachments: core.AttachmentOptions{Workers: 1, ScratchDir: t.TempDir()}})
	alice := chattest.MustCreateUser(t, s, w.ids, "alice")
	w.alice, w.conv = alice.ID, chattest.MustCreateGroup(t, s, w.ids, alice.ID).ID
	ctx, cancel := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Go(func() { _ = w.runner.Run(ctx) })
	t.Cleanup(func() { cancel(); wg.Wait() })
	return w
}

func contentKey(id chat.AttachmentID) string { return "att/" + string(id) + "/content" }

// image stores content as a ready PNG attachment of alice's, made now,
// as if it had passed the upload checks, and returns its id.
func (w *thumbWorld) image(t *testing.T, name string, content []byte) chat.AttachmentID {
	t.Helper()
	ctx := t.Context()
	id := chat.AttachmentID(fmt.Sprintf("%s%d", name, w.ids.NextID()))
	a := chat.Attachment{ID: id, Conv: w.conv, Uploader: w.alice, Name: name + ".png", Size: int64(len(content)), CreatedAt: w.clock.Now()}
	if err := w.as.CreateAttachment(ctx, a); err != nil {
		t.Fatal(err)
	}
	if _, err := w.blobs.Put(ctx, contentKey(id), bytes.NewReader(content)); err != nil {
		t.Fatal(err)
	}
	a.State, a.ContentType, a.SHA256, a.ContentKey, a.Width, a.Height = chat.AttachmentReady, "image/png", "ab", contentKey(id), 64, 48
	if _, err := w.as.FinishAttachment(ctx, a); err != nil {
		t.Fatal(err)
	}
	return id
}

func (w *thumbWorld) get(t *testing.T, id chat.AttachmentID) chat.Attachment {
	t.Helper()
	a, err := w.as.GetAttachment(t.Context(), id)
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func (w *thumbWorld) outcome(result string) int {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.outcomes[result]
}

// eventually polls cond until it holds, failing t after 20 seconds.
func (w *thumbWorld) eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond) // polling the job runner
	}
}

// stepClock is a clock that moves only when told.
type stepClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *stepClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *stepClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// faultyBlobs is a BlobStore whose Open, or whose reads after the first
// bytes, fail for chosen keys.
type faultyBlobs struct {
	chat.BlobStore
	mu      sync.Mutex
	openErr map[string]error // guarded by mu
	readErr map[string]error // guarded by mu
}

func (f *faultyBlobs) fail(key string, open, read error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.openErr == nil {
		f.openErr, f.readErr = map[string]error{}, map[string]error{}
	}
	f.openErr[key], f.readErr[key] = open, read
}

func (f *faultyBlobs) Open(ctx context.Context, key string) (io.ReadSeekCloser, int64, time.Time, error) {
	f.mu.Lock()
	openErr, readErr := f.openErr[key], f.readErr[key]
	f.mu.Unlock()
	if openErr != nil {
		return nil, 0, time.Time{}, openErr
	}
	r, size, mod, err := f.BlobStore.Open(ctx, key)
	if err != nil || readErr == nil {
		return r, size, mod, err
	}
	return &failingReader{ReadSeekCloser: r, err: readErr, left: 16}, size, mod, nil
}

// failingReader yields left bytes, then fails every read with err.
type failingReader struct {
	io.ReadSeekCloser
	err  error
	left int
}

func (r *failingReader) Read(p []byte) (int, error) {
	if r.left <= 0 {
		return 0, r.err
	}
	n, err := r.ReadSeekCloser.Read(p[:min(len(p), r.left)])
	r.left -= n
	return n, err
}
