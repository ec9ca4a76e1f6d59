package core

import (
	"context"
	"os"
	"sync"
	"time"

	"github.com/natter-chat/natter/internal/chat"
	"github.com/natter-chat/natter/internal/media"
)

// queueThumbnail asks a worker to make id's thumbnail. It never blocks:
// when the queue is full the next sweep finds the attachment instead.
func (at *attachments) queueThumbnail(id chat.AttachmentID) {
	select {
	case at.thumbs <- id:
	default:
	}
}

// runAttachmentWork runs the thumbnail workers and the sweep until ctx is
// done and returns once they have stopped. The first sweep runs at once,
// so that thumbnails a restart interrupted are made.
func (s *Service) runAttachmentWork(ctx context.Context) (stop func()) {
	at := s.attach
	ctx, cancel := context.WithCancel(ctx)
	var wg sync.WaitGroup
	for range at.opts.Workers {
		wg.Go(func() {
			for {
				select {
				case id := <-at.thumbs:
					s.makeThumbnail(ctx, id)
				case <-ctx.Done():
					return
				}
			}
		})
	}
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

// makeThumbnail makes and records the thumbnail of a ready image. A
// failure is logged; the sweep tries again later.
func (s *Service) makeThumbnail(ctx context.Context, id chat.AttachmentID) {
	at := s.attach
	a, err := at.store.GetAttachment(ctx, id)
	if err != nil || a.State != chat.AttachmentReady || a.ThumbnailKey != "" || !media.IsImage(a.ContentType) {
		return
	}
	src, _, _, err := at.blobs.Open(ctx, a.ContentKey)
	if err != nil {
		at.log.Warn("thumbnail: cannot open the content", "attachment", id, "err", err)
		return
	}
	defer src.Close()
	tmp, err := os.CreateTemp(at.opts.ScratchDir, "natter-thumb-*")
	if err != nil {
		at.log.Warn("thumbnail: no scratch file", "err", err)
		return
	}
	defer func() { tmp.Close(); os.Remove(tmp.Name()) }()
	if _, err := media.Thumbnail(tmp, src, a.ContentType); err != nil {
		at.log.Warn("thumbnail failed", "attachment", id, "err", err)
		return
	}
	if _, err := tmp.Seek(0, 0); err != nil {
		return
	}
	key := thumbnailKey(id)
	if _, err := at.blobs.Put(ctx, key, tmp); err != nil {
		at.log.Warn("thumbnail: cannot store", "attachment", id, "err", err)
		return
	}
	if err := at.store.SetThumbnail(ctx, id, key); err != nil {
		_ = at.blobs.Delete(ctx, key) // the attachment went away meanwhile
	}
}

// sweepBatch bounds the attachments one sweep step handles.
const sweepBatch = 100

// SweepAttachments removes garbage — the attachments of deleted messages,
// rejected uploads, and uploads no message carries UploadGrace after they
// were made — blobs first, then metadata, and re-queues images that lack
// a thumbnail. Attachment work (see Run) calls it every SweepInterval;
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
	missing, err := at.store.ListMissingThumbnails(ctx, at.opts.QueueSize)
	if err != nil {
		at.log.Warn("attachment sweep failed", "err", err)
		return
	}
	for _, a := range missing {
		at.queueThumbnail(a.ID)
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
	if err := at.store.DeleteAttachment(ctx, a.ID); err != nil {
		at.log.Warn("cannot delete an attachment", "attachment", a.ID, "err", err)
	}
}
