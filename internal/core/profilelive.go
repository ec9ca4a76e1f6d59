package core

import (
	"context"

	"github.com/natter-chat/natter/internal/chat"
)

// changeProfile stores change and, once stored, publishes the new profile
// (EventProfile) so that the users who share a conversation with user
// see it live. An avatar in change is checked (see ownAvatar) in the same
// step. Like avatar uploads and deletions, it runs on the appender
// goroutine (see write): on one node, profile changes commit and their
// frames leave one at a time, in the same order, so the last frame a
// client gets carries the stored profile.
func (s *Service) changeProfile(ctx context.Context, user chat.UserID, change chat.ProfileChange) (chat.Profile, error) {
	var prof chat.Profile
	err := s.write(ctx, func(ctx context.Context) error {
		if change.Avatar != nil {
			if err := s.ownAvatar(ctx, user, *change.Avatar); err != nil {
				return err
			}
		}
		var err error
		if prof, err = s.people.UpdateProfile(ctx, user, change, s.now()); err != nil {
			return err
		}
		s.publishProfile(ctx, prof)
		return nil
	})
	if err != nil {
		return chat.Profile{}, err
	}
	return prof, nil
}

// publishProfile announces prof, just stored (EventProfile).
func (s *Service) publishProfile(ctx context.Context, prof chat.Profile) {
	s.publish(ctx, chat.Event{Kind: chat.EventProfile, Users: []chat.UserID{prof.User}, Profile: &prof})
}

// ownAvatar checks that id ("" clears the avatar) is the id of the
// avatar user uploaded last (see UploadAvatar): attachments made for
// conversations are not accepted, since the sweep removes those that no
// message carries. Anything else is not_found, whether or not such an
// avatar exists, so that nobody learns of others' files.
func (s *Service) ownAvatar(ctx context.Context, user chat.UserID, id string) error {
	if id == "" {
		return nil
	}
	errNone := chat.Errorf(chat.CodeNotFound, "avatar must be the id of the avatar you uploaded (POST /v1/users/me/avatar)")
	if s.avatars == nil {
		return errNone
	}
	a, err := s.avatars.GetAvatar(ctx, user)
	if chat.IsCode(err, chat.CodeNotFound) || err == nil && a.ID != id {
		return errNone
	}
	return err
}
