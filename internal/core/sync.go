package core

import (
	"context"

	"github.com/natter-chat/natter/internal/chat"
)

// MaxChangesLimit bounds one page of the sync stream (the default is 200).
const MaxChangesLimit = 500

// ResyncError answers a sync whose gap is too long to replay: the client
// must reload its conversation list and page history, then continue the
// stream from Cursor.
type ResyncError struct {
	Err    error
	Cursor int64
}

func (e *ResyncError) Error() string { return e.Err.Error() }
func (e *ResyncError) Unwrap() error { return e.Err }

// Changes returns the caller's sync stream after cursor: every change of
// their conversations (new, edited, deleted and reacted messages, receipts,
// memberships, titles) in position order, each at its latest state, one
// page at a time. When more than Options.MaxReplay changes are waiting it
// answers resync_required (a *ResyncError with the cursor to continue
// from) instead of a silent gap.
// Errors: invalid_argument, resync_required.
func (s *Service) Changes(ctx context.Context, p Principal, cursor int64, limit int) (chat.Changes, error) {
	if cursor < 0 {
		return chat.Changes{}, chat.Errorf(chat.CodeInvalidArgument, "cursor must not be negative")
	}
	if limit < 0 || limit > MaxChangesLimit {
		return chat.Changes{}, chat.Errorf(chat.CodeInvalidArgument, "limit must be between 0 (the default page) and %d", MaxChangesLimit)
	}
	if limit == 0 {
		limit = 200
	}
	n, err := s.store.CountChanges(ctx, p.User, cursor, s.opts.MaxReplay+1)
	if err != nil {
		return chat.Changes{}, err
	}
	pos, err := s.store.Position(ctx)
	if err != nil {
		return chat.Changes{}, err
	}
	if cursor > pos { // a cursor from another database (restored backup, other server)
		return chat.Changes{}, &ResyncError{Err: chat.Errorf(chat.CodeResyncRequired, "this cursor is ahead of the server: reload the conversation list and history, then sync from the given cursor"), Cursor: pos}
	}
	if n > s.opts.MaxReplay {
		return chat.Changes{}, &ResyncError{
			Err:    chat.Errorf(chat.CodeResyncRequired, "more than %d changes since this cursor: reload the conversation list and history, then sync from the given cursor", s.opts.MaxReplay),
			Cursor: pos,
		}
	}
	changes, err := s.store.ListChanges(ctx, p.User, cursor, limit)
	var msgs []*chat.Message
	for _, c := range changes.Changes {
		if c.Message != nil {
			msgs = append(msgs, c.Message)
		}
	}
	s.fillAttachments(ctx, msgs...)
	return changes, err
}

// Position returns the newest change position: a fresh device that has
// loaded the conversation list and history syncs from it.
func (s *Service) Position(ctx context.Context) (int64, error) { return s.store.Position(ctx) }
