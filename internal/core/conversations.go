package core

import (
	"context"
	"slices"
	"unicode/utf8"

	"github.com/natter-chat/natter/internal/chat"
)

// member returns the caller's membership of conv. Not being a member and
// the conversation not existing are the same not_found, by design.
func (s *Service) member(ctx context.Context, conv chat.ConversationID, user chat.UserID) (chat.Member, error) {
	m, err := s.store.GetMember(ctx, conv, user)
	if chat.IsCode(err, chat.CodeNotFound) {
		return chat.Member{}, errNoConversation()
	}
	return m, err
}

func errNoConversation() error {
	return chat.Errorf(chat.CodeNotFound, "no such conversation")
}

// CreateConversation creates a direct or group conversation with the
// caller as owner. A direct conversation has exactly one other member;
// creating one that exists returns it with created == false.
// Errors: invalid_argument (kind, members, title), not_found (unknown user).
func (s *Service) CreateConversation(ctx context.Context, p Principal, kind chat.Kind, members []chat.UserID, title string) (chat.ConversationSummary, bool, error) {
	others := uniqueOthers(members, p.User)
	switch kind {
	case chat.KindDirect:
		if len(others) != 1 {
			return chat.ConversationSummary{}, false, chat.Errorf(chat.CodeInvalidArgument, "a direct conversation has exactly one other member")
		}
		if title != "" {
			return chat.ConversationSummary{}, false, chat.Errorf(chat.CodeInvalidArgument, "a direct conversation has no title")
		}
	case chat.KindGroup:
		if len(others)+1 > s.opts.MaxGroupMembers {
			return chat.ConversationSummary{}, false, chat.Errorf(chat.CodeTooLarge, "a group has at most %d members", s.opts.MaxGroupMembers)
		}
		if err := s.validTitle(title); err != nil {
			return chat.ConversationSummary{}, false, err
		}
	default:
		return chat.ConversationSummary{}, false, chat.Errorf(chat.CodeInvalidArgument, `kind must be "direct" or "group"`)
	}
	if err := s.usersExist(ctx, others); err != nil {
		return chat.ConversationSummary{}, false, err
	}
	if kind == chat.KindDirect {
		if err := s.checkNotBlocked(ctx, others[0], p.User); err != nil {
			return chat.ConversationSummary{}, false, err
		}
	}
	now := s.now()
	c := chat.Conversation{ID: chat.ConversationID(s.ids.NextID()), Kind: kind, Title: title, CreatedBy: p.User, CreatedAt: now}
	ms := make([]chat.Member, 0, len(others)+1)
	ms = append(ms, chat.Member{Conv: c.ID, User: p.User, Role: chat.RoleOwner, JoinedAt: now})
	otherRole := chat.RoleMember
	if kind == chat.KindDirect {
		otherRole = chat.RoleOwner
	}
	for _, u := range others {
		ms = append(ms, chat.Member{Conv: c.ID, User: u, Role: otherRole, JoinedAt: now})
	}
	var stored chat.Conversation
	var created bool
	err := s.write(ctx, func(ctx context.Context) (err error) {
		stored, created, err = s.store.CreateConversation(ctx, c, ms)
		if err != nil || !created {
			return err
		}
		users := make([]chat.UserID, len(ms))
		for i, m := range ms {
			users[i] = m.User
		}
		s.publish(ctx, chat.Event{Kind: chat.EventMembersAdded, Conv: stored.ID, Conversation: &stored, Users: users, Pos: stored.Pos})
		return nil
	})
	if err != nil {
		return chat.ConversationSummary{}, false, err
	}
	sum, err := s.GetConversation(ctx, p, stored.ID)
	return sum, created, err
}

func (s *Service) validTitle(title string) error {
	if len(title) > s.opts.MaxTitleLen || !utf8.ValidString(title) {
		return chat.Errorf(chat.CodeInvalidArgument, "title must be valid UTF-8 of at most %d bytes", s.opts.MaxTitleLen)
	}
	return nil
}

func uniqueOthers(users []chat.UserID, self chat.UserID) []chat.UserID {
	out := make([]chat.UserID, 0, len(users))
	for _, u := range users {
		if u != self && !slices.Contains(out, u) {
			out = append(out, u)
		}
	}
	return out
}

// usersExist fails with not_found unless every id is a live account
// (deleted ones are gone).
func (s *Service) usersExist(ctx context.Context, ids []chat.UserID) error {
	return s.liveUsers(ctx, ids)
}

// GetConversation returns a conversation the caller is a member of.
// Errors: not_found.
func (s *Service) GetConversation(ctx context.Context, p Principal, id chat.ConversationID) (chat.ConversationSummary, error) {
	if _, err := s.member(ctx, id, p.User); err != nil {
		return chat.ConversationSummary{}, err
	}
	list, err := s.store.ListConversations(ctx, p.User)
	if err != nil {
		return chat.ConversationSummary{}, err
	}
	for _, c := range list {
		if c.ID == id {
			if c.LastMessage != nil {
				s.fillAttachments(ctx, c.LastMessage)
			}
			return c, nil
		}
	}
	return chat.ConversationSummary{}, errNoConversation()
}

