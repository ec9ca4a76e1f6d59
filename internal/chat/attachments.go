package chat

import (
	"context"
	"io"
	"time"
)

// AttachmentID identifies an uploaded file: 128 random bits written as 26
// lower-case base32 characters. It is never derived from time or a
// counter, so knowing one id tells nothing about another.
type AttachmentID string

// AttachmentState is where an attachment is in its life.
type AttachmentState string

const (
	AttachmentUploading AttachmentState = "uploading" // bytes are still arriving
	AttachmentReady     AttachmentState = "ready"     // checked, stored, may be sent and downloaded
	AttachmentRejected  AttachmentState = "rejected"  // its bytes were not an allowed type; nothing is kept
	AttachmentDeleted   AttachmentState = "deleted"   // its message was deleted; the sweep removes it
)

// MaxAttachmentsPerMessage bounds the attachments one message carries.
const MaxAttachmentsPerMessage = 10

// Attachment is a file uploaded for one conversation and, once sent, part
// of one message (attachments are never shared between messages).
type Attachment struct {
	ID       AttachmentID
	Conv     ConversationID // the conversation it was uploaded for; only its members see it
	Uploader UserID
	State    AttachmentState
	Name     string // the name the uploader gave; shown, never trusted
	Declared string // the content type the uploader claimed; informational
	// ContentType is the type detected from the bytes (set when ready).
	ContentType string
	// Size is the total the uploader announced while uploading, and the
	// size of the stored (possibly re-encoded) content once ready.
	Size     int64
	Received int64  // bytes stored so far while uploading
	Parts    []Part // the stored chunks while uploading, in order
	SHA256   string // hex digest of the stored content (set when ready)
	Width    int    // pixels, for images and video; 0 when unknown
	Height   int
	// DurationMS is the playing time of audio and video in milliseconds;
	// 0 when unknown or not audio/video.
	DurationMS int64
	// ContentKey and ThumbnailKey name the blobs holding the content and
	// the thumbnail ("" while there is none).
	ContentKey   string
	ThumbnailKey string
	// ThumbnailFailedAt is when making the thumbnail of this image failed
	// for good (its pixels cannot be decoded), with ThumbnailError saying
	// why, for operators; zero while a thumbnail exists or may still come.
	// The sweep does not queue such an image again (see SetThumbnailFailed).
	ThumbnailFailedAt time.Time
	ThumbnailError    string
	Message           MessageID // the message carrying it; 0 until sent
	Index             int       // its place among the message's attachments
	CreatedAt         time.Time
}

// Part is one stored chunk of an upload in progress: bytes [Start, End)
// kept in the blob Key.
type Part struct {
	Start, End int64
	Key        string
}

