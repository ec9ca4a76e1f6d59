package core

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/natter-chat/natter/internal/chat"
	"github.com/natter-chat/natter/internal/jobs"
	"github.com/natter-chat/natter/internal/media"
)

// queueThumbnail enqueues the job that makes id's thumbnail, keyed by
// the attachment so that a repeat within the duplicate window is
// dropped. It waits at most enqueueTimeout (a durable queue waits for
// its server); a job that cannot be queued is logged and left to the
// sweep.
func (at *attachments) queueThumbnail(ctx context.Context, id chat.AttachmentID) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), enqueueTimeout)
	defer cancel()
	if err := at.queue.EnqueueOnce(ctx, JobThumbnail, string(id)+".thumb", []byte(id)); err != nil {
		at.log.Warn("thumbnail: cannot queue; the sweep will", "attachment", id, "err", err)
	}
}

// enqueueTimeout bounds how long a use-case waits to queue a job.
const enqueueTimeout = 2 * time.Second

// runAttachmentWork runs the sweep until ctx is done and returns once it
// has stopped. The first sweep runs at once, so that thumbnails a restart
// interrupted are queued again.
func (s *Service) runAttachmentWork(ctx context.Context) (stop func()) {
	at := s.attach
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	wg.Go(func() {
		t := time.NewTicker(at.opts.SweepInterval)
		defer t.Stop()
		for {
			s.SweepAttachments(ctx)
			select {
			case <-t.C:
			case <-ctx.Done():
				return
			}
		}
	})
	return func() { cancel(); wg.Wait() }
}

// thumbnailJob is the handler of JobThumbnail: payload is the attachment
// id. An image whose pixels cannot be decoded is a permanent failure,
// recorded on the attachment so that the sweep does not queue it again;
// a backend failure is retried.
func (s *Service) thumbnailJob(ctx context.Context, payload []byte) error {
	return s.makeThumbnail(ctx, chat.AttachmentID(payload))
}

// makeThumbnail makes and records the thumbnail of a ready image; it does
// nothing (and succeeds) when the attachment is gone, not an image, has
// its thumbnail already, or is known to have none, so a job that runs
// twice is harmless.
func (s *Service) makeThumbnail(ctx context.Context, id chat.AttachmentID) error {
	at := s.attach
	a, err := at.store.GetAttachment(ctx, id)
	if chat.IsCode(err, chat.CodeNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("thumbnail %s: %w", id, err)
	}
	if a.State != chat.AttachmentReady || a.ThumbnailKey != "" || !a.ThumbnailFailedAt.IsZero() || !media.IsImage(a.ContentType) {
		return nil
	}
	blob, _, _, err := at.openBlob(ctx, a, a.ContentKey)
	if err != nil {
		return fmt.Errorf("thumbnail %s: open the content: %w", id, err)
	}
	defer blob.Close()
	tmp, err := os.CreateTemp(at.opts.ScratchDir, "natter-thumb-*")
	if err != nil {
		return fmt.Errorf("thumbnail: no scratch file: %w", err)
	}
	defer func() { tmp.Close(); os.Remove(tmp.Name()) }()
	src := &readFailures{r: blob}
	if _, err := media.Thumbnail(tmp, src, a.ContentType); err != nil {
		undecodable := errors.Is(err, media.ErrCorrupt) || errors.Is(err, media.ErrTooManyPixels)
		if src.err != nil || !undecodable {
			// The bytes could not be read (a decoder reports that as a
			// corrupt image too) or the thumbnail not written: retried.
			return fmt.Errorf("thumbnail %s: %w", id, err)
		}
		return s.giveUpThumbnail(ctx, id, err)
	}
	if _, err := tmp.Seek(0, 0); err != nil {
		return fmt.Errorf("thumbnail %s: %w", id, err)
	}
	key := thumbnailKey(id)
	if _, err := at.blobs.Put(ctx, key, tmp); err != nil {
		return fmt.Errorf("thumbnail %s: store: %w", id, err)
	}
	if err := at.store.SetThumbnail(ctx, id, key); err != nil {
		_ = at.blobs.Delete(ctx, key) // the attachment went away meanwhile
		if !chat.IsCode(err, chat.CodeNotFound) {
			return fmt.Errorf("thumbnail %s: record: %w", id, err)
		}
	}
	return nil
}

