package protocol

import (
	"strconv"
	"unicode/utf8"

	"github.com/natter-chat/natter/internal/chat"
)

// AppendMessage appends m as a JSON Message object.
func AppendMessage(dst []byte, m *chat.Message) []byte {
	dst = append(dst, `{"id":"`...)
	dst = strconv.AppendInt(dst, int64(m.ID), 10)
	dst = append(dst, `","conv":"`...)
	dst = strconv.AppendInt(dst, int64(m.Conv), 10)
	dst = append(dst, `","seq":`...)
	dst = strconv.AppendInt(dst, m.Seq, 10)
	dst = append(dst, `,"sender":"`...)
	dst = strconv.AppendInt(dst, int64(m.Sender), 10)
	dst = append(dst, `","client_id":`...)
	dst = AppendString(dst, m.ClientID)
	dst = append(dst, `,"text":`...)
	dst = AppendString(dst, m.Text)
	dst = append(dst, `,"sent_at":`...)
	dst = appendTime(dst, m.SentAt)
	dst = append(dst, `,"pos":`...)
	dst = strconv.AppendInt(dst, m.Pos, 10)
	if m.ReplyTo != 0 {
		dst = append(dst, `,"reply_to":"`...)
		dst = strconv.AppendInt(dst, int64(m.ReplyTo), 10)
		dst = append(dst, '"')
	}
	if len(m.Mentions) > 0 {
		dst = append(dst, `,"mentions":`...)
		dst = appendIDs(dst, m.Mentions)
	}
	if !m.EditedAt.IsZero() {
		dst = append(dst, `,"edited_at":`...)
		dst = appendTime(dst, m.EditedAt)
	}
	if !m.DeletedAt.IsZero() {
		dst = append(dst, `,"deleted":true,"deleted_at":`...)
		dst = appendTime(dst, m.DeletedAt)
	}
	if len(m.Reactions) > 0 {
		dst = append(dst, `,"reactions":[`...)
		for i, r := range m.Reactions {
			if i > 0 {
				dst = append(dst, ',')
			}
			dst = append(dst, `{"emoji":`...)
			dst = AppendString(dst, r.Emoji)
			dst = append(dst, `,"users":`...)
			dst = appendIDs(dst, r.Users)
			dst = append(dst, `,"count":`...)
			dst = strconv.AppendInt(dst, int64(len(r.Users)), 10)
			dst = append(dst, '}')
		}
		dst = append(dst, ']')
	}
	dst = appendAttachments(dst, m.Attachments)
	return append(dst, '}')
}

func appendIDs(dst []byte, ids []chat.UserID) []byte {
	dst = append(dst, '[')
	for i, id := range ids {
		if i > 0 {
			dst = append(dst, ',')
		}
		dst = append(dst, '"')
		dst = strconv.AppendInt(dst, int64(id), 10)
		dst = append(dst, '"')
	}
	return append(dst, ']')
}

// AppendMessageUpdatedFrame appends
// {"type":"message_updated","message":M,"cursor":C}: a message's new state
// after an edit, a deletion or a reaction. cursor is omitted when zero.
func AppendMessageUpdatedFrame(dst []byte, m *chat.Message, cursor int64) []byte {
	dst = append(dst, `{"type":"message_updated","message":`...)
	dst = AppendMessage(dst, m)
	return appendCursor(dst, cursor)
}

// AppendMessageFrame appends {"type":"message","message":M,"cursor":C}:
// the frame every member device receives for a new message. It is built
// once per message and shared by all connections. cursor is omitted when
// zero.
func AppendMessageFrame(dst []byte, m *chat.Message, cursor int64) []byte {
	dst = append(dst, `{"type":"message","message":`...)
	dst = AppendMessage(dst, m)
	return appendCursor(dst, cursor)
}

// appendCursor ends a frame with its sync cursor, if positive.
func appendCursor(dst []byte, cursor int64) []byte {
	if cursor > 0 {
		dst = append(dst, `,"cursor":`...)
		dst = strconv.AppendInt(dst, cursor, 10)
	}
	return append(dst, '}')
}

