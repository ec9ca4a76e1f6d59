package auth

import (
	"cmp"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/natter-chat/natter/internal/chat"
)

const (
	// Audience is the aud claim of every access token.
	Audience = "natter"
	// DefaultIssuer is the iss claim when TokenOptions.Issuer is empty.
	DefaultIssuer = "natter"
	// DefaultAccessTTL is how long an access token lives when
	// TokenOptions.AccessTTL is zero.
	DefaultAccessTTL = 15 * time.Minute
	// Leeway is the clock skew between nodes that Verify tolerates on exp
	// and iat.
	Leeway = 5 * time.Second

	// maxTokenLen bounds what Verify parses; our tokens are ~300 bytes.
	maxTokenLen = 2048
)

// TokenOptions configures Tokens.
type TokenOptions struct {
	AccessTTL time.Duration    // lifetime of an access token; zero means DefaultAccessTTL (15m)
	Now       func() time.Time // the clock; nil means time.Now
	Issuer    string           // the iss claim, issued and required; zero means DefaultIssuer
}

// Tokens issues and verifies access tokens: short-lived JWTs signed with
// Ed25519 (alg EdDSA) that carry a user id and a session id. A Tokens is
// safe for concurrent use. Verification needs no store: revoking a session
// takes effect on its access tokens only when they expire (AccessTTL),
// which is why that is short; refresh tokens are checked against the store.
type Tokens struct {
	key    ed25519.PrivateKey
	public ed25519.PublicKey
	kid    string
	ttl    time.Duration
	now    func() time.Time
	issuer string
	parser *jwt.Parser
}

// Claims is what a verified access token says.
type Claims struct {
	User      chat.UserID
	Session   chat.SessionID
	ExpiresAt time.Time
}

// accessClaims is the JWT payload: the registered claims and sid.
type accessClaims struct {
	jwt.RegisteredClaims
	Session string `json:"sid"`
}

// errBadSubject marks a signed token whose sub or sid is not an id.
var errBadSubject = errors.New("sub or sid is not a positive id")

// Validate is called by the parser after the registered claims' checks.
func (c *accessClaims) Validate() error {
	if _, err := parsePositive(c.Subject); err != nil {
		return errBadSubject
	}
	if _, err := parsePositive(c.Session); err != nil {
		return errBadSubject
	}
	return nil
}

// NewTokens returns Tokens that sign with key. It panics if key is not an
// Ed25519 private key (ed25519.PrivateKeySize bytes): that is a bug, since
// keys come from LoadOrCreateKey.
func NewTokens(key ed25519.PrivateKey, opts TokenOptions) *Tokens {
	if len(key) != ed25519.PrivateKeySize {
		panic(fmt.Sprintf("auth: NewTokens: key is %d bytes, not an Ed25519 private key", len(key)))
	}
	public := key.Public().(ed25519.PublicKey)
	t := &Tokens{
		key:    key,
		public: public,
		kid:    KeyID(public),
		ttl:    cmp.Or(opts.AccessTTL, DefaultAccessTTL),
		now:    opts.Now,
		issuer: cmp.Or(opts.Issuer, DefaultIssuer),
	}
	if t.now == nil {
		t.now = time.Now
	}
	t.parser = jwt.NewParser(
		jwt.WithValidMethods([]string{jwt.SigningMethodEdDSA.Alg()}),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithIssuer(t.issuer),
		jwt.WithAudience(Audience),
		jwt.WithLeeway(Leeway),
		jwt.WithTimeFunc(t.now),
		jwt.WithStrictDecoding(),
	)
	return t
}

// KeyID returns the key id ("kid" header) of tokens signed by the private
// key of public: the first 8 bytes of its SHA-256, base64url-encoded.
func KeyID(public ed25519.PublicKey) string {
	sum := sha256.Sum256(public)
	return base64.RawURLEncoding.EncodeToString(sum[:8])
}

