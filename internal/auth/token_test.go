package auth_test

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"
	"github.com/google/go-cmp/cmp"

	"github.com/natter-chat/natter/internal/auth"
	"github.com/natter-chat/natter/internal/chat"
)

// t0 is the time tests start their clocks at.
var t0 = time.Date(2026, time.April, 1, 9, 30, 0, 0, time.UTC)

// clock is a step clock for tests that use it from one goroutine.
type clock struct{ t time.Time }

func (c *clock) Now() time.Time          { return c.t }
func (c *clock) Advance(d time.Duration) { c.t = c.t.Add(d) }

func newKey(tb testing.TB) ed25519.PrivateKey {
	tb.Helper()
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	return key
}

// signed returns a token with claims signed by key with our kid, as if
// issued by a buggy or differently configured issuer.
func signed(tb testing.TB, key ed25519.PrivateKey, claims jwt.MapClaims) string {
	tb.Helper()
	tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, claims)
	tok.Header["kid"] = auth.KeyID(key.Public().(ed25519.PublicKey))
	s, err := tok.SignedString(key)
	if err != nil {
		tb.Fatal(err)
	}
	return s
}

// goodClaims are the claims of a valid token issued at t0.
func goodClaims() jwt.MapClaims {
	return jwt.MapClaims{
		"iss": "natter", "aud": "natter", "sub": "42", "sid": "7",
		"iat": t0.Unix(), "exp": t0.Add(15 * time.Minute).Unix(), "jti": "x",
	}
}

func TestTokens_Issue_Verify_roundTrip(t *testing.T) {
	clk := &clock{t: t0.Add(123 * time.Millisecond)}
	tokens := auth.NewTokens(newKey(t), auth.TokenOptions{Now: clk.Now})

	token, expiresAt, err := tokens.Issue(42, 7)
	if err != nil {
		t.Fatal(err)
	}
	if want := t0.Add(15 * time.Minute); !expiresAt.Equal(want) {
		t.Errorf("expiresAt = %v, want %v (15m, whole seconds)", expiresAt, want)
	}
	clk.Advance(14 * time.Minute)
	got, err := tokens.Verify(token)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	want := auth.Claims{User: 42, Session: 7, ExpiresAt: expiresAt}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Verify claims (-want +got):\n%s", diff)
	}
}

func TestTokens_Issue_writesTheDocumentedClaims(t *testing.T) {
	key := newKey(t)
	tokens := auth.NewTokens(key, auth.TokenOptions{Now: (&clock{t: t0}).Now, Issuer: "natter-test", AccessTTL: time.Minute})
	token, _, err := tokens.Issue(1234567890123, 99)
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("token has %d parts, want 3", len(parts))
	}
	var header, payload map[string]any
	decodePart(t, parts[0], &header)
	decodePart(t, parts[1], &payload)

	wantHeader := map[string]any{"alg": "EdDSA", "typ": "JWT", "kid": auth.KeyID(key.Public().(ed25519.PublicKey))}
	if diff := cmp.Diff(wantHeader, header); diff != "" {
		t.Errorf("header (-want +got):\n%s", diff)
	}
	jti, _ := payload["jti"].(string)
	if raw, err := base64.RawURLEncoding.DecodeString(jti); err != nil || len(raw) != 16 {
		t.Errorf("jti = %q, want 16 random bytes in base64url", jti)
	}
	delete(payload, "jti")
	wantPayload := map[string]any{
		"iss": "natter-test", "aud": []any{"natter"}, "sub": "1234567890123", "sid": "99",
		"iat": float64(t0.Unix()), "exp": float64(t0.Add(time.Minute).Unix()),
	}
	if diff := cmp.Diff(wantPayload, payload); diff != "" {
		t.Errorf("payload (-want +got):\n%s", diff)
	}
	if len(auth.KeyID(key.Public().(ed25519.PublicKey))) != 11 {
		t.Errorf("KeyID is not 8 bytes in base64url")
	}

	other, _, err := tokens.Issue(1234567890123, 99)
	if err != nil {
		t.Fatal(err)
	}
	if other == token {
		t.Errorf("two tokens issued at the same instant are equal: jti is not random")
	}
}

func decodePart(tb testing.TB, part string, v any) {
	tb.Helper()
	raw, err := base64.RawURLEncoding.DecodeString(part)
	if err != nil {
		tb.Fatalf("decode %q: %v", part, err)
	}
	if err := json.Unmarshal(raw, v); err != nil {
		tb.Fatalf("decode %s: %v", raw, err)
	}
}

func TestTokens_Verify_expiry(t *testing.T) {
	tests := []struct {
		name  string
		after time.Duration
		want  chat.Code // "" means valid
	}{
		{"just before exp", 15*time.Minute - time.Second, ""},
		{"at exp, within leeway", 15 * time.Minute, ""},
		{"past exp, within leeway", 15*time.Minute + 4*time.Second, ""},
		{"past exp and leeway", 15*time.Minute + 6*time.Second, chat.CodeTokenExpired},
		{"a day later", 24 * time.Hour, chat.CodeTokenExpired},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			clk := &clock{t: t0}
			tokens := auth.NewTokens(newKey(t), auth.TokenOptions{Now: clk.Now})
			token, _, err := tokens.Issue(42, 7)
			if err != nil {
				t.Fatal(err)
			}
			clk.Advance(tt.after)
			_, err = tokens.Verify(token)
			if got := chat.ErrorCode(err); got != tt.want {
				t.Errorf("Verify after %v: code %q (%v), want %q", tt.after, got, err, tt.want)
			}
		})
	}
}

