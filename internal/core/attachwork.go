package core

import (
	"context"
	"fmt"
	"os"
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
// id. An image that cannot be thumbnailed is a permanent failure; a
// backend failure is retried.
func (s *Service) thumbnailJob(ctx context.Context, payload []byte) error {
	return s.makeThumbnail(ctx, chat.AttachmentID(payload))
}

// makeThumbnail makes and records the thumbnail of a ready image; it does
// nothing (and succeeds) when the attachment is gone, not an image, or
// has its thumbnail already, so a job that runs twice is harmless.
func (s *Service) makeThumbnail(ctx context.Context, id chat.AttachmentID) error {
	at := s.attach
	a, err := at.store.GetAttachment(ctx, id)
	if chat.IsCode(err, chat.CodeNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("thumbnail %s: %w", id, err)
	}
	if a.State != chat.AttachmentReady || a.ThumbnailKey != "" || !media.IsImage(a.ContentType) {
		return nil
	}
	src, _, _, err := at.openBlob(ctx, a, a.ContentKey)
	if err != nil {
		return fmt.Errorf("thumbnail %s: open the content: %w", id, err)
	}
	defer src.Close()
	tmp, err := os.CreateTemp(at.opts.ScratchDir, "natter-thumb-*")
	if err != nil {
		return fmt.Errorf("thumbnail: no scratch file: %w", err)
	}
	defer func() { tmp.Close(); os.Remove(tmp.Name()) }()
	if _, err := media.Thumbnail(tmp, src, a.ContentType); err != nil {
		return jobs.Permanent(fmt.Errorf("thumbnail %s: %w", id, err))
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

// sweepBatch bounds the attachments one sweep step handles.
const sweepBatch = 100

// SweepAttachments removes garbage — the attachments of deleted messages,
// rejected uploads, and uploads no message carries UploadGrace after they
// were made — blobs first (in both tiers), then metadata; moves content
// older than ColdAfter to the cold tier (see moveToCold); and re-queues
// images that lack a thumbnail. Attachment work (see Run) calls it every SweepInterval;
// tests call it to avoid waiting.
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
