package auth

import (
	"strings"
	"unicode/utf8"

	"github.com/natter-chat/natter/internal/chat"
)

// Limits on usernames and passwords.
const (
	MinUsernameLen      = 3   // characters
	MaxUsernameLen      = 32  // characters
	MinPasswordLen      = 8   // characters (runes)
	MaxPasswordBytes    = 256 // bytes of UTF-8
	usernameRuleMessage = "usernames are 3 to 32 characters: letters a-z, digits, '_', '.' and '-', starting with a letter or a digit"
)

// ValidateUsername returns s in its stored form, lower case, when it is a
// valid username: 3 to 32 characters among ASCII letters, digits, '_', '.'
// and '-', the first a letter or a digit. Upper-case ASCII letters are
// accepted and lowered, so "Alice" and "alice" are the same user. Otherwise
// it returns a *chat.Error with chat.CodeInvalidUsername whose message says
// the rule that was broken.
func ValidateUsername(s string) (string, error) {
	if n := utf8.RuneCountInString(s); n < MinUsernameLen || n > MaxUsernameLen {
		return "", usernameError("a username must be 3 to 32 characters long")
	}
	b := []byte(s)
	for i, c := range b {
		switch {
		case 'A' <= c && c <= 'Z':
			b[i] = c + ('a' - 'A')
		case 'a' <= c && c <= 'z', '0' <= c && c <= '9':
		case c == '_' || c == '.' || c == '-':
			if i == 0 {
				return "", usernameError("a username must start with a letter or a digit")
			}
		default:
			return "", usernameError("a username may contain only letters a-z, digits, '_', '.' and '-'")
		}
	}
	return string(b), nil
}

func usernameError(reason string) error {
	return chat.Errorf(chat.CodeInvalidUsername, "%s (%s)", reason, usernameRuleMessage)
}

// ValidatePassword checks that password is acceptable for the user named
// username (in any case): valid UTF-8, at least 8 characters, at most 256
// bytes, not one character repeated, not containing the username, and not
// one of the most common passwords. Otherwise it returns a *chat.Error with
// chat.CodeWeakPassword whose message says why. It applies when a password
// is chosen, never at login.
func ValidatePassword(username, password string) error {
	switch {
	case !utf8.ValidString(password):
		return weak("a password must be valid UTF-8 text")
	case len(password) > MaxPasswordBytes:
		return weak("a password must be at most 256 bytes long")
	case utf8.RuneCountInString(password) < MinPasswordLen:
		return weak("a password must be at least 8 characters long")
	case oneRepeatedRune(password):
		return weak("a password must not be a single character repeated")
	}
	lower := strings.ToLower(password)
	switch {
	case username != "" && strings.Contains(lower, strings.ToLower(username)):
		return weak("a password must not contain the username")
	case isCommonPassword(lower):
		return weak("this password is one of the most commonly used; choose another")
	}
	return nil
}

func weak(reason string) error {
	return chat.Errorf(chat.CodeWeakPassword, "%s", reason)
}

func oneRepeatedRune(s string) bool {
	first, _ := utf8.DecodeRuneInString(s)
	for _, r := range s {
		if r != first {
			return false
		}
	}
	return true
}

// isCommonPassword reports whether lower, a lower-cased password, is among
// the most common passwords of at least 8 characters in public breach
// lists (shorter ones are rejected for their length anyway).
func isCommonPassword(lower string) bool {
	switch lower {
	case "password", "password1", "password12", "password123", "passw0rd", "p@ssw0rd", "p@ssword",
		"12345678", "123456789", "1234567890", "87654321", "12341234", "123123123", "11223344",
		"qwertyuiop", "qwertyui", "qwerty123", "qwerty12", "asdfghjkl", "asdfasdf", "zxcvbnm1",
		"1q2w3e4r", "1q2w3e4r5t", "q1w2e3r4", "1qaz2wsx", "zaq12wsx", "abc12345", "abcd1234",
		"iloveyou", "sunshine", "princess", "football", "baseball", "superman", "starwars",
		"trustno1", "welcome1", "welcome123", "letmein1", "whatever", "computer", "admin123",
		"aa123456", "charlie1", "michelle", "jennifer":
		return true
	}
	return false
}
