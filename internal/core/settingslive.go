package core

import (
	"context"

	"github.com/natter-chat/natter/internal/chat"
)

// changeSetting runs store, which stores one of user's own settings and
// reports whether it changed anything, and then, if it did, publishes the
// new value (EventSettings) so that every device of user shows it at
// once. Store and publish run under a lock of the user's (settingLocks):
// on one node, one user's changes commit and their frames leave in the
// same order, so when two devices change the same setting at once through
// one node, the last frame each device gets carries the value stored
// last. (Through two nodes the frames may cross; a device then shows the
// other value until it reads the setting again.) Not on the appender:
// settings take no change position, and a setting's store call (which may
// wait for a row lock) must not hold up every send of the node.
//
// Settings are not in the sync stream. A device that missed the frame
// (offline, or a bus loss) reads them over REST when it loads and after
// it reconnects.
func (s *Service) changeSetting(ctx context.Context, user chat.UserID, change chat.SettingChange, store func(ctx context.Context) (bool, error)) error {
	mu := &s.settingLocks[uint64(user)%uint64(len(s.settingLocks))]
	mu.Lock()
	defer mu.Unlock()
	changed, err := store(ctx)
	if err != nil || !changed {
		return err
	}
	// Stored: publish announces it even if the client has gone meanwhile.
	s.publish(ctx, chat.Event{Kind: chat.EventSettings, Users: []chat.UserID{user}, Setting: &change})
	if change.What == chat.SettingBlock {
		// For nodes of the previous release (see chat.EventBlocksChanged).
		s.publish(ctx, chat.Event{Kind: chat.EventBlocksChanged, Users: []chat.UserID{user, change.User}})
	}
	return nil
}
