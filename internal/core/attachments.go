package core

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"

	"github.com/natter-chat/natter/internal/chat"
	"github.com/natter-chat/natter/internal/jobs"
	"github.com/natter-chat/natter/internal/media"
)

// AttachmentOptions configures uploads and downloads. Zero values are
// documented per field.
type AttachmentOptions struct {
	MaxUploadBytes int64 // largest file; zero means 100 MiB
	// MinChunkBytes is the smallest chunk of a chunked upload, except the
	// last one (it bounds the parts an upload is stored in). Zero means 64 KiB.
	MinChunkBytes int64
	// UploadGrace is how long an upload may wait to be sent: after it, an
	// upload no message carries is removed. Zero means 24h.
	UploadGrace   time.Duration
	SweepInterval time.Duration // how often garbage is collected and missing thumbnails re-queued; zero means 1m
	Workers       int           // thumbnail jobs done at once per worker node; zero means 2
	QueueSize     int           // thumbnails one sweep re-queues at most; zero means 256
	// URLKey signs download URLs (HMAC-SHA256); every node of a cluster
	// needs the same. Nil means a random key per process: signed URLs then
	// work only on the node that made them, until it restarts.
	URLKey []byte
	URLTTL time.Duration // how long a signed URL works; zero means 10m
	// ColdAfter is how old (since upload) sent content must be before the
	// sweep moves it to the cold tier (Deps.Cold). Zero means never.
	ColdAfter time.Duration
	// ScratchDir holds the temporary files an upload is checked in.
	// Empty means the system's temporary directory.
	ScratchDir string
}

func (o *AttachmentOptions) fill() {
	if o.MaxUploadBytes <= 0 {
		o.MaxUploadBytes = 100 << 20
	}
	if o.MinChunkBytes <= 0 {
		o.MinChunkBytes = 64 << 10
	}
	if o.UploadGrace <= 0 {
		o.UploadGrace = 24 * time.Hour
	}
	if o.SweepInterval <= 0 {
		o.SweepInterval = time.Minute
	}
	if o.Workers <= 0 {
		o.Workers = 2
	}
	if o.QueueSize <= 0 {
		o.QueueSize = 256
	}
	if len(o.URLKey) == 0 {
		o.URLKey = make([]byte, 32)
		_, _ = rand.Read(o.URLKey)
	}
	if o.URLTTL <= 0 {
		o.URLTTL = 10 * time.Minute
	}
	if o.ScratchDir == "" {
		o.ScratchDir = os.TempDir()
	}
}

// attachments is the Service's attachment machinery: nil fields when
// Deps.Attachments is not set.
type attachments struct {
	store chat.AttachmentStore
	blobs chat.BlobStore
	opts  AttachmentOptions
	queue jobs.Queue // thumbnail jobs (set by setupJobs); a lost one is left to the sweep
	log   *slog.Logger
	cold  *coldTier // nil: no cold tier (see coldtier.go)
}

func newAttachments(store chat.AttachmentStore, blobs chat.BlobStore, opts AttachmentOptions, log *slog.Logger) *attachments {
	if store == nil || blobs == nil {
		return nil
	}
	opts.fill()
	return &attachments{store: store, blobs: blobs, opts: opts, log: log}
}

// maxNameBytes bounds an attachment's name.
const maxNameBytes = 255

var errAttachmentsOff = chat.Errorf(chat.CodeNotFound, "attachments are not enabled on this server")

func errNoAttachment() error { return chat.Errorf(chat.CodeNotFound, "no such attachment") }

// newAttachmentID returns 128 random bits as 26 lower-case base32 characters.
func newAttachmentID() chat.AttachmentID {
	var b [16]byte
	_, _ = rand.Read(b[:])
	return chat.AttachmentID(strings.ToLower(base32.StdEncoding.WithPadding(base32.NoPadding).EncodeToString(b[:])))
}

// ValidAttachmentID reports whether s has the form of an attachment id.
func ValidAttachmentID(s string) bool {
	if len(s) != 26 {
		return false
	}
	for _, c := range s {
		if !(c >= 'a' && c <= 'z' || c >= '2' && c <= '7') {
			return false
		}
	}
	return true
}

func validName(name string) error {
	if name == "" || len(name) > maxNameBytes || !utf8.ValidString(name) || strings.ContainsFunc(name, func(r rune) bool {
		return unicode.IsControl(r) || r == '/' || r == '\\'
	}) {
		return chat.Errorf(chat.CodeInvalidArgument, "name must be 1 to %d bytes of UTF-8 without control characters or slashes", maxNameBytes)
	}
	return nil
}

