package client

import "github.com/natter-chat/natter/internal/protocol"

// The wire types, re-exported so that programs outside this module can use
// them without importing internal packages. They are aliases: a
// client.Message is a protocol.Message.
type (
	User                  = protocol.User
	Message               = protocol.Message
	Member                = protocol.Member
	Conversation          = protocol.Conversation
	Session               = protocol.Session
	AuthResponse          = protocol.AuthResponse
	ConversationResponse  = protocol.ConversationResponse
	ConversationsResponse = protocol.ConversationsResponse
	MessageResponse       = protocol.MessageResponse
	MessagesResponse      = protocol.MessagesResponse
	ReadResponse          = protocol.ReadResponse
	SessionsResponse      = protocol.SessionsResponse
	UserResponse          = protocol.UserResponse
	ErrorBody             = protocol.ErrorBody
	ErrorDetail           = protocol.ErrorDetail
	ClientFrame           = protocol.ClientFrame
	ServerFrame           = protocol.ServerFrame
)

// Types of the frames the server pushes, as seen in ServerFrame.Type by
// ConnOptions.OnEvent.
const (
	TypeMessage             = protocol.TypeMessage             // a new message; ServerFrame.Msg() returns it (frames of stored changes carry ServerFrame.Cursor: save the highest as the sync cursor)
	TypeConversation        = protocol.TypeConversation        // the user was added to ServerFrame.Conversation
	TypeMemberAdded         = protocol.TypeMemberAdded         // ServerFrame.Users joined ServerFrame.Conv
	TypeMemberGone          = protocol.TypeMemberGone          // ServerFrame.Users left ServerFrame.Conv
	TypeReceipt             = protocol.TypeReceipt             // ServerFrame.User read/received ServerFrame.Conv up to ServerFrame.ReadSeq/DeliveredSeq
	TypeMessageUpdated      = protocol.TypeMessageUpdated      // a message was edited, deleted or reacted to; ServerFrame.Msg() is its new state
	TypeConversationUpdated = protocol.TypeConversationUpdated // ServerFrame.Conversation's title changed
	TypeTyping              = protocol.TypeTyping              // ServerFrame.User is typing in ServerFrame.Conv (State "start"/"stop", ExpiresMS)
	TypePresence            = protocol.TypePresence            // ServerFrame.User's Status (and LastSeen) changed
	TypeRoleChanged         = protocol.TypeRoleChanged         // ServerFrame.User has ServerFrame.Role in ServerFrame.Conv
	TypeReconnect           = protocol.TypeReconnect           // the node drains: reconnect after ServerFrame.AfterMS
	TypeError               = protocol.TypeError               // an error not tied to a request (no ref)
	// TypeSettings: one of the user's own settings changed, on this device
	// or another; ServerFrame.What says which (the Setting constants) and
	// the fields it names carry the new value. Only the user's own
	// connections get it; it carries no cursor, and frames sent while a
	// connection was down are lost: read the settings again (REST) after
	// reconnecting.
	TypeSettings = protocol.TypeSettings
)

// What a TypeSettings frame is about (ServerFrame.What). Ignore others:
// later servers may add some.
const (
	SettingNotificationLevel = protocol.SettingNotificationLevel // ServerFrame.Level ("all", "mentions", "none") in ServerFrame.Conv
	SettingContact           = protocol.SettingContact           // ServerFrame.User is a contact if ServerFrame.On, else no longer
	SettingBlock             = protocol.SettingBlock             // ServerFrame.User is blocked if ServerFrame.On, else no longer
	SettingPush              = protocol.SettingPush              // ServerFrame.HideText is the push privacy setting
)

// WebSocket close codes the server uses besides the standard ones (1000
// normal, 1001 going away on drain, 1009 frame too large). Conn.CloseCode
// and CloseError.Code report them.
const (
	CloseUnauthenticated = protocol.CloseUnauthenticated // no valid token
	CloseProtocolError   = protocol.CloseProtocolError   // too many bad frames
	CloseSessionRevoked  = protocol.CloseSessionRevoked  // the login was revoked or its token expired
	CloseSlowConsumer    = protocol.CloseSlowConsumer    // the client read too slowly; reconnect and sync
)

// Request bodies of the REST API.
type (
	CredentialsRequest        = protocol.CredentialsRequest
	RefreshRequest            = protocol.RefreshRequest
	CreateConversationRequest = protocol.CreateConversationRequest
	MembersRequest            = protocol.MembersRequest
	SendRequest               = protocol.SendRequest
	RoleRequest               = protocol.RoleRequest
	EditRequest               = protocol.EditRequest
	TitleRequest              = protocol.TitleRequest
	Reaction                  = protocol.Reaction
	Presence                  = protocol.Presence
	Change                    = protocol.Change
	ChangesResponse           = protocol.ChangesResponse
	ReceiptsResponse          = protocol.ReceiptsResponse
	ReadRequest               = protocol.ReadRequest
)