// AppendAckFrame appends {"type":"ack","ref":R,"message":M[,"duplicate":true]}.
// ref must be a valid JSON value (or empty to omit it).
func AppendAckFrame(dst []byte, ref []byte, m *chat.Message, duplicate bool) []byte {
	dst = append(dst, `{"type":"ack"`...)
	dst = appendRef(dst, ref)
	dst = append(dst, `,"message":`...)
	dst = AppendMessage(dst, m)
	if duplicate {
		dst = append(dst, `,"duplicate":true`...)
	}
	return append(dst, '}')
}

// AppendErrorFrame appends {"type":"error","ref":R,"code":C,"message":M}
// (with "retry_after" when it is positive).
func AppendErrorFrame(dst []byte, ref []byte, code chat.Code, message string, retryAfter int) []byte {
	return AppendErrorFrameCursor(dst, ref, code, message, retryAfter, -1)
}

// AppendErrorFrameCursor is AppendErrorFrame with a "cursor" (for
// resync_required) when cursor >= 0.
func AppendErrorFrameCursor(dst []byte, ref []byte, code chat.Code, message string, retryAfter int, cursor int64) []byte {
	dst = append(dst, `{"type":"error"`...)
	dst = appendRef(dst, ref)
	dst = append(dst, `,"code":`...)
	dst = AppendString(dst, string(code))
	dst = append(dst, `,"message":`...)
	dst = AppendString(dst, message)
	if retryAfter > 0 {
		dst = append(dst, `,"retry_after":`...)
		dst = strconv.AppendInt(dst, int64(retryAfter), 10)
	}
	if cursor >= 0 {
		dst = append(dst, `,"cursor":`...)
		dst = strconv.AppendInt(dst, cursor, 10)
	}
	return append(dst, '}')
}

func appendRef(dst, ref []byte) []byte {
	if len(ref) == 0 {
		return dst
	}
	dst = append(dst, `,"ref":`...)
	return append(dst, ref...)
}

const hexDigits = "0123456789abcdef"

// AppendString appends s as a JSON string. Invalid UTF-8 is replaced by
// U+FFFD, and U+2028/U+2029 are escaped, as encoding/json does.
func AppendString(dst []byte, s string) []byte {
	dst = append(dst, '"')
	start := 0
	for i := 0; i < len(s); {
		b := s[i]
		if b < utf8.RuneSelf {
			if b >= 0x20 && b != '"' && b != '\\' {
				i++
				continue
			}
			dst = append(dst, s[start:i]...)
			switch b {
			case '"', '\\':
				dst = append(dst, '\\', b)
			case '\n':
				dst = append(dst, '\\', 'n')
			case '\r':
				dst = append(dst, '\\', 'r')
			case '\t':
				dst = append(dst, '\\', 't')
			default:
				dst = append(dst, '\\', 'u', '0', '0', hexDigits[b>>4], hexDigits[b&0xF])
			}
			i++
			start = i
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 {
			dst = append(dst, s[start:i]...)
			dst = append(dst, `\ufffd`...)
			i += size
			start = i
			continue
		}
		if r == '\u2028' || r == '\u2029' {
			dst = append(dst, s[start:i]...)
			dst = append(dst, '\\', 'u', '2', '0', '2', hexDigits[r&0xF])
			i += size
			start = i
			continue
		}
		i += size
	}
	dst = append(dst, s[start:]...)
	return append(dst, '"')
}

// ValidRef reports whether ref may be echoed: empty, or a JSON string or
// number of at most MaxRefBytes bytes.
func ValidRef(ref []byte) bool {
	if len(ref) == 0 {
		return true
	}
	if len(ref) > MaxRefBytes {
		return false
	}
	c := ref[0]
	return c == '"' || c == '-' || (c >= '0' && c <= '9')
}