// CreateUpload starts an upload of a file of size bytes named name for
// conv, of which the caller must be a member. declared is the type the
// client claims (kept, never trusted). Errors: not_found, invalid_argument,
// too_large (over Options.Attachments.MaxUploadBytes).
func (s *Service) CreateUpload(ctx context.Context, p Principal, conv chat.ConversationID, name string, size int64, declared string) (chat.Attachment, error) {
	at := s.attach
	if at == nil {
		return chat.Attachment{}, errAttachmentsOff
	}
	if err := validName(name); err != nil {
		return chat.Attachment{}, err
	}
	if len(declared) > 255 || !utf8.ValidString(declared) {
		return chat.Attachment{}, chat.Errorf(chat.CodeInvalidArgument, "content_type must be at most 255 bytes of UTF-8")
	}
	if size <= 0 {
		return chat.Attachment{}, chat.Errorf(chat.CodeInvalidArgument, "size must be a positive number of bytes")
	}
	if size > at.opts.MaxUploadBytes {
		return chat.Attachment{}, chat.Errorf(chat.CodeTooLarge, "a file may have at most %d bytes", at.opts.MaxUploadBytes)
	}
	if _, err := s.member(ctx, conv, p.User); err != nil {
		return chat.Attachment{}, err
	}
	a := chat.Attachment{ID: newAttachmentID(), Conv: conv, Uploader: p.User, State: chat.AttachmentUploading,
		Name: name, Declared: declared, Size: size, CreatedAt: s.now()}
	if err := at.store.CreateAttachment(ctx, a); err != nil {
		return chat.Attachment{}, err
	}
	return a, nil
}

// ownUpload returns the caller's upload id, provided they are still a
// member of its conversation.
func (s *Service) ownUpload(ctx context.Context, p Principal, id chat.AttachmentID) (chat.Attachment, error) {
	a, err := s.attach.store.GetAttachment(ctx, id)
	if chat.IsCode(err, chat.CodeNotFound) || err == nil && (a.Uploader != p.User || a.State == chat.AttachmentDeleted) {
		return chat.Attachment{}, errNoAttachment()
	}
	if err != nil {
		return chat.Attachment{}, err
	}
	if err := s.members.check(ctx, a.Conv, p.User); err != nil {
		if chat.IsCode(err, chat.CodeNotFound) {
			return chat.Attachment{}, errNoAttachment()
		}
		return chat.Attachment{}, err
	}
	return a, nil
}

// Chunk says which bytes of an upload a request carries: [Start,
// Start+Length); a negative Length means "up to the end". Total is the
// file size the client states (0 when it states none, as with a PUT of
// the whole file).
type Chunk struct {
	Start, Length, Total int64
}

// UploadChunk stores a chunk of the caller's upload id read from body,
// which must hold exactly c.Length bytes. Chunks must come in order:
// c.Start must equal the bytes already received (see Attachment.Received);
// every chunk but the last must have at least MinChunkBytes. The chunk
// that completes the file finishes the upload before UploadChunk returns:
// the type is detected from the bytes, images are stripped of metadata,
// and the attachment is ready (or rejected). Thumbnails follow in the
// background. Errors: not_found, conflict (wrong offset or no longer
// uploading: ask for the attachment to resume), invalid_argument,
// too_large, unsupported_media_type (the upload is then rejected).
func (s *Service) UploadChunk(ctx context.Context, p Principal, id chat.AttachmentID, c Chunk, body io.Reader) (chat.Attachment, error) {
	at := s.attach
	if at == nil {
		return chat.Attachment{}, errAttachmentsOff
	}
	a, err := s.ownUpload(ctx, p, id)
	if err != nil {
		return chat.Attachment{}, err
	}
	if c.Length < 0 {
		c.Length = a.Size - c.Start
	}
	switch end := c.Start + c.Length; {
	case a.State != chat.AttachmentUploading:
		return chat.Attachment{}, chat.Errorf(chat.CodeConflict, "the upload is %s; it takes no more bytes", a.State)
	case c.Total != 0 && c.Total != a.Size:
		return chat.Attachment{}, chat.Errorf(chat.CodeInvalidArgument, "the upload has %d bytes, not %d", a.Size, c.Total)
	case c.Start < 0 || c.Length <= 0:
		return chat.Attachment{}, chat.Errorf(chat.CodeInvalidArgument, "a chunk must have at least one byte")
	case end > a.Size:
		return chat.Attachment{}, chat.Errorf(chat.CodeTooLarge, "the upload has %d bytes; this chunk ends at %d", a.Size, end)
	case c.Start != a.Received:
		return chat.Attachment{}, chat.Errorf(chat.CodeConflict, "the upload has %d bytes so far: send the chunk that starts there", a.Received)
	case end < a.Size && c.Length < at.opts.MinChunkBytes:
		return chat.Attachment{}, chat.Errorf(chat.CodeInvalidArgument, "every chunk but the last must have at least %d bytes", at.opts.MinChunkBytes)
	}
	part := chat.Part{Start: c.Start, End: c.Start + c.Length, Key: fmt.Sprintf("up/%s/%d-%d-%s", id, c.Start, c.Start+c.Length, strings.ToLower(rand.Text()[:8]))}
	lr := &countingReader{r: io.LimitReader(body, c.Length+1)}
	if _, err := at.blobs.Put(ctx, part.Key, lr); err != nil || lr.n != c.Length {
		_ = at.blobs.Delete(context.WithoutCancel(ctx), part.Key)
		switch {
		case err == nil && lr.n > c.Length:
			return chat.Attachment{}, chat.Errorf(chat.CodeTooLarge, "the body has more than the %d bytes the chunk announced", c.Length)
		case err == nil || lr.err != nil:
			return chat.Attachment{}, chat.Errorf(chat.CodeInvalidArgument, "the body ended before the %d bytes the chunk announced", c.Length)
		}
		return chat.Attachment{}, err
	}
	a, err = at.store.AddPart(ctx, id, part)
	if err != nil {
		_ = at.blobs.Delete(context.WithoutCancel(ctx), part.Key) // another request stored this offset first
		return chat.Attachment{}, err
	}
	if a.Received < a.Size {
		return a, nil
	}
	return s.finishUpload(context.WithoutCancel(ctx), a)
}

