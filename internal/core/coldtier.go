package core

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"time"

	"github.com/natter-chat/natter/internal/chat"
)

// coldTier is where the sweep moves old attachment content (Deps.Cold):
// nil when there is none. Uploads and thumbnails always go to the hot
// store; only content claimed by a message moves, ColdAfter after it was
// uploaded.
type coldTier struct {
	blobs chat.BlobStore
	tiers chat.AttachmentTiers
	after time.Duration // zero: nothing moves, but cold content is still read
}

func newColdTier(blobs chat.BlobStore, tiers chat.AttachmentTiers, after time.Duration) *coldTier {
	if blobs == nil || tiers == nil {
		return nil
	}
	return &coldTier{blobs: blobs, tiers: tiers, after: max(after, 0)}
}

// openBlob opens key, a blob of attachment a. Content is read from the
// tier the metadata names, and from the other one when it is not there:
// a move may have copied it and not yet recorded the tier, or recorded
// it and deleted the hot copy between the two reads.
func (at *attachments) openBlob(ctx context.Context, a chat.Attachment, key string) (io.ReadSeekCloser, int64, time.Time, error) {
	if at.cold == nil || key != a.ContentKey {
		return at.blobs.Open(ctx, key)
	}
	tier, err := at.cold.tiers.GetAttachmentTier(ctx, a.ID)
	if err != nil {
		return nil, 0, time.Time{}, err
	}
	first, second := at.blobs, at.cold.blobs
	if tier == chat.TierCold {
		first, second = second, first
	}
	r, size, mod, err := first.Open(ctx, key)
	if chat.IsCode(err, chat.CodeNotFound) {
		return second.Open(ctx, key)
	}
	return r, size, mod, err
}

// deleteCold deletes a's content from the cold tier, if there is one.
func (at *attachments) deleteCold(ctx context.Context, a chat.Attachment) error {
	if at.cold == nil || a.ContentKey == "" {
		return nil
	}
	return at.cold.blobs.Delete(ctx, a.ContentKey)
}

// moveToCold moves the content of attachments older than ColdAfter to the
// cold tier, a batch at a time, until none is left or a whole batch
// fails (a store is down: the next sweep tries again). The sweep calls it.
func (s *Service) moveToCold(ctx context.Context) {
	at := s.attach
	c := at.cold
	if c == nil || c.after == 0 {
		return
	}
	for ctx.Err() == nil {
		old, err := c.tiers.ListHotAttachments(ctx, s.opts.Now().Add(-c.after), sweepBatch)
		if err != nil {
			at.log.Warn("cold tier: cannot list attachments to move", "err", err)
			return
		}
		moved := 0
		for _, a := range old {
			if err := at.moveOne(ctx, a); err != nil {
				at.log.Warn("cold tier: cannot move an attachment", "attachment", a.ID, "err", err)
				continue
			}
			moved++
		}
		if len(old) < sweepBatch || moved == 0 {
			return
		}
	}
}

// moveOne copies a's content to the cold tier, checks the copy against
// the size and SHA-256 recorded at upload, records the tier, and only
// then deletes the hot copy. Moving twice (two nodes' sweeps) is
// harmless. When the attachment was deleted meanwhile, the copy is
// removed again (SetAttachmentTier refuses a deleted attachment).
func (at *attachments) moveOne(ctx context.Context, a chat.Attachment) error {
	c := at.cold
	src, _, _, err := at.blobs.Open(ctx, a.ContentKey)
	switch {
	case chat.IsCode(err, chat.CodeNotFound):
		// Another node moved it and is about to record the tier, or a
		// crash came between recording and deleting: the check below
		// tells.
	case err != nil:
		return fmt.Errorf("open the hot copy: %w", err)
	default:
		h := sha256.New()
		n, err := c.blobs.Put(ctx, a.ContentKey, io.TeeReader(src, h))
		src.Close()
		if err != nil {
			return fmt.Errorf("copy: %w", err)
		}
		if sum := hex.EncodeToString(h.Sum(nil)); n != a.Size || sum != a.SHA256 {
			_ = c.blobs.Delete(ctx, a.ContentKey)
			return fmt.Errorf("the hot copy has %d bytes with SHA-256 %s; the upload recorded %d bytes with %s: left in place", n, sum, a.Size, a.SHA256)
		}
	}
	if err := verifyBlob(ctx, c.blobs, a); err != nil {
		return fmt.Errorf("check the cold copy: %w", err)
	}
	if err := c.tiers.SetAttachmentTier(ctx, a.ID, chat.TierCold); err != nil {
		if chat.IsCode(err, chat.CodeNotFound) || chat.IsCode(err, chat.CodeConflict) {
			return c.blobs.Delete(ctx, a.ContentKey) // deleted meanwhile: the sweep removes the rest
		}
		return fmt.Errorf("record the tier: %w", err)
	}
	if err := at.blobs.Delete(ctx, a.ContentKey); err != nil {
		return fmt.Errorf("moved, but the hot copy is left: %w", err)
	}
	return nil
}

// verifyBlob reads a's content back from blobs and compares it with the
// size and SHA-256 recorded at upload.
func verifyBlob(ctx context.Context, blobs chat.BlobStore, a chat.Attachment) error {
	r, size, _, err := blobs.Open(ctx, a.ContentKey)
	if err != nil {
		return err
	}
	defer r.Close()
	h := sha256.New()
	n, err := io.Copy(h, r)
	if err != nil {
		return chat.Unavailable("attachments.verify", err)
	}
	if sum := hex.EncodeToString(h.Sum(nil)); n != a.Size || size != a.Size || sum != a.SHA256 {
		return fmt.Errorf("%d bytes with SHA-256 %s; the upload recorded %d bytes with %s", n, sum, a.Size, a.SHA256)
	}
	return nil
}
