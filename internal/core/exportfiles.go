package core

import (
	"context"
	"io"

	"github.com/natter-chat/natter/internal/chat"
)

// ExportFile is one file of a data export: one of the user's
// attachments, or (Avatar set) their avatar's image.
type ExportFile struct {
	Attachment chat.Attachment // zero for the avatar
	Avatar     *chat.Avatar
}

// listExportFiles fills e.Attachments and e.Avatar with the caller's
// ready uploads and worn avatar, and fails with too_large when their
// bytes together pass Options.ExportMaxBytes: an export is refused
// before it starts rather than cut short.
func (s *Service) listExportFiles(ctx context.Context, p Principal, e *Export) error {
	var total int64
	if s.userFiles != nil {
		var after chat.AttachmentID
		for {
			page, err := s.userFiles.ListUserAttachments(ctx, p.User, after, exportPage)
			if err != nil {
				return err
			}
			for _, a := range page {
				total += a.Size
			}
			e.Attachments = append(e.Attachments, page...)
			if len(page) < exportPage {
				break
			}
			after = page[len(page)-1].ID
		}
	}
	if s.avatars != nil && e.Profile.Avatar != "" {
		a, err := s.avatars.GetAvatar(ctx, p.User)
		switch {
		case err == nil && a.ID == e.Profile.Avatar:
			e.Avatar = &a
			total += a.Size
		case err != nil && !chat.IsCode(err, chat.CodeNotFound):
			return err
		}
	}
	if total > s.opts.ExportMaxBytes {
		return chat.Errorf(chat.CodeTooLarge, "your files take %d bytes, more than the %d a data export may carry; delete some or ask the operator",
			total, s.opts.ExportMaxBytes)
	}
	return nil
}

// ExportFiles calls yield with each file of e, attachments first (in id
// order) then the avatar, and its bytes; body is valid until yield
// returns. It stops at the first error, from yield or from opening a
// file (a lost blob is not_found: the export must not look complete
// without it).
func (s *Service) ExportFiles(ctx context.Context, e *Export, yield func(f ExportFile, body io.Reader) error) error {
	for _, a := range e.Attachments {
		if err := s.exportFile(ctx, ExportFile{Attachment: a}, yield); err != nil {
			return err
		}
	}
	if e.Avatar != nil {
		return s.exportFile(ctx, ExportFile{Avatar: e.Avatar}, yield)
	}
	return nil
}

func (s *Service) exportFile(ctx context.Context, f ExportFile, yield func(ExportFile, io.Reader) error) error {
	var body io.ReadCloser
	var err error
	if f.Avatar != nil {
		body, _, _, err = s.attach.blobs.Open(ctx, f.Avatar.ContentKey)
	} else {
		body, _, _, err = s.attach.openBlob(ctx, f.Attachment, f.Attachment.ContentKey)
	}
	if err != nil {
		return err
	}
	defer body.Close()
	return yield(f, body)
}
