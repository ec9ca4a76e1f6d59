package core

import (
	"context"

	"github.com/natter-chat/natter/internal/chat"
)

// changeSetting runs store, which stores one of user's own settings and
// reports whether it changed anything, and then, if it did, publishes the
// new value (EventSettings) so that every device of user shows it at
// once. Like profile changes, it runs on the appender goroutine (see
// write): on one node, changes commit and their frames leave in the same
// order, so when two devices change the same setting at once through one
// node, the last frame each device gets carries the value stored last.
// (Through two nodes the frames may cross; a device then shows the other
// value until it reads the setting again.)
//
// Settings take no change position: they are not in the sync stream. A
// device that missed the frame (offline, or a bus loss) reads them over
// REST when it loads and after it reconnects.
func (s *Service) changeSetting(ctx context.Context, user chat.UserID, change chat.SettingChange, store func(ctx context.Context) (bool, error)) error {
	return s.write(ctx, func(ctx context.Context) error {
		changed, err := store(ctx)
		if err != nil || !changed {
			return err
		}
		s.publish(ctx, chat.Event{Kind: chat.EventSettings, Users: []chat.UserID{user}, Setting: &change})
		return nil
	})
}
