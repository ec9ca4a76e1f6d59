package core

import (
	"context"
	"crypto/rand"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/natter-chat/natter/internal/chat"
)

// Limits of profiles, contacts and blocks.
const (
	MaxDisplayName = 64   // characters of a display name
	MaxStatusText  = 140  // characters of a status text
	MaxAvatarID    = 64   // bytes of an avatar (attachment) id
	MaxRelations   = 1000 // contacts, and separately blocks, per user
	MaxSearchQuery = 64   // characters of a user search
)

// Profile returns a user's profile; a deleted account is returned with
// DeletedAt set and nothing else. Every authenticated user may read
// profiles, as in a directory. Errors: not_found.
func (s *Service) Profile(ctx context.Context, p Principal, id chat.UserID) (chat.Profile, error) {
	return s.people.GetProfile(ctx, id)
}

// ProfileUpdate is a change to the caller's own profile; nil fields stay.
type ProfileUpdate struct {
	DisplayName *string // trimmed; "" clears it, else 1 to MaxDisplayName characters without control characters
	StatusText  *string // trimmed; 0 to MaxStatusText characters without control characters
	Avatar      *string // the id of the caller's avatar (see UploadAvatar), "" for none
}

// UpdateProfile changes the caller's profile and returns it. Once it is
// stored, the users who share a conversation with the caller, and the
// caller's devices, get a profile frame. An avatar must be the id of one
// of the caller's stored avatars (see UploadAvatar). Errors:
// invalid_argument, not_found (an avatar that is not the caller's).
func (s *Service) UpdateProfile(ctx context.Context, p Principal, u ProfileUpdate) (chat.Profile, error) {
	var change chat.ProfileChange
	if u.DisplayName != nil {
		name := strings.TrimSpace(*u.DisplayName)
		if err := validProfileText("display_name", name, MaxDisplayName); err != nil {
			return chat.Profile{}, err
		}
		change.DisplayName = &name
	}
	if u.StatusText != nil {
		status := strings.TrimSpace(*u.StatusText)
		if err := validProfileText("status_text", status, MaxStatusText); err != nil {
			return chat.Profile{}, err
		}
		change.StatusText = &status
	}
	if u.Avatar != nil {
		if err := validAvatar(*u.Avatar); err != nil {
			return chat.Profile{}, err
		}
		change.Avatar = u.Avatar // checked by changeProfile
	}
	if change == (chat.ProfileChange{}) {
		return chat.Profile{}, chat.Errorf(chat.CodeInvalidArgument, "give at least one of display_name, status_text and avatar")
	}
	return s.changeProfile(ctx, p.User, change)
}

func validProfileText(field, s string, maxChars int) error {
	if !utf8.ValidString(s) || utf8.RuneCountInString(s) > maxChars {
		return chat.Errorf(chat.CodeInvalidArgument, "%s must be valid UTF-8 of at most %d characters", field, maxChars)
	}
	for _, r := range s {
		if unicode.IsControl(r) || r == '\u2028' || r == '\u2029' {
			return chat.Errorf(chat.CodeInvalidArgument, "%s must not contain control characters or line breaks", field)
		}
	}
	return nil
}

// validAvatar checks an avatar id's form only: attachments are stored
// elsewhere, and the id is opaque here.
func validAvatar(id string) error {
	if len(id) > MaxAvatarID {
		return chat.Errorf(chat.CodeInvalidArgument, "avatar must be an attachment id of at most %d bytes", MaxAvatarID)
	}
	for i := 0; i < len(id); i++ {
		c := id[i]
		if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
			return chat.Errorf(chat.CodeInvalidArgument, "avatar must be an attachment id: letters, digits, '-' and '_'")
		}
	}
	return nil
}

