package hub

import (
	"github.com/natter-chat/natter/internal/chat"
	"github.com/natter-chat/natter/internal/protocol"
)

// handleSettings tells the local connections of the user whose setting
// changed (all their devices on this node, the one that made the change
// included) the new value, and nobody else: a block or a contact is
// private to the user who made it.
func (h *Hub) handleSettings(e chat.Event) {
	if e.Setting == nil || len(e.Users) != 1 {
		return
	}
	frame, ok := protocol.FromSettingChange(*e.Setting)
	if !ok {
		h.log.Warn("settings: a change of a setting this node does not know; not told", "user", e.Users[0])
		return
	}
	b := protocol.Encode(frame)
	h.mu.RLock()
	defer h.mu.RUnlock()
	h.toUsersLocked(e.Users, b)
}