// countingReader counts what it reads and remembers a read error (one
// that is not io.EOF), so that a body cut short is told from one that
// Put could not store.
type countingReader struct {
	r   io.Reader
	n   int64
	err error
}

func (c *countingReader) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.n += int64(n)
	if err != nil && !errors.Is(err, io.EOF) {
		c.err = err
	}
	return n, err
}

func contentKey(id chat.AttachmentID) string   { return "att/" + string(id) + "/content" }
func thumbnailKey(id chat.AttachmentID) string { return "att/" + string(id) + "/thumbnail" }

// finishUpload checks and stores a fully received upload (see
// UploadChunk). Once the outcome is recorded, the parts are deleted. An
// upload that cannot be checked (a backend failed) is rejected, so that
// its client starts again instead of finding it stuck; if even that
// cannot be recorded, the sweep removes it after the grace period.
func (s *Service) finishUpload(ctx context.Context, a chat.Attachment) (chat.Attachment, error) {
	at := s.attach
	done, reason, err := s.checkUpload(ctx, a)
	if err == nil && reason == nil {
		ready, ferr := at.store.FinishAttachment(ctx, done)
		if ferr == nil {
			at.dropParts(ctx, a)
			if media.IsImage(ready.ContentType) {
				at.queueThumbnail(ctx, ready.ID)
			}
			return ready, nil
		}
		_ = at.blobs.Delete(ctx, done.ContentKey)
		err = ferr
	}
	rejected := a
	rejected.State, rejected.Size = chat.AttachmentRejected, 0
	if _, rerr := at.store.FinishAttachment(ctx, rejected); rerr == nil {
		at.dropParts(ctx, a)
	}
	if err != nil {
		at.log.Warn("an upload could not be checked and was rejected", "attachment", a.ID, "err", err)
		return chat.Attachment{}, err
	}
	return chat.Attachment{}, reason
}

// dropParts deletes the chunks of a finished upload.
func (at *attachments) dropParts(ctx context.Context, a chat.Attachment) {
	for _, p := range a.Parts {
		if err := at.blobs.Delete(ctx, p.Key); err != nil {
			at.log.Warn("cannot delete an upload part", "attachment", a.ID, "err", err)
		}
	}
}