// ListConversations returns the caller's conversations, most recent
// activity first, with last message and unread count.
func (s *Service) ListConversations(ctx context.Context, p Principal) ([]chat.ConversationSummary, error) {
	list, err := s.store.ListConversations(ctx, p.User)
	if err != nil {
		return nil, err
	}
	last := make([]*chat.Message, 0, len(list))
	for _, c := range list {
		if c.LastMessage != nil {
			last = append(last, c.LastMessage)
		}
	}
	s.fillAttachments(ctx, last...)
	return list, nil
}

// Usernames maps the given users to their usernames (unknown ones absent).
func (s *Service) Usernames(ctx context.Context, ids []chat.UserID) (map[chat.UserID]string, error) {
	users, err := s.store.ListUsers(ctx, ids)
	if err != nil {
		return nil, err
	}
	names := make(map[chat.UserID]string, len(users))
	for _, u := range users {
		names[u.ID] = u.Username
	}
	return names, nil
}

// AddMembers adds users to a group. Only owners and admins may.
// Errors: not_found, forbidden, invalid_argument (direct), too_large.
func (s *Service) AddMembers(ctx context.Context, p Principal, conv chat.ConversationID, users []chat.UserID) (chat.ConversationSummary, error) {
	me, err := s.member(ctx, conv, p.User)
	if err != nil {
		return chat.ConversationSummary{}, err
	}
	c, err := s.store.GetConversation(ctx, conv)
	if err != nil {
		return chat.ConversationSummary{}, err
	}
	if c.Kind != chat.KindGroup {
		return chat.ConversationSummary{}, chat.Errorf(chat.CodeInvalidArgument, "members can be added to groups only")
	}
	if !me.Role.CanManage() {
		return chat.ConversationSummary{}, chat.Errorf(chat.CodeForbidden, "only owners and admins add members")
	}
	others := uniqueOthers(users, p.User)
	if len(others) == 0 {
		return chat.ConversationSummary{}, chat.Errorf(chat.CodeInvalidArgument, "members must name at least one other user")
	}
	current, err := s.store.ListMembers(ctx, conv)
	if err != nil {
		return chat.ConversationSummary{}, err
	}
	if len(current)+len(others) > s.opts.MaxGroupMembers {
		return chat.ConversationSummary{}, chat.Errorf(chat.CodeTooLarge, "a group has at most %d members", s.opts.MaxGroupMembers)
	}
	if err := s.usersExist(ctx, others); err != nil {
		return chat.ConversationSummary{}, err
	}
	now := s.now()
	ms := make([]chat.Member, len(others))
	for i, u := range others {
		ms[i] = chat.Member{Conv: conv, User: u, Role: chat.RoleMember, JoinedAt: now}
	}
	err = s.write(ctx, func(ctx context.Context) error {
		added, err := s.store.AddMembers(ctx, conv, ms)
		if err != nil || len(added) == 0 {
			return err
		}
		ids := make([]chat.UserID, len(added))
		for i, m := range added {
			ids[i] = m.User
		}
		s.publish(ctx, chat.Event{Kind: chat.EventMembersAdded, Conv: conv, Conversation: &c, Users: ids, Pos: added[len(added)-1].Pos})
		return nil
	})
	if err != nil {
		return chat.ConversationSummary{}, err
	}
	return s.GetConversation(ctx, p, conv)
}

// RemoveMember removes user from a group. Anyone may remove themselves
// (leave); owners and admins may remove members, and only owners may
// remove admins or owners. The removed user stops receiving the
// conversation's events at once.
// Errors: not_found, forbidden, invalid_argument (direct conversations).
func (s *Service) RemoveMember(ctx context.Context, p Principal, conv chat.ConversationID, user chat.UserID) error {
	me, err := s.member(ctx, conv, p.User)
	if err != nil {
		return err
	}
	c, err := s.store.GetConversation(ctx, conv)
	if err != nil {
		return err
	}
	if c.Kind != chat.KindGroup {
		return chat.Errorf(chat.CodeInvalidArgument, "nobody can leave a direct conversation")
	}
	if user != p.User {
		target, err := s.store.GetMember(ctx, conv, user)
		if chat.IsCode(err, chat.CodeNotFound) {
			return chat.Errorf(chat.CodeNotFound, "no such member")
		}
		if err != nil {
			return err
		}
		if !me.Role.CanManage() || (target.Role != chat.RoleMember && me.Role != chat.RoleOwner) {
			return chat.Errorf(chat.CodeForbidden, "you may not remove this member")
		}
	}
	return s.write(ctx, func(ctx context.Context) error {
		promoted, err := s.store.RemoveMember(ctx, conv, user)
		if err != nil {
			return err
		}
		s.members.forget(conv, []chat.UserID{user})
		s.publish(ctx, chat.Event{Kind: chat.EventMemberRemoved, Conv: conv, Users: []chat.UserID{user}})
		for _, m := range promoted {
			s.publish(ctx, chat.Event{Kind: chat.EventRoleChanged, Conv: conv, Member: &m, Pos: m.Pos})
		}
		return nil
	})
}