// maxThumbnailError bounds the reason SetThumbnailFailed records.
const maxThumbnailError = 200

// giveUpThumbnail records that no thumbnail can be made of image id (cause
// says why) and fails the job for good. A failure is never retried by
// itself: the same bytes and decoder give the same answer. If it cannot be
// recorded, the job is retried instead, so that the failure is recorded
// later rather than the image queued again at every sweep.
func (s *Service) giveUpThumbnail(ctx context.Context, id chat.AttachmentID, cause error) error {
	at := s.attach
	reason := strings.ToValidUTF8(cause.Error()[:min(len(cause.Error()), maxThumbnailError)], "")
	err := at.store.SetThumbnailFailed(ctx, id, reason, s.now())
	if err != nil && !chat.IsCode(err, chat.CodeNotFound) {
		return fmt.Errorf("thumbnail %s: %v; recording that: %w", id, cause, err)
	}
	at.log.Warn("thumbnail: the image cannot be decoded; none will be made", "attachment", id, "err", cause)
	return jobs.Permanent(fmt.Errorf("thumbnail %s: %w", id, cause))
}

// readFailures passes reads and seeks through and keeps the first error
// other than io.EOF: a decoder reports a failed read as a corrupt image,
// and this tells the two apart.
type readFailures struct {
	r   io.ReadSeeker
	err error
}

func (f *readFailures) Read(p []byte) (int, error) {
	n, err := f.r.Read(p)
	f.note(err)
	return n, err
}

func (f *readFailures) Seek(offset int64, whence int) (int64, error) {
	n, err := f.r.Seek(offset, whence)
	f.note(err)
	return n, err
}

func (f *readFailures) note(err error) {
	if err != nil && !errors.Is(err, io.EOF) && f.err == nil {
		f.err = err
	}
}

// sweepBatch bounds the attachments one sweep step handles.
const sweepBatch = 100

// SweepAttachments removes garbage — the attachments of deleted messages,
// rejected uploads, and uploads no message carries UploadGrace after they
// were made — blobs first (in both tiers), then metadata; moves content
// older than ColdAfter to the cold tier (see moveToCold); and re-queues
// images that lack a thumbnail, but not those whose thumbnail failed for
// good (see giveUpThumbnail). Attachment work (see Run) calls it every
// SweepInterval; tests call it to avoid waiting.
func (s *Service) SweepAttachments(ctx context.Context) {
	at := s.attach
	if at == nil {
		return
	}
	for ctx.Err() == nil {
		garbage, err := at.store.ListGarbage(ctx, s.opts.Now().Add(-at.opts.UploadGrace), sweepBatch)
		if err != nil {
			at.log.Warn("attachment sweep failed", "err", err)
			return
		}
		for _, a := range garbage {
			s.removeAttachment(ctx, a)
		}
		if len(garbage) < sweepBatch {
			break
		}
	}
	s.moveToCold(ctx)
	missing, err := at.store.ListMissingThumbnails(ctx, at.opts.QueueSize)
	if err != nil {
		at.log.Warn("attachment sweep failed", "err", err)
		return
	}
	for _, a := range missing {
		at.queueThumbnail(ctx, a.ID)
	}
}

// removeAttachment deletes a's blobs and then its row; a blob that
// cannot be deleted keeps the row, so the next sweep tries again.
func (s *Service) removeAttachment(ctx context.Context, a chat.Attachment) {
	at := s.attach
	keys := []string{a.ContentKey, a.ThumbnailKey, thumbnailKey(a.ID)}
	for _, p := range a.Parts {
		keys = append(keys, p.Key)
	}
	for _, k := range keys {
		if k == "" {
			continue
		}
		if err := at.blobs.Delete(ctx, k); err != nil {
			at.log.Warn("cannot delete an attachment blob", "attachment", a.ID, "err", err)
			return
		}
	}
	if err := at.deleteCold(ctx, a); err != nil {
		at.log.Warn("cannot delete an attachment blob", "attachment", a.ID, "err", err)
		return
	}
	if err := at.store.DeleteAttachment(ctx, a.ID); err != nil {
		at.log.Warn("cannot delete an attachment", "attachment", a.ID, "err", err)
	}
}