// checkUpload assembles a's parts in a scratch file, detects the type,
// cleans images and stores the content blob. It returns the ready
// attachment, or a reason (an error for the client) to reject it, or an
// error of its own.
func (s *Service) checkUpload(ctx context.Context, a chat.Attachment) (chat.Attachment, error, error) {
	at := s.attach
	raw, err := os.CreateTemp(at.opts.ScratchDir, "natter-upload-*")
	if err != nil {
		return chat.Attachment{}, nil, chat.Unavailable("attachments.check", err)
	}
	defer func() { raw.Close(); os.Remove(raw.Name()) }()
	for _, p := range a.Parts {
		if err := copyBlob(ctx, at.blobs, p.Key, raw); err != nil {
			return chat.Attachment{}, nil, err
		}
	}
	head := make([]byte, media.SniffLen)
	n, _ := raw.ReadAt(head, 0)
	t := media.Detect(head[:n])
	if t == "" {
		return chat.Attachment{}, chat.Errorf(chat.CodeUnsupportedMediaType,
			"this kind of file is not accepted (allowed: JPEG, PNG, GIF and WebP images, MP4 and WebM video, Ogg, MP3, M4A and WAV audio, PDF, ZIP, plain UTF-8 text)"), nil
	}
	content := raw
	done := a
	if media.IsImage(t) {
		clean, err := os.CreateTemp(at.opts.ScratchDir, "natter-clean-*")
		if err != nil {
			return chat.Attachment{}, nil, chat.Unavailable("attachments.check", err)
		}
		defer func() { clean.Close(); os.Remove(clean.Name()) }()
		if _, err := raw.Seek(0, io.SeekStart); err != nil {
			return chat.Attachment{}, nil, chat.Unavailable("attachments.check", err)
		}
		size, cleaned, err := media.Clean(clean, raw, t)
		switch {
		case errors.Is(err, media.ErrTooManyPixels):
			return chat.Attachment{}, chat.Errorf(chat.CodeTooLarge, "an image may have at most %d pixels", media.MaxPixels), nil
		case errors.Is(err, media.ErrCorrupt):
			return chat.Attachment{}, chat.Errorf(chat.CodeUnsupportedMediaType, "the image cannot be decoded"), nil
		case err != nil:
			return chat.Attachment{}, nil, chat.Unavailable("attachments.check", err)
		}
		if cleaned {
			content = clean
		}
		done.Width, done.Height = size.Width, size.Height
	}
	if media.IsAV(t) {
		probeAV(&done, raw, t)
	}
	if _, err := content.Seek(0, io.SeekStart); err != nil {
		return chat.Attachment{}, nil, chat.Unavailable("attachments.check", err)
	}
	h := sha256.New()
	done.ContentKey = contentKey(a.ID)
	size, err := at.blobs.Put(ctx, done.ContentKey, io.TeeReader(content, h))
	if err != nil {
		return chat.Attachment{}, nil, err
	}
	done.State, done.ContentType, done.Size, done.SHA256 = chat.AttachmentReady, t, size, hex.EncodeToString(h.Sum(nil))
	return done, nil, nil
}

// copyBlob appends the blob key to w.
func copyBlob(ctx context.Context, blobs chat.BlobStore, key string, w io.Writer) error {
	r, _, _, err := blobs.Open(ctx, key)
	if err != nil {
		return err
	}
	defer r.Close()
	if _, err := io.Copy(w, r); err != nil {
		return chat.Unavailable("attachments.copy", err)
	}
	return nil
}

// visible returns attachment id if the caller may see it: its uploader,
// while a member of its conversation, before it is sent; and every
// current member once a stored message carries it. Anything else is
// not_found, whether or not the attachment exists.
func (s *Service) visible(ctx context.Context, p Principal, id chat.AttachmentID) (chat.Attachment, error) {
	at := s.attach
	if at == nil {
		return chat.Attachment{}, errAttachmentsOff
	}
	a, err := at.store.GetAttachment(ctx, id)
	if chat.IsCode(err, chat.CodeNotFound) {
		return chat.Attachment{}, errNoAttachment()
	}
	if err != nil {
		return chat.Attachment{}, err
	}
	if err := s.members.check(ctx, a.Conv, p.User); err != nil {
		if chat.IsCode(err, chat.CodeNotFound) {
			return chat.Attachment{}, errNoAttachment()
		}
		return chat.Attachment{}, err
	}
	switch {
	case a.State == chat.AttachmentDeleted:
		return chat.Attachment{}, errNoAttachment()
	case a.Uploader == p.User:
		return a, nil
	case a.State != chat.AttachmentReady || a.Message == 0:
		return chat.Attachment{}, errNoAttachment()
	}
	if err := s.carried(ctx, a); err != nil {
		return chat.Attachment{}, err
	}
	return a, nil
}

// carried returns nil when a stored, undeleted message carries a.
func (s *Service) carried(ctx context.Context, a chat.Attachment) error {
	m, err := s.store.GetMessage(ctx, a.Conv, a.Message)
	if chat.IsCode(err, chat.CodeNotFound) || err == nil && !m.DeletedAt.IsZero() {
		return errNoAttachment()
	}
	return err
}

