package protocol

import "github.com/natter-chat/natter/internal/chat"

// TypeSettings is the frame a user's own devices get when one of the
// user's settings changed on any of them: {"type":"settings","what":W,…}
// with the new value. "what" says which setting and which fields follow.
const TypeSettings = "settings"

// The settings a settings frame can be about (its "what"). Clients ignore
// a frame whose "what" they do not know: later versions may add some.
const (
	SettingNotificationLevel = string(chat.SettingNotifyLevel) // "conv", "level": the level in one conversation
	SettingContact           = string(chat.SettingContact)     // "user", "on": user is (true) or is no longer a contact
	SettingBlock             = string(chat.SettingBlock)       // "user", "on": user is (true) or is no longer blocked
	SettingPush              = string(chat.SettingPush)        // "hide_text": the push preferences
)

// The settings frames, one shape per "what"; every field is always present.
type (
	NotificationLevelFrame struct {
		Type  string `json:"type"`
		What  string `json:"what"`
		Conv  string `json:"conv"`
		Level string `json:"level"`
	}
	RelationFrame struct {
		Type string `json:"type"`
		What string `json:"what"`
		User string `json:"user"`
		On   bool   `json:"on"`
	}
	PushSettingsFrame struct {
		Type     string `json:"type"`
		What     string `json:"what"`
		HideText bool   `json:"hide_text"`
	}
)

// FromSettingChange makes the settings frame for c; ok is false for a
// setting this version cannot tell clients about.
func FromSettingChange(c chat.SettingChange) (frame any, ok bool) {
	switch c.What {
	case chat.SettingNotifyLevel:
		return NotificationLevelFrame{Type: TypeSettings, What: SettingNotificationLevel, Conv: c.Conv.String(), Level: string(c.Level)}, true
	case chat.SettingContact, chat.SettingBlock:
		return RelationFrame{Type: TypeSettings, What: string(c.What), User: c.User.String(), On: c.On}, true
	case chat.SettingPush:
		return PushSettingsFrame{Type: TypeSettings, What: SettingPush, HideText: c.Push.HideText}, true
	}
	return nil, false
}