// Issue returns a signed access token for a user's session and when it
// expires. Its claims: sub (the user id in decimal), sid (the session id in
// decimal), iss, aud, iat, exp and a random jti; its header names the key
// (kid).
func (t *Tokens) Issue(user chat.UserID, session chat.SessionID) (token string, expiresAt time.Time, err error) {
	now := t.now().Truncate(time.Second) // JWT times are whole seconds
	expiresAt = now.Add(t.ttl)
	jti := make([]byte, 16)
	rand.Read(jti) // never fails, per its documentation
	tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, &accessClaims{
		RegisteredClaims: jwt.RegisteredClaims{
			Issuer:    t.issuer,
			Subject:   user.String(),
			Audience:  jwt.ClaimStrings{Audience},
			IssuedAt:  jwt.NewNumericDate(now),
			ExpiresAt: jwt.NewNumericDate(expiresAt),
			ID:        base64.RawURLEncoding.EncodeToString(jti),
		},
		Session: session.String(),
	})
	tok.Header["kid"] = t.kid
	token, err = tok.SignedString(t.key)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("auth: sign access token: %w", err)
	}
	return token, expiresAt, nil
}

// Verify checks token and returns its claims. Only EdDSA tokens signed by
// this Tokens' key, with this issuer and audience, iat not in the future,
// exp present and a user and session id are accepted, with Leeway for
// clock skew.
//
// Errors are *chat.Error: chat.CodeTokenExpired for a token that is valid
// but for having expired (the client should refresh it), and
// chat.CodeUnauthenticated with a generic message for anything else
// (malformed, forged, signed by another key or with another algorithm,
// wrong issuer or audience, missing claims). The cause is kept in Err for
// logs; neither contains the token.
func (t *Tokens) Verify(token string) (Claims, error) {
	var c accessClaims
	var err error
	if len(token) > maxTokenLen {
		err = fmt.Errorf("token is %d bytes, longer than %d", len(token), maxTokenLen)
	} else {
		_, err = t.parser.ParseWithClaims(token, &c, t.keyFor)
	}
	switch {
	case err == nil:
	case onlyExpired(err):
		return Claims{}, &chat.Error{Code: chat.CodeTokenExpired, Message: "the access token has expired; refresh it", Op: "auth.Verify", Err: err}
	default:
		return Claims{}, &chat.Error{Code: chat.CodeUnauthenticated, Message: "the access token is invalid; sign in again", Op: "auth.Verify", Err: err}
	}
	// Validate succeeded, so both parse.
	user, _ := parsePositive(c.Subject)
	session, _ := parsePositive(c.Session)
	return Claims{User: chat.UserID(user), Session: chat.SessionID(session), ExpiresAt: c.ExpiresAt.Time}, nil
}

// keyFor returns the key that must have signed tok: ours, if its kid names
// it.
func (t *Tokens) keyFor(tok *jwt.Token) (any, error) {
	if kid, _ := tok.Header["kid"].(string); kid != t.kid {
		return nil, errors.New("unknown key id")
	}
	return t.public, nil
}

// onlyExpired reports whether err says that a token's signature is good
// and the only thing wrong with its claims is that it has expired. The
// parser checks the signature before the claims and joins every claim
// failure, so a forged or otherwise invalid token never qualifies.
func onlyExpired(err error) bool {
	if !errors.Is(err, jwt.ErrTokenExpired) {
		return false
	}
	for _, other := range []error{
		jwt.ErrTokenMalformed, jwt.ErrTokenUnverifiable, jwt.ErrTokenSignatureInvalid,
		jwt.ErrTokenRequiredClaimMissing, jwt.ErrTokenInvalidAudience, jwt.ErrTokenInvalidIssuer,
		jwt.ErrTokenUsedBeforeIssued, jwt.ErrTokenNotValidYet, jwt.ErrInvalidType, errBadSubject,
	} {
		if errors.Is(err, other) {
			return false
		}
	}
	return true
}

func parsePositive(s string) (int64, error) {
	n, err := strconv.ParseInt(s, 10, 64)
	if err == nil && n <= 0 {
		err = errors.New("not positive")
	}
	return n, err
}