// GetAttachment returns an attachment the caller may see (see
// Attachment): its uploader may follow an upload's progress, members see
// sent ones. Errors: not_found.
func (s *Service) GetAttachment(ctx context.Context, p Principal, id chat.AttachmentID) (chat.Attachment, error) {
	return s.visible(ctx, p, id)
}

// Download is an attachment's content or thumbnail, open for reading.
// The caller must close Body.
type Download struct {
	Attachment chat.Attachment
	Thumbnail  bool // Body is the thumbnail (image/jpeg), not the content
	Body       io.ReadSeekCloser
	Size       int64
	ModTime    time.Time
}

// OpenAttachment opens the content (or, with thumbnail, the thumbnail)
// of a ready attachment the caller may see. Errors: not_found (also for
// a thumbnail not made yet).
func (s *Service) OpenAttachment(ctx context.Context, p Principal, id chat.AttachmentID, thumbnail bool) (Download, error) {
	a, err := s.visible(ctx, p, id)
	if err != nil {
		return Download{}, err
	}
	return s.open(ctx, a, thumbnail)
}

func (s *Service) open(ctx context.Context, a chat.Attachment, thumbnail bool) (Download, error) {
	key := a.ContentKey
	if thumbnail {
		key = a.ThumbnailKey
	}
	if a.State == chat.AttachmentReady && thumbnail && key == "" && !a.ThumbnailFailedAt.IsZero() {
		return Download{}, chat.Errorf(chat.CodeNotFound, "no thumbnail can be made of this image")
	}
	if a.State != chat.AttachmentReady || key == "" {
		return Download{}, errNoAttachment()
	}
	body, size, mod, err := s.attach.openBlob(ctx, a, key)
	if chat.IsCode(err, chat.CodeNotFound) {
		return Download{}, errNoAttachment()
	}
	if err != nil {
		return Download{}, err
	}
	return Download{Attachment: a, Thumbnail: thumbnail, Body: body, Size: size, ModTime: mod}, nil
}

// SignedURL is a query string that lets whoever holds it download an
// attachment's content and thumbnail without a token, until Expires.
type SignedURL struct {
	Query   string // "exp=...&sig=..."
	Expires time.Time
}

// SignAttachment returns a signed URL query for an attachment the caller
// may see, valid for Options.Attachments.URLTTL. Errors: not_found.
func (s *Service) SignAttachment(ctx context.Context, p Principal, id chat.AttachmentID) (chat.Attachment, SignedURL, error) {
	a, err := s.visible(ctx, p, id)
	if err != nil {
		return chat.Attachment{}, SignedURL{}, err
	}
	exp := s.opts.Now().Add(s.attach.opts.URLTTL).Truncate(time.Second)
	ts := strconv.FormatInt(exp.Unix(), 10)
	return a, SignedURL{Query: "exp=" + ts + "&sig=" + s.attach.sign(id, ts), Expires: exp.UTC()}, nil
}

func (at *attachments) sign(id chat.AttachmentID, exp string) string {
	mac := hmac.New(sha256.New, at.opts.URLKey)
	mac.Write([]byte("natter attachment\x00" + string(id) + "\x00" + exp))
	return base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

// OpenSigned opens an attachment's content or thumbnail for a signed URL
// (exp and sig as SignAttachment made them). The signature stands for
// the membership checked when it was made; the attachment must still be
// ready and carried by a message or still the signer's upload. Errors:
// not_found for a bad, tampered or expired signature, as for an unknown id.
func (s *Service) OpenSigned(ctx context.Context, id chat.AttachmentID, exp, sig string, thumbnail bool) (Download, time.Time, error) {
	at := s.attach
	if at == nil {
		return Download{}, time.Time{}, errAttachmentsOff
	}
	ts, err := strconv.ParseInt(exp, 10, 64)
	if err != nil || !hmac.Equal([]byte(sig), []byte(at.sign(id, exp))) {
		return Download{}, time.Time{}, errNoAttachment()
	}
	expires := time.Unix(ts, 0)
	if !s.opts.Now().Before(expires) {
		return Download{}, time.Time{}, chat.Errorf(chat.CodeNotFound, "the link has expired; ask for a new one")
	}
	a, err := at.store.GetAttachment(ctx, id)
	if chat.IsCode(err, chat.CodeNotFound) {
		return Download{}, time.Time{}, errNoAttachment()
	}
	if err != nil {
		return Download{}, time.Time{}, err
	}
	if a.Message != 0 {
		if err := s.carried(ctx, a); err != nil {
			return Download{}, time.Time{}, err
		}
	}
	d, err := s.open(ctx, a, thumbnail)
	return d, expires, err
}