// SearchUsers finds live accounts whose username or display name starts
// with prefix (case-insensitive, accents of Latin letters ignored), a page
// at a time, in username order after the username after. Every
// authenticated user may search, as in a directory. Errors:
// invalid_argument.
func (s *Service) SearchUsers(ctx context.Context, p Principal, prefix, after string, limit int) ([]chat.Profile, error) {
	prefix = chat.FoldName(strings.TrimPrefix(strings.TrimSpace(prefix), "@"))
	if prefix == "" || utf8.RuneCountInString(prefix) > MaxSearchQuery || !utf8.ValidString(prefix) {
		return nil, chat.Errorf(chat.CodeInvalidArgument, "q must be 1 to %d characters of a username or display name", MaxSearchQuery)
	}
	if limit < 0 || limit > MaxUserSearch {
		return nil, chat.Errorf(chat.CodeInvalidArgument, "limit must be between 1 and %d", MaxUserSearch)
	}
	if limit == 0 {
		limit = 20
	}
	return s.people.SearchProfiles(ctx, prefix, strings.ToLower(after), limit)
}

// Contacts returns the caller's contacts, oldest first.
func (s *Service) Contacts(ctx context.Context, p Principal) ([]chat.Related, error) {
	return s.people.ListRelations(ctx, p.User, chat.RelationContact, MaxRelations)
}

// Blocks returns the users the caller blocked, oldest first.
func (s *Service) Blocks(ctx context.Context, p Principal) ([]chat.Related, error) {
	return s.people.ListRelations(ctx, p.User, chat.RelationBlock, MaxRelations)
}

// SetContact adds (on) or removes a user from the caller's contacts.
// Doing either twice is not an error. A change (not a repeat) reaches
// every device of the caller as a settings frame; the other user is not
// told. Errors: invalid_argument (self), not_found (unknown or deleted
// user), too_large (MaxRelations).
func (s *Service) SetContact(ctx context.Context, p Principal, other chat.UserID, on bool) error {
	return s.setRelation(ctx, p, other, chat.RelationContact, on)
}

// SetBlock blocks (on) or unblocks a user for the caller. A blocked user
// can no longer create a direct conversation with the caller nor send in
// an existing one (code blocked); in groups nothing changes (clients hide
// the blocked user's messages). A change reaches every device of the
// caller as a settings frame, never the blocked user. Every node forgets
// its cached block checks at once when the bus delivers that event, and
// within directCacheTTL in any case. Errors: as SetContact.
func (s *Service) SetBlock(ctx context.Context, p Principal, other chat.UserID, on bool) error {
	return s.setRelation(ctx, p, other, chat.RelationBlock, on)
}

// setRelation checks and stores a contact or block change, and announces
// it (see changeSetting) when it changed anything.
func (s *Service) setRelation(ctx context.Context, p Principal, other chat.UserID, rel chat.Relation, on bool) error {
	if err := s.checkRelation(ctx, p, other, rel, on); err != nil {
		return err
	}
	change := chat.SettingChange{What: chat.SettingContact, User: other, On: on}
	if rel == chat.RelationBlock {
		change.What = chat.SettingBlock
	}
	return s.changeSetting(ctx, p.User, change, func(ctx context.Context) (bool, error) {
		changed, err := s.people.SetRelation(ctx, p.User, other, rel, on, s.now())
		if changed && rel == chat.RelationBlock {
			// This node's sends check the new state at once.
			s.directs.invalidate()
		}
		return changed, err
	})
}

// checkRelation refuses marking oneself and a mark beyond MaxRelations (a
// repeated mark of someone already marked is fine).
func (s *Service) checkRelation(ctx context.Context, p Principal, other chat.UserID, rel chat.Relation, on bool) error {
	if other == p.User && on {
		return chat.Errorf(chat.CodeInvalidArgument, "you cannot %s yourself", map[chat.Relation]string{chat.RelationContact: "add", chat.RelationBlock: "block"}[rel])
	}
	if !on {
		return nil
	}
	n, err := s.people.CountRelations(ctx, p.User, rel)
	if err != nil || n < MaxRelations {
		return err
	}
	if marked, err := s.isMarked(ctx, p.User, other, rel); err != nil || marked {
		return err
	}
	return chat.Errorf(chat.CodeTooLarge, "at most %d %ss", MaxRelations, rel)
}

