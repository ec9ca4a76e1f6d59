package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
)

// NewRefreshToken returns a new opaque refresh token (32 random bytes,
// base64url without padding) and its hash, HashRefreshToken(token). The
// token goes to the client once; only the hash is stored.
func NewRefreshToken() (token, hash string) {
	b := make([]byte, 32)
	rand.Read(b) // never fails, per its documentation
	token = base64.RawURLEncoding.EncodeToString(b)
	return token, HashRefreshToken(token)
}

// HashRefreshToken returns the hash under which a refresh token is
// stored: hex(sha256(token)). A fast hash suffices because the token has
// 256 bits of entropy; it need not resist guessing like a password.
func HashRefreshToken(token string) string {
	sum := sha256.Sum256([]byte(token))
	return hex.EncodeToString(sum[:])
}
