package push

import (
	"bytes"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/natter-chat/natter/internal/chat"
)

func b64(t testing.TB, s string) []byte {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(s)
	if err != nil {
		t.Fatalf("decode %q: %v", s, err)
	}
	return b
}

// RFC 8291 section 5 and appendix A: the example's keys, salt and result.
const (
	rfcPlaintext = "When I grow up, I want to be a watermelon"
	rfcUAPrivate = "q1dXpw3UpT5VOmu_cf_v6ih07Aems3njxI-JWgLcM94"
	rfcUAPublic  = "BCVxsr7N_eNgVRqvHtD0zTZsEc6-VV-JvLexhqUzORcxaOzi6-AYWXvTBHm4bjyPjs7Vd8pZGH6SRpkNtoIAiw4"
	rfcASPrivate = "yfWPiYE-n46HLnH0KqZOF1fJJU3MYrct3AELtAQ-oRw"
	rfcAuth      = "BTBZMqHH6r4Tts7J_aSIgg"
	rfcSalt      = "DGv6ra1nlYgDCS1FRnbzlw"
	rfcBody      = "DGv6ra1nlYgDCS1FRnbzlwAAEABBBP4z9KsN6nGRTbVYI_c7VJSPQTBtkgcy27mlmlMoZIIgDll6e3vCYLocInmYWAmS6TlzAC8wEqKK6PBru3jl7A_yl95bQpu6cVPTpK4Mqgkf1CXztLVBSt2Ks3oZwbuwXPXLWyouBWLVWGNWQexSgSxsj_Qulcy4a-fN"
)

func TestEncrypt_RFC8291Example(t *testing.T) {
	as, err := ecdh.P256().NewPrivateKey(b64(t, rfcASPrivate))
	if err != nil {
		t.Fatal(err)
	}
	got, err := encrypt([]byte(rfcPlaintext), b64(t, rfcUAPublic), b64(t, rfcAuth), as, b64(t, rfcSalt))
	if err != nil {
		t.Fatalf("encrypt: %v", err)
	}
	if want := b64(t, rfcBody); !bytes.Equal(got, want) {
		t.Fatalf("encrypt gave\n%s\nwant RFC 8291's\n%s", base64.RawURLEncoding.EncodeToString(got), rfcBody)
	}
	ua, err := ecdh.P256().NewPrivateKey(b64(t, rfcUAPrivate))
	if err != nil {
		t.Fatal(err)
	}
	plain, err := Decrypt(b64(t, rfcBody), ua, b64(t, rfcAuth))
	if err != nil || string(plain) != rfcPlaintext {
		t.Fatalf("Decrypt(RFC body) = %q, %v", plain, err)
	}
}

// browser is a subscriber's keys, as a browser would make them.
type browser struct {
	key  *ecdh.PrivateKey
	auth []byte
}

func newBrowser(t testing.TB) browser {
	t.Helper()
	key, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	auth := make([]byte, 16)
	rand.Read(auth)
	return browser{key: key, auth: auth}
}

func TestEncrypt_RoundTrip(t *testing.T) {
	b := newBrowser(t)
	for _, size := range []int{0, 1, 100, MaxPlaintext} {
		plain := bytes.Repeat([]byte("x"), size)
		body, err := Encrypt(plain, b.key.PublicKey().Bytes(), b.auth)
		if err != nil {
			t.Fatalf("Encrypt(%d bytes): %v", size, err)
		}
		if len(body) > 4096 {
			t.Errorf("a %d-byte payload gave a %d-byte body, over 4096", size, len(body))
		}
		got, err := Decrypt(body, b.key, b.auth)
		if err != nil || !bytes.Equal(got, plain) {
			t.Fatalf("round trip of %d bytes: %d bytes, %v", size, len(got), err)
		}
	}
	if _, err := Encrypt(make([]byte, MaxPlaintext+1), b.key.PublicKey().Bytes(), b.auth); err == nil {
		t.Errorf("Encrypt accepted a payload over MaxPlaintext")
	}
	other := newBrowser(t)
	body, _ := Encrypt([]byte("secret"), b.key.PublicKey().Bytes(), b.auth)
	if _, err := Decrypt(body, other.key, other.auth); err == nil {
		t.Errorf("another browser's key decrypted the body")
	}
}

// verifyVAPID checks an Authorization header against the public key and
// returns the JWT's claims.
func verifyVAPID(t testing.TB, header, publicKey string) jwt.MapClaims {
	t.Helper()
	rest, ok := strings.CutPrefix(header, "vapid t=")
	if !ok {
		t.Fatalf("Authorization %q does not start with vapid t=", header)
	}
	token, k, ok := strings.Cut(rest, ",k=")
	if !ok || k != publicKey {
		t.Fatalf("Authorization k=%q, want the server's public key %q", k, publicKey)
	}
	pub, err := ecdsa.ParseUncompressedPublicKey(elliptic.P256(), b64(t, k))
	if err != nil {
		t.Fatalf("k is not an uncompressed P-256 point: %v", err)
	}
	claims := jwt.MapClaims{}
	if _, err := jwt.ParseWithClaims(token, claims, func(*jwt.Token) (any, error) { return pub, nil },
		jwt.WithValidMethods([]string{"ES256"}), jwt.WithExpirationRequired()); err != nil {
		t.Fatalf("VAPID JWT does not verify with the public key: %v", err)
	}
	return claims
}

