package core

import (
	"context"
	"regexp"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/natter-chat/natter/internal/chat"
)

// message returns a message of a conversation the caller is a member of.
func (s *Service) message(ctx context.Context, p Principal, conv chat.ConversationID, id chat.MessageID) (chat.Member, chat.Message, error) {
	me, err := s.member(ctx, conv, p.User)
	if err != nil {
		return chat.Member{}, chat.Message{}, err
	}
	m, err := s.store.GetMessage(ctx, conv, id)
	if chat.IsCode(err, chat.CodeNotFound) {
		return chat.Member{}, chat.Message{}, chat.Errorf(chat.CodeNotFound, "no such message")
	}
	return me, m, err
}

// EditMessage replaces the text of the caller's own message; mentions are
// resolved again. Errors: not_found, forbidden (not the sender), conflict
// (deleted), invalid_argument, too_large.
func (s *Service) EditMessage(ctx context.Context, p Principal, conv chat.ConversationID, id chat.MessageID, text string) (chat.Message, error) {
	if err := s.validText(text); err != nil {
		return chat.Message{}, err
	}
	_, old, err := s.message(ctx, p, conv, id)
	if err != nil {
		return chat.Message{}, err
	}
	if old.Sender != p.User {
		return chat.Message{}, chat.Errorf(chat.CodeForbidden, "only the sender edits a message")
	}
	mentions, err := s.mentions(ctx, conv, text)
	if err != nil {
		return chat.Message{}, err
	}
	return s.updateMessage(ctx, p, old.Pos, func(ctx context.Context) (chat.Message, error) {
		return s.store.EditMessage(ctx, conv, id, text, mentions, s.now())
	})
}

// DeleteMessage turns a message into a tombstone: its text is erased from
// storage, its seq stays. The sender may delete it, and so may a group's
// owners and admins. Errors: not_found, forbidden.
func (s *Service) DeleteMessage(ctx context.Context, p Principal, conv chat.ConversationID, id chat.MessageID) (chat.Message, error) {
	me, old, err := s.message(ctx, p, conv, id)
	if err != nil {
		return chat.Message{}, err
	}
	if old.Sender != p.User {
		c, err := s.store.GetConversation(ctx, conv)
		if err != nil {
			return chat.Message{}, err
		}
		if c.Kind != chat.KindGroup || !me.Role.CanManage() {
			return chat.Message{}, chat.Errorf(chat.CodeForbidden, "only the sender or a group admin deletes a message")
		}
	}
	if !old.DeletedAt.IsZero() {
		return old, nil
	}
	return s.updateMessage(ctx, p, old.Pos, func(ctx context.Context) (chat.Message, error) {
		return s.store.DeleteMessage(ctx, conv, id, s.now())
	})
}

// React adds (on) or removes the caller's emoji on a message.
// Errors: not_found, invalid_argument (not one emoji), conflict (deleted).
func (s *Service) React(ctx context.Context, p Principal, conv chat.ConversationID, id chat.MessageID, emoji string, on bool) (chat.Message, error) {
	if !IsEmoji(emoji) {
		return chat.Message{}, chat.Errorf(chat.CodeInvalidArgument, "a reaction is one emoji (at most %d bytes)", maxEmojiBytes)
	}
	_, old, err := s.message(ctx, p, conv, id)
	if err != nil {
		return chat.Message{}, err
	}
	return s.updateMessage(ctx, p, old.Pos, func(ctx context.Context) (chat.Message, error) {
		return s.store.SetReaction(ctx, conv, id, p.User, emoji, on)
	})
}

// updateMessage runs change on the appender and announces the new state
// when its position moved from before (a change that changed nothing
// keeps the position and is not announced).
func (s *Service) updateMessage(ctx context.Context, p Principal, before int64, change func(ctx context.Context) (chat.Message, error)) (chat.Message, error) {
	var m chat.Message
	err := s.write(ctx, func(ctx context.Context) error {
		var err error
		m, err = change(ctx)
		if err != nil {
			return err
		}
		s.releaseAttachments(ctx, m) // a deletion's
		s.fillAttachments(ctx, &m)
		if m.Pos != before {
			s.publish(ctx, chat.Event{Kind: chat.EventMessageUpdated, Conv: m.Conv, Message: &m, Pos: m.Pos, Origin: p.Conn})
		}
		return nil
	})
	if chat.IsCode(err, chat.CodeConflict) {
		return chat.Message{}, chat.Errorf(chat.CodeConflict, "the message was deleted")
	}
	return m, err
}

// Rename sets a group's title. Owners and admins may.
// Errors: not_found, forbidden, invalid_argument.
func (s *Service) Rename(ctx context.Context, p Principal, conv chat.ConversationID, title string) (chat.ConversationSummary, error) {
	if err := s.validTitle(title); err != nil {
		return chat.ConversationSummary{}, err
	}
	me, err := s.member(ctx, conv, p.User)
	if err != nil {
		return chat.ConversationSummary{}, err
	}
	c, err := s.store.GetConversation(ctx, conv)
	if err != nil {
		return chat.ConversationSummary{}, err
	}
	if c.Kind != chat.KindGroup {
		return chat.ConversationSummary{}, chat.Errorf(chat.CodeInvalidArgument, "only groups have a title")
	}
	if !me.Role.CanManage() {
		return chat.ConversationSummary{}, chat.Errorf(chat.CodeForbidden, "only owners and admins rename a group")
	}
	err = s.write(ctx, func(ctx context.Context) error {
		before, err := s.store.GetConversation(ctx, conv)
		if err != nil {
			return err
		}
		c, err := s.store.UpdateTitle(ctx, conv, title)
		if err != nil || c.Pos == before.Pos {
			return err // a rename to the same title changes nothing and is not announced
		}
		s.publish(ctx, chat.Event{Kind: chat.EventConversationUpdated, Conv: conv, Conversation: &c, Pos: c.Pos})
		return nil
	})
	if err != nil {
		return chat.ConversationSummary{}, err
	}
	return s.GetConversation(ctx, p, conv)
}

