package core

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"os"
	"time"

	"github.com/natter-chat/natter/internal/chat"
	"github.com/natter-chat/natter/internal/media"
)

// Limits of avatars.
const (
	MaxAvatarBytes    = 5 << 20 // bytes of an uploaded avatar image
	AvatarSide        = 512     // pixels a side of a stored avatar, at most
	AvatarThumbSide   = 128     // pixels a side of its thumbnail, at most
	avatarKeyPrefix   = "avatar/"
	avatarContentName = "/image"
	avatarThumbName   = "/thumbnail"
)

func errNoAvatar() error { return chat.Errorf(chat.CodeNotFound, "this user has no avatar") }

var errAvatarsOff = chat.Errorf(chat.CodeNotFound, "avatars are not enabled on this server")

// UploadAvatar makes the image in body (at most MaxAvatarBytes of JPEG,
// PNG, GIF or WebP, detected from the bytes) the caller's avatar: it is
// turned upright, cropped to its centred square and re-encoded without
// metadata at up to AvatarSide pixels, with a thumbnail of up to
// AvatarThumbSide. Its blobs stored, the avatar row and the profile's
// avatar (its id) change in one store transaction on the appender
// goroutine, published as UpdateProfile does, and then the avatar it
// replaced is deleted: however uploads and deletions race, the profile
// never names an avatar whose files are gone. Errors: invalid_argument
// (empty body), too_large, unsupported_media_type, not_found (avatars
// are off, or the account was deleted meanwhile).
func (s *Service) UploadAvatar(ctx context.Context, p Principal, body io.Reader) (chat.Profile, error) {
	if s.avatars == nil {
		return chat.Profile{}, errAvatarsOff
	}
	at := s.attach
	raw, err := os.CreateTemp(at.opts.ScratchDir, "natter-avatar-*")
	if err != nil {
		return chat.Profile{}, chat.Unavailable("avatars.upload", err)
	}
	defer func() { raw.Close(); os.Remove(raw.Name()) }()
	n, err := io.Copy(raw, io.LimitReader(body, MaxAvatarBytes+1))
	switch {
	case n > MaxAvatarBytes:
		return chat.Profile{}, chat.Errorf(chat.CodeTooLarge, "an avatar may have at most %d bytes", MaxAvatarBytes)
	case err != nil:
		return chat.Profile{}, chat.Errorf(chat.CodeInvalidArgument, "cannot read the request body")
	case n == 0:
		return chat.Profile{}, chat.Errorf(chat.CodeInvalidArgument, "the body must be the image: JPEG, PNG, GIF or WebP")
	}
	head := make([]byte, media.SniffLen)
	k, _ := raw.ReadAt(head, 0)
	t := media.Detect(head[:k])
	if !media.IsImage(t) {
		return chat.Profile{}, chat.Errorf(chat.CodeUnsupportedMediaType, "an avatar must be a JPEG, PNG, GIF or WebP image")
	}
	if _, err := raw.Seek(0, io.SeekStart); err != nil {
		return chat.Profile{}, chat.Unavailable("avatars.upload", err)
	}
	imgs, ctype, sides, err := media.Avatar(raw, t, AvatarSide, AvatarThumbSide)
	switch {
	case errors.Is(err, media.ErrTooManyPixels):
		return chat.Profile{}, chat.Errorf(chat.CodeTooLarge, "an image may have at most %d pixels", media.MaxPixels)
	case errors.Is(err, media.ErrCorrupt):
		return chat.Profile{}, chat.Errorf(chat.CodeUnsupportedMediaType, "the image cannot be decoded")
	case err != nil:
		return chat.Profile{}, chat.Unavailable("avatars.upload", err)
	}
	id := string(newAttachmentID())
	a := chat.Avatar{ID: id, User: p.User, ContentType: ctype, Side: sides[0],
		ContentKey: avatarKeyPrefix + id + avatarContentName, ThumbnailKey: avatarKeyPrefix + id + avatarThumbName, CreatedAt: s.now()}
	ctx = context.WithoutCancel(ctx) // from here on, finish what was begun
	if a.Size, a.SHA256, err = putBlob(ctx, at.blobs, a.ContentKey, imgs[0]); err != nil {
		return chat.Profile{}, err
	}
	if a.ThumbnailSize, a.ThumbnailSHA256, err = putBlob(ctx, at.blobs, a.ThumbnailKey, imgs[1]); err != nil {
		s.dropAvatarBlobs(ctx, a)
		return chat.Profile{}, err
	}
	var ch chat.AvatarChange
	err = s.write(ctx, func(ctx context.Context) error {
		var err error
		if ch, err = s.avatars.PutAvatar(ctx, a); err == nil {
			s.publishProfile(ctx, ch.Profile)
		}
		return err
	})
	if err != nil {
		s.dropAvatarBlobs(ctx, a)
		return chat.Profile{}, err
	}
	if ch.Old != nil {
		s.dropAvatarBlobs(ctx, *ch.Old)
	}
	return ch.Profile, nil
}