func TestTokens_Verify_rejectsInvalidTokens(t *testing.T) {
	key := newKey(t)
	clk := &clock{t: t0.Add(time.Minute)}
	tokens := auth.NewTokens(key, auth.TokenOptions{Now: clk.Now})
	otherKey := newKey(t)
	pub := key.Public().(ed25519.PublicKey)

	with := func(change func(c jwt.MapClaims)) jwt.MapClaims {
		c := goodClaims()
		change(c)
		return c
	}
	ours := func(token string, err error) string {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return token
	}
	valid := signed(t, key, goodClaims())
	noneToken := ours(jwt.NewWithClaims(jwt.SigningMethodNone, goodClaims()).SignedString(jwt.UnsafeAllowNoneSignatureType))
	hsToken := func() string {
		tok := jwt.NewWithClaims(jwt.SigningMethodHS256, goodClaims())
		tok.Header["kid"] = auth.KeyID(pub)
		return ours(tok.SignedString([]byte(pub)))
	}()
	otherKeyOurKid := func() string {
		tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, goodClaims())
		tok.Header["kid"] = auth.KeyID(pub)
		return ours(tok.SignedString(otherKey))
	}()
	parts := strings.Split(valid, ".")

	tests := []struct {
		name  string
		token string
	}{
		{"empty", ""},
		{"garbage", "not a token"},
		{"three garbage parts", "a.b.c"},
		{"alg none", noneToken},
		{"HS256 signed with the public key", hsToken},
		{"signed by another key", signed(t, otherKey, goodClaims())},
		{"signed by another key with our kid", otherKeyOurKid},
		{"no kid", func() string {
			tok := jwt.NewWithClaims(jwt.SigningMethodEdDSA, goodClaims())
			return ours(tok.SignedString(key))
		}()},
		{"payload swapped", parts[0] + "." + base64.RawURLEncoding.EncodeToString([]byte(`{"iss":"natter","aud":"natter","sub":"1","sid":"7","exp":9999999999}`)) + "." + parts[2]},
		{"signature truncated", valid[:len(valid)-4]},
		{"huge", signed(t, key, with(func(c jwt.MapClaims) { c["pad"] = strings.Repeat("x", 4096) }))},
		{"wrong audience", signed(t, key, with(func(c jwt.MapClaims) { c["aud"] = "other" }))},
		{"no audience", signed(t, key, with(func(c jwt.MapClaims) { delete(c, "aud") }))},
		{"wrong issuer", signed(t, key, with(func(c jwt.MapClaims) { c["iss"] = "evil" }))},
		{"no issuer", signed(t, key, with(func(c jwt.MapClaims) { delete(c, "iss") }))},
		{"no exp", signed(t, key, with(func(c jwt.MapClaims) { delete(c, "exp") }))},
		{"exp not a number", signed(t, key, with(func(c jwt.MapClaims) { c["exp"] = "soon" }))},
		{"issued in the future", signed(t, key, with(func(c jwt.MapClaims) { c["iat"] = t0.Add(time.Hour).Unix() }))},
		{"not valid yet", signed(t, key, with(func(c jwt.MapClaims) { c["nbf"] = t0.Add(time.Hour).Unix() }))},
		{"no subject", signed(t, key, with(func(c jwt.MapClaims) { delete(c, "sub") }))},
		{"subject not an id", signed(t, key, with(func(c jwt.MapClaims) { c["sub"] = "alice" }))},
		{"subject zero", signed(t, key, with(func(c jwt.MapClaims) { c["sub"] = "0" }))},
		{"no session", signed(t, key, with(func(c jwt.MapClaims) { delete(c, "sid") }))},
		{"session a number, not a string", signed(t, key, with(func(c jwt.MapClaims) { c["sid"] = 7 }))},
		{"expired and wrong audience", signed(t, key, with(func(c jwt.MapClaims) {
			c["aud"] = "other"
			c["exp"] = t0.Add(-time.Hour).Unix()
			c["iat"] = t0.Add(-2 * time.Hour).Unix()
		}))},
		{"expired and signed by another key", signed(t, otherKey, with(func(c jwt.MapClaims) {
			c["exp"] = t0.Add(-time.Hour).Unix()
		}))},
	}
	if _, err := tokens.Verify(valid); err != nil {
		t.Fatalf("the unaltered token does not verify: %v", err)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			claims, err := tokens.Verify(tt.token)
			if !chat.IsCode(err, chat.CodeUnauthenticated) {
				t.Fatalf("Verify = %+v, %v; want a %s error", claims, err, chat.CodeUnauthenticated)
			}
			if claims != (auth.Claims{}) {
				t.Errorf("Verify returned claims %+v with its error", claims)
			}
			if tt.token != "" && strings.Contains(err.Error(), tt.token) {
				t.Errorf("error %q contains the token", err)
			}
			if msg := chat.ErrorMessage(err); msg != "the access token is invalid; sign in again" {
				t.Errorf("message = %q, want the generic one", msg)
			}
		})
	}
}

func TestTokens_Verify_otherIssuerIsRejected(t *testing.T) {
	key := newKey(t)
	clk := &clock{t: t0}
	staging := auth.NewTokens(key, auth.TokenOptions{Now: clk.Now, Issuer: "natter-staging"})
	prod := auth.NewTokens(key, auth.TokenOptions{Now: clk.Now})
	token, _, err := staging.Issue(42, 7)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := prod.Verify(token); !chat.IsCode(err, chat.CodeUnauthenticated) {
		t.Errorf("Verify of another issuer's token: %v, want %s", err, chat.CodeUnauthenticated)
	}
}

func TestNewTokens_panicsOnBadKey(t *testing.T) {
	defer func() {
		if recover() == nil {
			t.Error("NewTokens with a 3-byte key did not panic")
		}
	}()
	auth.NewTokens(ed25519.PrivateKey{1, 2, 3}, auth.TokenOptions{})
}
