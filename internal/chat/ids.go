package chat

import (
	"strconv"
)

// UserID identifies a user. It is a snowflake id (see package snowflake).
type UserID int64

// ConversationID identifies a direct or group conversation.
type ConversationID int64

// MessageID identifies a message; it is time-sortable and unique across
// nodes.
type MessageID int64

// SessionID identifies one login (one device) of a user.
type SessionID int64

func (id UserID) String() string         { return strconv.FormatInt(int64(id), 10) }
func (id ConversationID) String() string { return strconv.FormatInt(int64(id), 10) }
func (id MessageID) String() string      { return strconv.FormatInt(int64(id), 10) }
func (id SessionID) String() string      { return strconv.FormatInt(int64(id), 10) }

// ParseID parses the decimal string form of any id. It returns an
// invalid_argument error naming field when s is not a positive integer.
func ParseID(field, s string) (int64, error) {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n <= 0 {
		return 0, Errorf(CodeInvalidArgument, "%s must be an id (a positive integer in a string)", field)
	}
	return n, nil
}

// IDGenerator hands out unique, time-sortable ids. Implementations are safe
// for concurrent use.
type IDGenerator interface {
	NextID() int64
}
