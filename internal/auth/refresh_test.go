package auth_test

import (
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"testing"

	"github.com/natter-chat/natter/internal/auth"
)

func TestNewRefreshToken(t *testing.T) {
	token, hash := auth.NewRefreshToken()
	raw, err := base64.RawURLEncoding.Strict().DecodeString(token)
	if err != nil || len(raw) != 32 {
		t.Errorf("token %q is not 32 bytes in unpadded base64url (err %v)", token, err)
	}
	sum := sha256.Sum256([]byte(token))
	if want := hex.EncodeToString(sum[:]); hash != want {
		t.Errorf("hash = %q, want hex(sha256(token)) = %q", hash, want)
	}
	if got := auth.HashRefreshToken(token); got != hash {
		t.Errorf("HashRefreshToken(token) = %q, want the hash NewRefreshToken returned, %q", got, hash)
	}
	other, otherHash := auth.NewRefreshToken()
	if other == token || otherHash == hash {
		t.Error("two refresh tokens are equal")
	}
}
