package core

import (
	"context"
	"time"

	"github.com/natter-chat/natter/internal/chat"
)

// MaxConcurrentExports bounds the data exports one node builds at once;
// each streams the user's messages from the store.
const MaxConcurrentExports = 2

// Export is a user's own data, for a GDPR-style export: the profile, the
// conversations they are a member of, their contacts and blocks, and the
// metadata of their files. Their messages come separately, from
// ExportMessages, a page at a time, and the files' bytes from ExportFiles.
type Export struct {
	Profile       chat.Profile
	Conversations []chat.ConversationSummary
	Contacts      []chat.Related
	Blocks        []chat.Related
	// Attachments are the user's ready uploads that no deleted message
	// carries, in id order; Avatar is the avatar they wear, or nil.
	Attachments []chat.Attachment
	Avatar      *chat.Avatar
	release     func()
}

// Close ends the export, letting another one start.
func (e *Export) Close() { e.release() }

// StartExport begins an export of the caller's data; the caller must
// Close it. Errors: rate_limited when MaxConcurrentExports are running,
// too_large when the files pass Options.ExportMaxBytes.
func (s *Service) StartExport(ctx context.Context, p Principal) (*Export, error) {
	select {
	case s.exports <- struct{}{}:
	default:
		return nil, &RetryError{Err: chat.Errorf(chat.CodeRateLimited, "too many data exports are running; retry later"), After: 10 * time.Second}
	}
	e := &Export{release: func() { <-s.exports }}
	var err error
	defer func() {
		if err != nil {
			e.Close()
		}
	}()
	if e.Profile, err = s.people.GetProfile(ctx, p.User); err != nil {
		return nil, err
	}
	if e.Conversations, err = s.store.ListConversations(ctx, p.User); err != nil {
		return nil, err
	}
	if e.Contacts, err = s.people.ListRelations(ctx, p.User, chat.RelationContact, MaxRelations); err != nil {
		return nil, err
	}
	if e.Blocks, err = s.people.ListRelations(ctx, p.User, chat.RelationBlock, MaxRelations); err != nil {
		return nil, err
	}
	if err = s.listExportFiles(ctx, p, e); err != nil {
		return nil, err
	}
	return e, nil
}

// exportPage is how many messages ExportMessages reads per store query.
const exportPage = 500

// ExportMessages calls yield with every message the caller sent and did
// not delete, in every conversation, including ones they left, ordered by
// conversation then seq. It stops at the first error yield returns.
func (s *Service) ExportMessages(ctx context.Context, p Principal, yield func(chat.Message) error) error {
	var cur chat.SentCursor
	for {
		page, err := s.people.ListSentMessages(ctx, p.User, cur, exportPage)
		if err != nil {
			return err
		}
		for _, m := range page {
			if err := yield(m); err != nil {
				return err
			}
		}
		if len(page) < exportPage {
			return nil
		}
		last := page[len(page)-1]
		cur = chat.SentCursor{Conv: last.Conv, Seq: last.Seq}
	}
}