func TestVAPID_Authorization(t *testing.T) {
	raw, err := NewVAPIDKey()
	if err != nil {
		t.Fatal(err)
	}
	v, err := NewVAPID(raw, "mailto:ops@example.org")
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	h, err := v.Authorization("https://push.example.net:8443/send/abc?x=1", now)
	if err != nil {
		t.Fatal(err)
	}
	claims := verifyVAPID(t, h, v.PublicKey())
	if claims["aud"] != "https://push.example.net:8443" || claims["sub"] != "mailto:ops@example.org" {
		t.Errorf("claims = %v; want the endpoint's origin as aud and the subject as sub", claims)
	}
	exp, _ := claims.GetExpirationTime()
	if d := exp.Sub(now); d <= 0 || d > 24*time.Hour {
		t.Errorf("exp is %v after now; want within 24h", d)
	}
	again, _ := NewVAPID(raw, "mailto:ops@example.org")
	if again.PublicKey() != v.PublicKey() {
		t.Errorf("the same private key gave another public key")
	}
}

func TestWebPush_Send(t *testing.T) {
	raw, _ := NewVAPIDKey()
	v, _ := NewVAPID(raw, "mailto:ops@example.org")
	b := newBrowser(t)
	var status int
	var got Payload
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		verifyVAPID(t, r.Header.Get("Authorization"), v.PublicKey())
		for h, want := range map[string]string{"Content-Encoding": "aes128gcm", "TTL": "43200", "Urgency": "high", "Topic": "c42"} {
			if r.Header.Get(h) != want {
				t.Errorf("%s = %q, want %q", h, r.Header.Get(h), want)
			}
		}
		body, _ := io.ReadAll(r.Body)
		plain, err := Decrypt(body, b.key, b.auth)
		if err != nil {
			t.Errorf("Decrypt: %v", err)
		}
		if err := json.Unmarshal(plain, &got); err != nil {
			t.Errorf("payload is not JSON: %v", err)
		}
		if status == http.StatusTooManyRequests {
			w.Header().Set("Retry-After", "7")
		}
		w.WriteHeader(status)
	}))
	defer srv.Close()
	wp := NewWebPush(v, WebPushOptions{Client: NewClient(true)})
	sub := chat.PushSubscription{Kind: chat.PushWebPush, Endpoint: srv.URL + "/push/1", P256dh: b.key.PublicKey().Bytes(), Auth: b.auth}
	want := Payload{Conv: "42", Title: "ann", Body: "hi", Count: 1, MessageID: "7"}
	for _, c := range []struct {
		status int
		check  func(error) bool
	}{
		{201, func(err error) bool { return err == nil }},
		{404, func(err error) bool { return errors.Is(err, ErrGone) }},
		{410, func(err error) bool { return errors.Is(err, ErrGone) }},
		{429, func(err error) bool {
			re, ok := errors.AsType[*RetryError](err)
			return ok && re.After == 7*time.Second
		}},
		{500, func(err error) bool { _, ok := errors.AsType[*RetryError](err); return ok }},
		{400, func(err error) bool {
			_, retry := errors.AsType[*RetryError](err)
			return err != nil && !retry && !errors.Is(err, ErrGone)
		}},
	} {
		status, got = c.status, Payload{}
		err := wp.Send(t.Context(), sub, want)
		if !c.check(err) {
			t.Errorf("status %d: Send returned %v", c.status, err)
		}
		if got != want {
			t.Errorf("status %d: the service decrypted %+v, want %+v", c.status, got, want)
		}
	}
}

// A failed request's error reaches logs and dead letters: it must not
// carry the endpoint, which lets whoever knows it push to the device.
func TestWebPush_Send_ErrorsHideTheEndpoint(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			conn.Close() // no answer at all
		}
	}))
	defer srv.Close()
	raw, _ := NewVAPIDKey()
	v, _ := NewVAPID(raw, "mailto:ops@example.org")
	b := newBrowser(t)
	wp := NewWebPush(v, WebPushOptions{Client: NewClient(true)})
	sub := chat.PushSubscription{Kind: chat.PushWebPush, Endpoint: srv.URL + "/send/capability-7f3a9c", P256dh: b.key.PublicKey().Bytes(), Auth: b.auth}
	err := wp.Send(t.Context(), sub, Payload{Conv: "42", Title: "ann", Count: 1, MessageID: "7"})
	if _, retry := errors.AsType[*RetryError](err); !retry {
		t.Fatalf("a connection closed without an answer gave %v; want a retryable error", err)
	}
	if strings.Contains(err.Error(), "capability-7f3a9c") {
		t.Fatalf("the error names the endpoint: %v", err)
	}
}

func TestNewClient_RefusesPrivateAddresses(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(201) }))
	defer srv.Close()
	if _, err := NewClient(false).Post(srv.URL, "text/plain", nil); err == nil || !strings.Contains(err.Error(), "non-public") {
		t.Fatalf("posting to loopback: %v; want a refusal", err)
	}
	res, err := NewClient(true).Post(srv.URL, "text/plain", nil)
	if err != nil {
		t.Fatalf("with allowPrivate: %v", err)
	}
	res.Body.Close()
}