// putBlob stores b under key and returns its size and hex SHA-256.
func putBlob(ctx context.Context, blobs chat.BlobStore, key string, b []byte) (int64, string, error) {
	sum := sha256.Sum256(b)
	n, err := blobs.Put(ctx, key, bytes.NewReader(b))
	return n, hex.EncodeToString(sum[:]), err
}

// dropAvatarBlobs deletes a's image and thumbnail. A failure is logged:
// nothing refers to the blobs any more, so the only cost is the space.
func (s *Service) dropAvatarBlobs(ctx context.Context, a chat.Avatar) {
	for _, key := range []string{a.ContentKey, a.ThumbnailKey} {
		if key == "" {
			continue
		}
		if err := s.attach.blobs.Delete(ctx, key); err != nil {
			s.log.Warn("cannot delete an avatar blob", "user", a.User, "err", err)
		}
	}
}

// AvatarDownload is an avatar's image or thumbnail, open for reading.
// The caller must close Body.
type AvatarDownload struct {
	Avatar      chat.Avatar
	Thumbnail   bool   // Body is the thumbnail
	ContentType string // of Body
	SHA256      string // hex digest of Body, for the ETag
	Body        io.ReadSeekCloser
	Size        int64
	ModTime     time.Time
}

// OpenAvatar opens the avatar user wears (or, with thumbnail, its
// thumbnail). Every authenticated user may see avatars, as profiles.
// An avatar is worn while the profile's avatar is its id. Errors:
// not_found (no such user, or no avatar worn).
func (s *Service) OpenAvatar(ctx context.Context, p Principal, user chat.UserID, thumbnail bool) (AvatarDownload, error) {
	if s.avatars == nil {
		return AvatarDownload{}, errNoAvatar()
	}
	prof, err := s.people.GetProfile(ctx, user)
	if chat.IsCode(err, chat.CodeNotFound) || err == nil && (prof.Deleted() || prof.Avatar == "") {
		return AvatarDownload{}, errNoAvatar()
	}
	if err != nil {
		return AvatarDownload{}, err
	}
	a, err := s.avatars.GetAvatar(ctx, user)
	if chat.IsCode(err, chat.CodeNotFound) || err == nil && a.ID != prof.Avatar {
		return AvatarDownload{}, errNoAvatar()
	}
	if err != nil {
		return AvatarDownload{}, err
	}
	d := AvatarDownload{Avatar: a, Thumbnail: thumbnail, ContentType: a.ContentType, SHA256: a.SHA256}
	key := a.ContentKey
	if thumbnail {
		key, d.SHA256 = a.ThumbnailKey, a.ThumbnailSHA256
	}
	d.Body, d.Size, d.ModTime, err = s.attach.blobs.Open(ctx, key)
	if chat.IsCode(err, chat.CodeNotFound) {
		return AvatarDownload{}, errNoAvatar() // replaced meanwhile
	}
	if err != nil {
		return AvatarDownload{}, err
	}
	return d, nil
}

// DeleteAvatar clears the caller's avatar (the profile change is
// published as UpdateProfile does) and deletes the stored one, if any.
// Deleting when there is none is not an error. Errors: not_found
// (avatars are off).
func (s *Service) DeleteAvatar(ctx context.Context, p Principal) (chat.Profile, error) {
	if s.avatars == nil {
		return chat.Profile{}, errAvatarsOff
	}
	return s.removeAvatar(ctx, p.User)
}

// eraseAvatar deletes user's stored avatar, row and blobs, if any.
func (s *Service) eraseAvatar(ctx context.Context, user chat.UserID) error {
	if s.avatars == nil {
		return nil
	}
	_, err := s.removeAvatar(ctx, user)
	return err
}

// removeAvatar deletes user's avatar row and takes it off their profile in
// one store transaction, on the appender goroutine as every profile change
// (see changeProfile), publishing the profile if it changed; then it
// deletes the avatar's blobs. It returns the profile.
func (s *Service) removeAvatar(ctx context.Context, user chat.UserID) (chat.Profile, error) {
	var ch chat.AvatarChange
	err := s.write(ctx, func(ctx context.Context) error {
		var err error
		if ch, err = s.avatars.DeleteAvatar(ctx, user, s.now()); err == nil && ch.ProfileChanged {
			s.publishProfile(ctx, ch.Profile)
		}
		return err
	})
	if err != nil {
		return chat.Profile{}, err
	}
	if ch.Old != nil {
		s.dropAvatarBlobs(context.WithoutCancel(ctx), *ch.Old)
	}
	return ch.Profile, nil
}

// eraseFiles is account deletion's part for files: the avatar goes at
// once, and every attachment the user uploaded that no remaining message
// carries (after the tombstones, none) is marked deleted, so downloads
// stop and the next sweep removes its bytes.
func (s *Service) eraseFiles(ctx context.Context, user chat.UserID) error {
	if err := s.eraseAvatar(ctx, user); err != nil {
		return err
	}
	if s.userFiles == nil {
		return nil
	}
	n, err := s.userFiles.ReleaseUserAttachments(ctx, user)
	if err != nil {
		return err
	}
	if n > 0 {
		s.log.Info("attachments of a deleted account released", "user", user, "count", n)
	}
	return nil
}
