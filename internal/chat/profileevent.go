package chat

// EventProfile: user Users[0] changed their profile, which Profile
// carries. Every node tells its local users who share a conversation with
// them, and their own devices.
const EventProfile EventKind = "profile"