// Typing announces that the caller started or stopped typing in conv.
// Nothing is stored; starts are throttled per user and conversation (see
// Options.TypingInterval) so that a chatty client cannot flood the others.
// Errors: not_found.
func (s *Service) Typing(ctx context.Context, p Principal, conv chat.ConversationID, typing bool) error {
	if err := s.members.check(ctx, conv, p.User); err != nil {
		return err
	}
	if !s.typing.allow(conv, p.User, typing, s.opts.Now()) {
		return nil // a start repeated within the interval: the others already know
	}
	s.publish(ctx, chat.Event{Kind: chat.EventTyping, Conv: conv, Users: []chat.UserID{p.User}, Typing: typing, Origin: p.Conn})
	return nil
}

const (
	maxEmojiBytes = 32
	maxMentions   = 20
)

// IsEmoji reports whether s is one emoji: emoji code points, optionally
// joined by zero-width joiners and modified by variation selectors, skin
// tones, keycaps or tags, at most maxEmojiBytes bytes.
func IsEmoji(s string) bool {
	if s == "" || len(s) > maxEmojiBytes || !utf8.ValidString(s) {
		return false
	}
	pictographs := 0
	for _, r := range s {
		switch {
		case r == 0x200D, r == 0xFE0F, r == 0xFE0E, r == 0x20E3, // ZWJ, variation selectors, keycap
			r >= 0x1F3FB && r <= 0x1F3FF, // skin tones
			r >= 0xE0020 && r <= 0xE007F: // tags (subdivision flags)
		case r >= 0x1F000 && r <= 0x1FAFF, r >= 0x2600 && r <= 0x27BF, r >= 0x2B00 && r <= 0x2BFF,
			r >= 0x2190 && r <= 0x21FF, r >= 0x2300 && r <= 0x23FF, r >= 0x2900 && r <= 0x297F,
			r == 0x00A9, r == 0x00AE, r == 0x203C, r == 0x2049, r == 0x2122, r == 0x2139, r == 0x3030, r == 0x303D, r == 0x3297, r == 0x3299:
			pictographs++
		case (r >= '0' && r <= '9') || r == '#' || r == '*': // keycap bases
			if !strings.ContainsRune(s, 0x20E3) {
				return false
			}
			pictographs++
		default:
			return false
		}
	}
	return pictographs > 0
}

var mentionPattern = regexp.MustCompile(`(?:^|[^\w@])@([a-zA-Z0-9][a-zA-Z0-9_.-]{2,31})`)

// mentions resolves the @usernames in text to the members of conv they
// name; names of non-members and unknown users are ignored.
func (s *Service) mentions(ctx context.Context, conv chat.ConversationID, text string) ([]chat.UserID, error) {
	var out []chat.UserID
	seen := make(map[string]bool)
	for _, m := range mentionPattern.FindAllStringSubmatch(text, -1) {
		// "@bob." ends a sentence; "@bob_" may be a username: try both.
		name := strings.ToLower(m[1])
		if seen[name] || len(seen) >= maxMentions {
			continue
		}
		seen[name] = true
		u, _, err := s.store.GetUserByUsername(ctx, name)
		if trimmed := strings.TrimRightFunc(name, unicode.IsPunct); chat.IsCode(err, chat.CodeNotFound) && trimmed != name && len(trimmed) >= 3 && !seen[trimmed] {
			seen[trimmed] = true
			u, _, err = s.store.GetUserByUsername(ctx, trimmed)
		}
		if chat.IsCode(err, chat.CodeNotFound) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if err := s.members.check(ctx, conv, u.ID); err == nil {
			out = append(out, u.ID)
		} else if !chat.IsCode(err, chat.CodeNotFound) {
			return nil, err
		}
	}
	return out, nil
}

// GetMessage returns one message of a conversation the caller is in.
// Errors: not_found.
func (s *Service) GetMessage(ctx context.Context, p Principal, conv chat.ConversationID, id chat.MessageID) (chat.Message, error) {
	_, m, err := s.message(ctx, p, conv, id)
	if err == nil {
		s.fillAttachments(ctx, &m)
	}
	return m, err
}

// Receipts says which members (the sender excluded) have read a message
// and to whose devices it was delivered, from their watermarks.
// Errors: not_found.
func (s *Service) Receipts(ctx context.Context, p Principal, conv chat.ConversationID, id chat.MessageID) (read, delivered []chat.UserID, err error) {
	_, m, err := s.message(ctx, p, conv, id)
	if err != nil {
		return nil, nil, err
	}
	members, err := s.store.ListMembers(ctx, conv)
	if err != nil {
		return nil, nil, err
	}
	read, delivered = []chat.UserID{}, []chat.UserID{}
	for _, mb := range members {
		if mb.User == m.Sender {
			continue
		}
		if mb.ReadSeq >= m.Seq {
			read = append(read, mb.User)
		}
		if mb.DeliveredSeq >= m.Seq {
			delivered = append(delivered, mb.User)
		}
	}
	return read, delivered, nil
}