func (s *Service) isMarked(ctx context.Context, owner, other chat.UserID, rel chat.Relation) (bool, error) {
	if rel == chat.RelationBlock {
		return s.people.Blocked(ctx, owner, other)
	}
	list, err := s.people.ListRelations(ctx, owner, rel, MaxRelations)
	if err != nil {
		return false, err
	}
	for _, r := range list {
		if r.Profile.User == other {
			return true, nil
		}
	}
	return false, nil
}

// checkNotBlocked fails with blocked when peer has blocked user.
func (s *Service) checkNotBlocked(ctx context.Context, peer, user chat.UserID) error {
	blocked, err := s.people.Blocked(ctx, peer, user)
	if err != nil {
		return err
	}
	if blocked {
		return errBlocked()
	}
	return nil
}

func errBlocked() error {
	return chat.Errorf(chat.CodeBlocked, "this user has blocked you")
}

// liveUsers checks that every id is an account that exists and was not
// deleted: not_found otherwise.
func (s *Service) liveUsers(ctx context.Context, ids []chat.UserID) error {
	if len(ids) == 0 {
		return nil
	}
	found, err := s.people.ListProfiles(ctx, ids)
	if err != nil {
		return err
	}
	live := 0
	for _, p := range found {
		if !p.Deleted() {
			live++
		}
	}
	if live != len(ids) {
		return chat.Errorf(chat.CodeNotFound, "no such user")
	}
	return nil
}

// tombstoneBatch is how many messages account deletion erases per
// transaction, between which sends of other users go on.
const tombstoneBatch = 500

// DeleteAccount deletes the caller's account after checking password
// again: every session ends (connections close with 4003), the caller
// leaves every conversation (ownership of a group passes as when leaving),
// every message they sent becomes a tombstone, their avatar is deleted
// and their attachments are released for the sweep, the profile, contacts
// and blocks are erased (the devices of those who had marked the user
// get settings frames), the username is freed at once, and nobody can log in
// to the account again. The user id stays, as the sender of the
// tombstones; its profile reads as deleted.
//
// The steps run in turn: until the account itself is closed (the last
// but one step) a failure leaves it usable, so the user can log in and
// retry. Wrong passwords are throttled like logins (addr is the client's
// address). Errors: invalid_credentials, rate_limited.
func (s *Service) DeleteAccount(ctx context.Context, p Principal, password, addr string) error {
	u, err := s.store.GetUser(ctx, p.User)
	if err != nil {
		return err
	}
	if err := s.checkPassword(ctx, u.Username, password, addr); err != nil {
		return err
	}
	// Take the user off the air first, so that nothing new arrives while
	// their data is erased.
	if err := s.revokeAll(ctx, p.User); err != nil {
		return err
	}
	if err := s.eraseActivity(ctx, p.User); err != nil {
		return err
	}
	hash, err := s.hasher.Hash(ctx, rand.Text()) // no password will match it
	if err != nil {
		return err
	}
	done, err := s.people.DeleteAccount(ctx, p.User, hash, s.now())
	if err != nil {
		return err
	}
	// publish announces these even if the client has gone meanwhile.
	for _, id := range done.Revoked { // sessions started meanwhile
		s.publish(ctx, chat.Event{Kind: chat.EventSessionRevoked, Users: []chat.UserID{p.User}, Session: id})
	}
	s.announceUnmarked(ctx, p.User, done.Unmarked)
	s.log.Info("account deleted", "user", p.User)
	// Once more, for what a session started meanwhile may have done.
	return s.eraseActivity(ctx, p.User)
}

