package chat

import (
	"context"
	"strings"
	"time"
)

// BlobTier says which blob store holds an attachment's content: the hot
// one every upload is written to, or the cold one old content moves to.
type BlobTier string

const (
	TierHot  BlobTier = "hot"
	TierCold BlobTier = "cold"
)

// AttachmentTiers records which tier holds each attachment's content.
// Both stores implement it. Thumbnails always stay in the hot tier: they
// are small and shown with every page of history.
type AttachmentTiers interface {
	// ListHotAttachments returns up to limit ready attachments, oldest
	// first, that a message has claimed, that were created before cutoff
	// and whose content is in the hot tier: candidates to move.
	ListHotAttachments(ctx context.Context, cutoff time.Time, limit int) ([]Attachment, error)
	// GetAttachmentTier returns the tier of id's content (TierHot for an
	// attachment never moved). CodeNotFound when there is no such
	// attachment.
	GetAttachmentTier(ctx context.Context, id AttachmentID) (BlobTier, error)
	// SetAttachmentTier records that id's content now lives in tier. It
	// succeeds only while the attachment is ready: CodeNotFound when it is
	// gone, CodeConflict when it is in another state (its message was
	// deleted meanwhile, so whoever moved it must remove the copy).
	SetAttachmentTier(ctx context.Context, id AttachmentID, tier BlobTier) error
}

// ValidBlobKey reports whether key may name a blob (see BlobStore): 1 to
// 200 characters of [a-z0-9/_.-], no leading or trailing "/", no empty or
// dot-only segment. Every BlobStore refuses other keys with
// CodeInvalidArgument.
func ValidBlobKey(key string) bool {
	if key == "" || len(key) > 200 {
		return false
	}
	for _, c := range key {
		if !(c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '/' || c == '_' || c == '.' || c == '-') {
			return false
		}
	}
	for seg := range strings.SplitSeq(key, "/") {
		if seg == "" || strings.Trim(seg, ".") == "" {
			return false
		}
	}
	return true
}
