package protocol

import "github.com/natter-chat/natter/internal/chat"

// TypeProfile is the frame a user's contacts get when the user's profile
// changes: {"type":"profile","user","display_name","status_text","avatar"}.
const TypeProfile = "profile"

// ProfileFrame tells that a user's profile changed; it carries the new
// values (display_name and avatar are null when not set).
type ProfileFrame struct {
	Type        string  `json:"type"`
	User        string  `json:"user"`
	DisplayName *string `json:"display_name"`
	StatusText  string  `json:"status_text"`
	Avatar      *string `json:"avatar"`
}

// FromProfileChange makes the profile frame for p.
func FromProfileChange(p chat.Profile) ProfileFrame {
	f := ProfileFrame{Type: TypeProfile, User: p.User.String(), StatusText: p.StatusText}
	if p.DisplayName != "" {
		f.DisplayName = &p.DisplayName
	}
	if p.Avatar != "" {
		f.Avatar = &p.Avatar
	}
	return f
}