// announceUnmarked tells each user whose contact or block of the deleted
// account was removed, as if they had removed it themselves (see
// setRelation), so that their devices drop it from their lists without a
// reload. Each frame leaves under its owner's setting lock: a mark the
// owner stored through this node just before the deletion committed then
// has its frame out first, and this one, the last word, follows it.
func (s *Service) announceUnmarked(ctx context.Context, deleted chat.UserID, marks []chat.Mark) {
	for _, m := range marks {
		change := chat.SettingChange{What: chat.SettingContact, User: deleted}
		if m.Rel == chat.RelationBlock {
			change.What = chat.SettingBlock
		}
		mu := &s.settingLocks[uint64(m.Owner)%uint64(len(s.settingLocks))]
		mu.Lock()
		s.publish(ctx, chat.Event{Kind: chat.EventSettings, Users: []chat.UserID{m.Owner}, Setting: &change})
		mu.Unlock()
	}
}

func (s *Service) checkPassword(ctx context.Context, username, password, addr string) error {
	if wait := s.throttle.Check(username, addr); wait > 0 {
		return &RetryError{Err: chat.Errorf(chat.CodeRateLimited, "too many wrong passwords; retry later"), After: wait}
	}
	_, hash, err := s.store.GetUserByUsername(ctx, username)
	if err != nil {
		s.throttle.Fail(username, addr)
		return err
	}
	ok, err := s.hasher.Verify(ctx, hash, password)
	if err != nil || !ok {
		s.throttle.Fail(username, addr)
		if err != nil {
			return err
		}
		return chat.Errorf(chat.CodeInvalidCredentials, "wrong password")
	}
	s.throttle.Succeed(username, addr)
	return nil
}

// revokeAll ends every live session of user and closes their connections.
func (s *Service) revokeAll(ctx context.Context, user chat.UserID) error {
	sessions, err := s.store.ListSessions(ctx, user, s.now())
	if err != nil {
		return err
	}
	for _, sess := range sessions {
		if err := s.store.RevokeSession(ctx, user, sess.ID, s.now()); err != nil {
			return err
		}
		s.publish(ctx, chat.Event{Kind: chat.EventSessionRevoked, Users: []chat.UserID{user}, Session: sess.ID})
	}
	return nil
}

// eraseActivity removes user from every conversation and turns their
// messages into tombstones, announcing each change; then it erases their
// avatar and releases their attachments (see eraseFiles).
func (s *Service) eraseActivity(ctx context.Context, user chat.UserID) error {
	convs, err := s.store.ListConversationIDs(ctx, user)
	if err != nil {
		return err
	}
	for _, conv := range convs {
		err := s.write(ctx, func(ctx context.Context) error {
			promoted, err := s.store.RemoveMember(ctx, conv, user)
			if chat.IsCode(err, chat.CodeNotFound) {
				return nil // gone meanwhile
			}
			if err != nil {
				return err
			}
			s.members.forget(conv, []chat.UserID{user})
			s.directs.forget(conv)
			s.publish(ctx, chat.Event{Kind: chat.EventMemberRemoved, Conv: conv, Users: []chat.UserID{user}})
			for _, m := range promoted {
				s.publish(ctx, chat.Event{Kind: chat.EventRoleChanged, Conv: conv, Member: &m, Pos: m.Pos})
			}
			return nil
		})
		if err != nil {
			return err
		}
	}
	for {
		var n int
		err := s.write(ctx, func(ctx context.Context) error {
			msgs, err := s.people.TombstoneSent(ctx, user, s.now(), tombstoneBatch)
			for i := range msgs {
				m := &msgs[i]
				s.publish(ctx, chat.Event{Kind: chat.EventMessageUpdated, Conv: m.Conv, Message: m, Pos: m.Pos})
			}
			n = len(msgs)
			return err
		})
		if err != nil {
			return err
		}
		if n == 0 {
			return s.eraseFiles(ctx, user)
		}
	}
}

// observePeople drops cached block checks that an event from any node
// makes stale.
func (s *Service) observePeople(e chat.Event) {
	switch e.Kind {
	case chat.EventSettings:
		if e.Setting != nil && e.Setting.What == chat.SettingBlock {
			s.directs.invalidate()
		}
	case chat.EventBlocksChanged: // from a node of the previous release
		s.directs.invalidate()
	case chat.EventMemberRemoved:
		s.directs.forget(e.Conv)
	}
}