// AttachmentStore keeps attachment metadata. Both stores implement it.
// Like Store, it checks no permissions (core does) and enforces only data
// invariants: an attachment belongs to at most one message, parts are
// contiguous, and state moves uploading → ready|rejected, ready → deleted.
// Absent attachments give CodeNotFound; backend failures CodeUnavailable.
type AttachmentStore interface {
	// CreateAttachment stores a new attachment in state uploading.
	// Errors: CodeConflict for a reused id, CodeNotFound for an unknown
	// conversation or uploader.
	CreateAttachment(ctx context.Context, a Attachment) error
	// GetAttachment returns the attachment with id, in any state.
	GetAttachment(ctx context.Context, id AttachmentID) (Attachment, error)
	// AddPart records a chunk stored in a blob: it succeeds only while the
	// attachment is uploading and Received equals p.Start, and it sets
	// Received to p.End. Otherwise CodeConflict (another chunk won).
	AddPart(ctx context.Context, id AttachmentID, p Part) (Attachment, error)
	// FinishAttachment records the outcome of an upload: a ready or
	// rejected a (ID, State, ContentType, Size, SHA256, Width, Height,
	// ContentKey are taken from it) and drops the parts. CodeConflict when
	// the attachment is no longer uploading.
	FinishAttachment(ctx context.Context, a Attachment) (Attachment, error)
	// SetThumbnail records the thumbnail blob of a ready attachment (and
	// clears a failure SetThumbnailFailed recorded). CodeNotFound when no
	// ready attachment has id.
	SetThumbnail(ctx context.Context, id AttachmentID, key string) error
	// SetThumbnailFailed records that no thumbnail can be made of the
	// ready attachment id (reason says why, for operators) at at, so that
	// ListMissingThumbnails leaves it out from then on. Failures are
	// recorded for good: nothing clears them but SetThumbnail. It does
	// nothing to an attachment that has a thumbnail. CodeNotFound when no
	// ready attachment has id.
	SetThumbnailFailed(ctx context.Context, id AttachmentID, reason string, at time.Time) error
	// ClaimAttachments gives the attachments ids, in order, to message msg
	// of conv sent by uploader. Each must be ready, uploaded by uploader
	// for conv, and unclaimed, or claimed by a message that no longer
	// exists, or claimed by the stored message of conv whose (sender,
	// client_id) is (uploader, clientID): a retried send. All or none are
	// claimed; a failing id gives CodeConflict (naming no other user's
	// data) or CodeNotFound. It returns the claimed attachments.
	ClaimAttachments(ctx context.Context, conv ConversationID, uploader UserID, clientID string, msg MessageID, ids []AttachmentID) ([]Attachment, error)
	// ListMessageAttachments returns the ready attachments of the messages
	// msgs, by message, each message's in claim order.
	ListMessageAttachments(ctx context.Context, msgs []MessageID) (map[MessageID][]Attachment, error)
	// ReleaseMessageAttachments marks the attachments of msg deleted (its
	// message was deleted) and returns them.
	ReleaseMessageAttachments(ctx context.Context, msg MessageID) ([]Attachment, error)
	// ListGarbage returns up to limit attachments to remove: those
	// deleted or rejected, and those created before cutoff that no
	// existing, undeleted message carries.
	ListGarbage(ctx context.Context, cutoff time.Time, limit int) ([]Attachment, error)
	// ListMissingThumbnails returns up to limit ready images (content type
	// image/*) without a thumbnail and without a recorded failure (see
	// SetThumbnailFailed), oldest first: work a restart re-queues.
	ListMissingThumbnails(ctx context.Context, limit int) ([]Attachment, error)
	// DeleteAttachment removes the metadata row. Deleting an absent one is
	// not an error.
	DeleteAttachment(ctx context.Context, id AttachmentID) error
}

// BlobStore keeps the bytes of attachments under opaque keys; the
// AttachmentStore keeps what they are. Implementations: blob.Disk (local
// directory); an S3-compatible one can follow. Keys are made of
// [a-z0-9/_.-] and never start with "/" or contain "..".
type BlobStore interface {
	// Put stores everything r yields under key, replacing any blob there.
	// Readers never see a partly written blob. It returns the size.
	Put(ctx context.Context, key string, r io.Reader) (int64, error)
	// Open returns the blob for reading with its size and last
	// modification time. CodeNotFound when there is none.
	Open(ctx context.Context, key string) (io.ReadSeekCloser, int64, time.Time, error)
	// Delete removes the blob; deleting an absent one is not an error.
	Delete(ctx context.Context, key string) error
}

// Claimable checks what AttachmentStore.ClaimAttachments requires of a,
// besides not being another message's: uploaded by uploader to conv
// (not_found otherwise, so that the sender learns nothing about someone
// else's upload) and ready (conflict otherwise). op names the caller.
func Claimable(op string, a Attachment, conv ConversationID, uploader UserID) error {
	if a.Uploader != uploader || a.Conv != conv {
		return &Error{Code: CodeNotFound, Message: "no such attachment among your uploads to this conversation", Op: op}
	}
	if a.State != AttachmentReady {
		return &Error{Code: CodeConflict, Message: "an attachment is not ready (still uploading, rejected or deleted)", Op: op}
	}
	return nil
}
