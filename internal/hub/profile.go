package hub

import (
	"context"
	"time"

	"github.com/natter-chat/natter/internal/chat"
	"github.com/natter-chat/natter/internal/protocol"
)

// handleProfile tells the local users who share a conversation with the
// user whose profile changed, and that user's own local devices, about
// the change. Like presence, it loads the user's conversations (profile
// changes are rare); a failed load is logged and the frame dropped:
// clients read profiles again when they reconnect.
func (h *Hub) handleProfile(e chat.Event) {
	if e.Profile == nil || len(e.Users) != 1 {
		return
	}
	user := e.Users[0]
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	convs, err := h.load(ctx, user)
	if err != nil {
		h.log.Warn("profile: cannot list conversations", "user", user, "err", err)
		return
	}
	frame := protocol.Encode(protocol.FromProfileChange(*e.Profile))
	h.mu.RLock()
	defer h.mu.RUnlock()
	told := map[chat.UserID]bool{user: true}
	h.toUsersLocked([]chat.UserID{user}, frame)
	for _, conv := range convs {
		for u := range h.convs[conv] {
			if told[u] {
				continue
			}
			told[u] = true
			h.toUsersLocked([]chat.UserID{u}, frame)
		}
	}
}
