package chat

// EventSettings: user Users[0] changed one of their own settings (which,
// and its new value, in Setting). Only that user's connections, on every
// node, hear about it: it keeps their other devices in step. A block
// change also makes every node drop its cached block checks.
const EventSettings EventKind = "settings"

// Setting names one of a user's own settings that their devices show.
type Setting string

const (
	SettingNotifyLevel Setting = "notification_level" // Conv and Level
	SettingContact     Setting = "contact"            // User and On: User is (On) or is no longer a contact
	SettingBlock       Setting = "block"              // User and On: User is (On) or is no longer blocked
	SettingPush        Setting = "push_settings"      // Push
)

// SettingChange is the new value of one of a user's settings, as stored.
// Only the fields that What names are set.
type SettingChange struct {
	What  Setting
	Conv  ConversationID
	Level NotifyLevel
	User  UserID
	On    bool
	Push  PushSettings
}
