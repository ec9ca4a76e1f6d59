package chat

import (
	"context"
	"time"
)

// Avatar is a user's profile picture: an image uploaded for the profile
// alone (not for a conversation), re-encoded without metadata, cropped
// to a square and kept in two sizes. A user has at most one; its ID is
// what the profile's Avatar field holds while it is worn.
type Avatar struct {
	ID          string // 128 random bits as 26 lower-case base32 characters
	User        UserID
	ContentType string // of both sizes: image/jpeg or image/png
	Size        int64  // bytes of the image
	SHA256      string // hex digest of the image
	Side        int    // pixels of the image's width and height
	ContentKey  string // the blob holding the image
	// ThumbnailKey, ThumbnailSize and ThumbnailSHA256 are the small copy's.
	ThumbnailKey    string
	ThumbnailSize   int64
	ThumbnailSHA256 string
	CreatedAt       time.Time
}

// AvatarStore keeps avatars' metadata (their bytes live in a BlobStore).
// Both stores implement it. It checks no permissions. Backend failures
// give CodeUnavailable.
//
// The profile's avatar changes in the transaction that changes the
// avatar row, so that whatever the interleaving of puts and deletes (on
// one node or several), a profile never names an avatar that was replaced
// or deleted: its Avatar is "" or the ID of the stored avatar.
type AvatarStore interface {
	// PutAvatar stores a as a.User's avatar, replacing the one they had,
	// and makes their profile wear it (Avatar a.ID, UpdatedAt
	// a.CreatedAt), in one transaction. Errors: CodeNotFound for an
	// unknown or deleted user, CodeConflict for an ID in use.
	PutAvatar(ctx context.Context, a Avatar) (AvatarChange, error)
	// GetAvatar returns user's avatar. CodeNotFound when they have none.
	GetAvatar(ctx context.Context, user UserID) (Avatar, error)
	// DeleteAvatar removes user's avatar, if any, and takes whatever
	// avatar their profile wears off it (UpdatedAt at), in one
	// transaction. Having none is not an error; a deleted account's
	// avatar is removed too. Errors: CodeNotFound for an unknown user.
	DeleteAvatar(ctx context.Context, user UserID, at time.Time) (AvatarChange, error)
}

// AvatarChange is what PutAvatar or DeleteAvatar did.
type AvatarChange struct {
	Profile Profile // the user's profile once the change is stored
	// Old is the avatar replaced or deleted, whose blobs the caller may
	// now delete; nil when there was none.
	Old *Avatar
	// ProfileChanged reports whether the profile changed: always for a
	// put; for a delete, when the profile wore an avatar.
	ProfileChanged bool
}

// UserAttachments finds and releases the attachments one user uploaded,
// for the data export and account deletion. Both stores implement it.
type UserAttachments interface {
	// ListUserAttachments returns up to limit ready attachments uploaded
	// by user that no deleted message carries (sent ones and uploads not
	// sent yet), in id order after the id after ("" for the first page).
	ListUserAttachments(ctx context.Context, user UserID, after AttachmentID, limit int) ([]Attachment, error)
	// ReleaseUserAttachments marks deleted every attachment uploaded by
	// user, uploading or ready, that no undeleted message carries, so
	// that downloads stop and the sweep removes it. It returns how many
	// it marked.
	ReleaseUserAttachments(ctx context.Context, user UserID) (int, error)
}
