package auth_test

import (
	"strings"
	"testing"

	"github.com/natter-chat/natter/internal/auth"
	"github.com/natter-chat/natter/internal/chat"
)

func TestValidateUsername(t *testing.T) {
	tests := []struct {
		name    string
		in      string
		want    string // when valid
		problem string // a part of the message, when invalid
	}{
		{"lower case is kept", "alice", "alice", ""},
		{"upper case is lowered", "Alice.Smith", "alice.smith", ""},
		{"digits, dot, dash and underscore", "a1_b.c-d", "a1_b.c-d", ""},
		{"may start with a digit", "007bond", "007bond", ""},
		{"3 characters", "bob", "bob", ""},
		{"32 characters", strings.Repeat("x", 32), strings.Repeat("x", 32), ""},
		{"empty", "", "", "3 to 32 characters"},
		{"2 characters", "ab", "", "3 to 32 characters"},
		{"33 characters", strings.Repeat("x", 33), "", "3 to 32 characters"},
		{"starts with underscore", "_alice", "", "start with a letter or a digit"},
		{"starts with dot", ".alice", "", "start with a letter or a digit"},
		{"starts with dash", "-alice", "", "start with a letter or a digit"},
		{"space", "alice smith", "", "only letters a-z"},
		{"at sign", "alice@example", "", "only letters a-z"},
		{"non-ASCII letter", "zoë123", "", "only letters a-z"},
		{"Kelvin sign that lowers to k", "\u212Aelvin", "", "only letters a-z"},
		{"invalid UTF-8", "al\xffce", "", "only letters a-z"},
		{"NUL", "ali\x00ce", "", "only letters a-z"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := auth.ValidateUsername(tt.in)
			if tt.problem == "" {
				if err != nil || got != tt.want {
					t.Errorf("ValidateUsername(%q) = %q, %v; want %q, nil", tt.in, got, err, tt.want)
				}
				return
			}
			if !chat.IsCode(err, chat.CodeInvalidUsername) {
				t.Fatalf("ValidateUsername(%q) = %q, %v; want a %s error", tt.in, got, err, chat.CodeInvalidUsername)
			}
			if msg := chat.ErrorMessage(err); !strings.Contains(msg, tt.problem) {
				t.Errorf("message %q does not say %q", msg, tt.problem)
			}
		})
	}
}

func TestValidatePassword(t *testing.T) {
	tests := []struct {
		name     string
		username string
		password string
		problem  string // a part of the message; empty when the password is fine
	}{
		{"long passphrase", "alice", "correct horse battery staple", ""},
		{"8 characters", "alice", "xK9#mQ2v", ""},
		{"8 multi-byte characters", "alice", "пароль!?", ""},
		{"256 bytes", "alice", strings.Repeat("ab", 128), ""},
		{"7 characters", "alice", "xK9#mQ2", "at least 8 characters"},
		{"8 bytes but 4 characters", "alice", "éééé", "at least 8 characters"},
		{"empty", "alice", "", "at least 8 characters"},
		{"257 bytes", "alice", strings.Repeat("ab", 128) + "c", "at most 256 bytes"},
		{"invalid UTF-8", "alice", "abcdefgh\xff", "valid UTF-8"},
		{"one repeated character", "alice", "aaaaaaaaaaaa", "single character repeated"},
		{"one repeated multi-byte character", "alice", "ßßßßßßßß", "single character repeated"},
		{"contains the username", "alice", "my-alice-2024", "contain the username"},
		{"contains the username in other case", "alice", "ALICE2024!!", "contain the username"},
		{"is the username", "alice.smith", "Alice.Smith", "contain the username"},
		{"common password", "alice", "password", "most commonly used"},
		{"common password in other case", "alice", "Password1", "most commonly used"},
		{"common digits", "alice", "12345678", "most commonly used"},
		{"common keyboard row", "alice", "qwertyuiop", "most commonly used"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := auth.ValidatePassword(tt.username, tt.password)
			if tt.problem == "" {
				if err != nil {
					t.Errorf("ValidatePassword(%q, %q) = %v, want nil", tt.username, tt.password, err)
				}
				return
			}
			if !chat.IsCode(err, chat.CodeWeakPassword) {
				t.Fatalf("ValidatePassword(%q, %q) = %v, want a %s error", tt.username, tt.password, err, chat.CodeWeakPassword)
			}
			if msg := chat.ErrorMessage(err); !strings.Contains(msg, tt.problem) {
				t.Errorf("message %q does not say %q", msg, tt.problem)
			}
		})
	}
}
