package protocol

import (
	"encoding/json"
	"time"

	"github.com/natter-chat/natter/internal/chat"
)

// Attachment is a file a message carries. SHA256 (hex) is the digest of
// the bytes served, which for JPEG and PNG images are re-encoded without
// metadata. Thumbnail says whether a thumbnail can be fetched; for an
// image it turns true shortly after the upload (it is made in the
// background), unless ThumbnailFailed says that none will come: the
// image's pixels cannot be decoded.
type Attachment struct {
	ID          string `json:"id"`
	Name        string `json:"name"`
	ContentType string `json:"content_type"`
	Size        int64  `json:"size"`
	Width       int    `json:"width,omitempty"`
	Height      int    `json:"height,omitempty"`
	DurationMS  int64  `json:"duration_ms,omitempty"` // audio and video: playing time in milliseconds
	SHA256      string `json:"sha256"`
	Thumbnail   bool   `json:"thumbnail"`
	// ThumbnailFailed is present (true) only for an image of which no
	// thumbnail can be made.
	ThumbnailFailed bool `json:"thumbnail_failed,omitempty"`
}

// Upload is an attachment as its uploader and the members who may see it
// get it from GET /v1/attachments/{id}: the Attachment fields plus its
// state and, while uploading, the bytes received so far.
type Upload struct {
	Attachment
	Conv      string    `json:"conv"`
	Uploader  string    `json:"uploader"`
	State     string    `json:"state"`
	Received  int64     `json:"received"`
	Message   string    `json:"message,omitempty"` // the message carrying it, once sent
	CreatedAt time.Time `json:"created_at"`
}

// CreateUploadRequest is the body of POST /v1/conversations/{id}/attachments.
type CreateUploadRequest struct {
	Name        string `json:"name"`
	Size        int64  `json:"size"`
	ContentType string `json:"content_type,omitempty"`
}

// UploadResponse wraps one upload. UploadURL is where its bytes go (PUT).
type UploadResponse struct {
	Attachment Upload `json:"attachment"`
	UploadURL  string `json:"upload_url,omitempty"`
}

// AttachmentURLResponse answers GET /v1/attachments/{id}/url: links that
// work without a token until ExpiresAt (ThumbnailURL only when there is a
// thumbnail).
type AttachmentURLResponse struct {
	URL          string    `json:"url"`
	ThumbnailURL string    `json:"thumbnail_url,omitempty"`
	ExpiresAt    time.Time `json:"expires_at"`
}

// FromAttachment converts an attachment as messages carry it.
func FromAttachment(a chat.Attachment) Attachment {
	return Attachment{ID: string(a.ID), Name: a.Name, ContentType: a.ContentType, Size: a.Size, Width: a.Width, Height: a.Height,
		DurationMS: a.DurationMS, SHA256: a.SHA256, Thumbnail: a.ThumbnailKey != "",
		ThumbnailFailed: a.ThumbnailKey == "" && !a.ThumbnailFailedAt.IsZero()}
}

// FromUpload converts an attachment with its upload state.
func FromUpload(a chat.Attachment) Upload {
	u := Upload{Attachment: FromAttachment(a), Conv: a.Conv.String(), Uploader: a.Uploader.String(), State: string(a.State),
		Received: a.Received, CreatedAt: a.CreatedAt.UTC()}
	if a.State != chat.AttachmentUploading {
		u.Received = a.Size
	}
	if a.State == chat.AttachmentUploading {
		u.ContentType = ""
	}
	if a.Message != 0 && a.State == chat.AttachmentReady {
		u.Message = a.Message.String()
	}
	return u
}

func fromAttachments(as []chat.Attachment) []Attachment {
	if len(as) == 0 {
		return nil
	}
	out := make([]Attachment, len(as))
	for i, a := range as {
		out[i] = FromAttachment(a)
	}
	return out
}

// appendAttachments appends ,"attachments":[...] for a message that has
// any. Attachments are rare, so encoding/json writes them.
func appendAttachments(dst []byte, as []chat.Attachment) []byte {
	if len(as) == 0 {
		return dst
	}
	b, err := json.Marshal(fromAttachments(as))
	if err != nil {
		return dst // cannot happen: strings and numbers only
	}
	dst = append(dst, `,"attachments":`...)
	return append(dst, b...)
}