// SetRole changes a member's role in a group. Only owners may; a group
// keeps at least one owner.
// Errors: not_found, forbidden, invalid_argument, conflict (last owner).
func (s *Service) SetRole(ctx context.Context, p Principal, conv chat.ConversationID, user chat.UserID, role chat.Role) (chat.ConversationSummary, error) {
	switch role {
	case chat.RoleOwner, chat.RoleAdmin, chat.RoleMember:
	default:
		return chat.ConversationSummary{}, chat.Errorf(chat.CodeInvalidArgument, `role must be "owner", "admin" or "member"`)
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
		return chat.ConversationSummary{}, chat.Errorf(chat.CodeInvalidArgument, "roles exist in groups only")
	}
	if me.Role != chat.RoleOwner {
		return chat.ConversationSummary{}, chat.Errorf(chat.CodeForbidden, "only owners change roles")
	}
	err = s.write(ctx, func(ctx context.Context) error {
		before, err := s.store.GetMember(ctx, conv, user)
		if chat.IsCode(err, chat.CodeNotFound) {
			return chat.Errorf(chat.CodeNotFound, "no such member")
		}
		if err != nil {
			return err
		}
		m, err := s.store.UpdateMemberRole(ctx, conv, user, role)
		if err != nil || m.Pos == before.Pos {
			return err // the same role again changes nothing and is not announced
		}
		s.publish(ctx, chat.Event{Kind: chat.EventRoleChanged, Conv: conv, Member: &m, Pos: m.Pos})
		return nil
	})
	if err != nil {
		return chat.ConversationSummary{}, err
	}
	return s.GetConversation(ctx, p, conv)
}

// MarkRead raises the caller's read watermark (and the delivered one with
// it: what was read was delivered) and tells the caller's other devices
// and the other members. Errors: not_found, invalid_argument.
func (s *Service) MarkRead(ctx context.Context, p Principal, conv chat.ConversationID, seq int64) (chat.Member, error) {
	return s.moveReceipt(ctx, p, conv, seq, true)
}

// MarkDelivered raises the caller's delivered watermark: the messages up
// to seq reached one of the caller's devices. Errors: not_found,
// invalid_argument.
func (s *Service) MarkDelivered(ctx context.Context, p Principal, conv chat.ConversationID, seq int64) (chat.Member, error) {
	return s.moveReceipt(ctx, p, conv, seq, false)
}

func (s *Service) moveReceipt(ctx context.Context, p Principal, conv chat.ConversationID, seq int64, read bool) (chat.Member, error) {
	if seq < 0 {
		return chat.Member{}, chat.Errorf(chat.CodeInvalidArgument, "seq must not be negative")
	}
	if err := s.members.check(ctx, conv, p.User); err != nil {
		return chat.Member{}, err
	}
	var m chat.Member
	err := s.write(ctx, func(ctx context.Context) (err error) {
		before, err := s.store.GetMember(ctx, conv, p.User)
		if err != nil {
			return err
		}
		m, err = s.store.UpdateDeliveredSeq(ctx, conv, p.User, seq)
		if err == nil && read {
			m, err = s.store.UpdateReadSeq(ctx, conv, p.User, seq)
		}
		if err != nil {
			return err
		}
		if m.ReadSeq != before.ReadSeq || m.DeliveredSeq != before.DeliveredSeq {
			s.publish(ctx, chat.Event{Kind: chat.EventReceipt, Conv: conv, Member: &m, Pos: m.Pos, Origin: p.Conn})
		}
		return nil
	})
	if chat.IsCode(err, chat.CodeNotFound) {
		return chat.Member{}, errNoConversation()
	}
	return m, err
}

// MaxHistoryLimit bounds one page of history (the default page is 50).
const MaxHistoryLimit = 500

// History returns a page of a conversation's messages (see
// chat.MessageQuery) and whether more exist in that direction.
// Errors: not_found, invalid_argument.
func (s *Service) History(ctx context.Context, p Principal, q chat.MessageQuery) ([]chat.Message, bool, error) {
	if q.Before < 0 || q.After < 0 || (q.Before > 0 && q.After > 0) {
		return nil, false, chat.Errorf(chat.CodeInvalidArgument, "give at most one of before and after, as non-negative seqs")
	}
	if q.Limit <= 0 {
		q.Limit = 50
	}
	if q.Limit > MaxHistoryLimit {
		return nil, false, chat.Errorf(chat.CodeInvalidArgument, "limit must be at most %d", MaxHistoryLimit)
	}
	if _, err := s.member(ctx, q.Conv, p.User); err != nil {
		return nil, false, err
	}
	want := q.Limit
	q.Limit++ // one more tells whether there is another page
	msgs, err := s.store.ListMessages(ctx, q)
	if err != nil {
		return nil, false, err
	}
	s.fillMessages(ctx, msgs)
	if len(msgs) > want {
		return msgs[:want], true, nil
	}
	return msgs, false, nil
}

// ConversationIDs lists the conversations a user belongs to (for the hub).
func (s *Service) ConversationIDs(ctx context.Context, user chat.UserID) ([]chat.ConversationID, error) {
	return s.store.ListConversationIDs(ctx, user)
}
