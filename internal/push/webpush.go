package push

import (
	"bytes"
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/ecdh"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/hkdf"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/natter-chat/natter/internal/chat"
)

// recordSize is the aes128gcm record size Natter writes: one record holds
// any payload a push service accepts (4096 bytes of body at most).
const recordSize = 4096

// MaxPlaintext is the largest payload Encrypt accepts: a 4096-byte body
// less the 86-byte header, the padding delimiter and the 16-byte tag.
const MaxPlaintext = recordSize - 86 - 1 - 16

// Encrypt encrypts plaintext for a browser's subscription keys as RFC
// 8291 describes (aes128gcm content coding, RFC 8188, one record), with a
// fresh ephemeral key and salt.
func Encrypt(plaintext, p256dh, auth []byte) ([]byte, error) {
	as, err := ecdh.P256().GenerateKey(rand.Reader)
	if err != nil {
		return nil, err
	}
	salt := make([]byte, 16)
	if _, err := rand.Read(salt); err != nil {
		return nil, err
	}
	return encrypt(plaintext, p256dh, auth, as, salt)
}

// encrypt is Encrypt with the ephemeral key and salt given (for RFC 8291's
// example).
func encrypt(plaintext, p256dh, auth []byte, as *ecdh.PrivateKey, salt []byte) ([]byte, error) {
	if len(plaintext) > MaxPlaintext {
		return nil, fmt.Errorf("webpush: payload of %d bytes is over %d", len(plaintext), MaxPlaintext)
	}
	ua, err := ecdh.P256().NewPublicKey(p256dh)
	if err != nil {
		return nil, fmt.Errorf("webpush: p256dh is not a P-256 public key: %w", err)
	}
	if len(auth) != 16 {
		return nil, fmt.Errorf("webpush: auth secret is %d bytes, want 16", len(auth))
	}
	secret, err := as.ECDH(ua)
	if err != nil {
		return nil, err
	}
	asPublic := as.PublicKey().Bytes()
	gcm, nonce, err := contentKeys(secret, auth, p256dh, asPublic, salt)
	if err != nil {
		return nil, err
	}
	header := make([]byte, 0, 86+len(plaintext)+17)
	header = append(header, salt...)
	header = binary.BigEndian.AppendUint32(header, recordSize)
	header = append(header, byte(len(asPublic)))
	header = append(header, asPublic...)
	record := append(append([]byte(nil), plaintext...), 2) // 2: the last record's padding delimiter
	return gcm.Seal(header, nonce, record, nil), nil
}

// contentKeys derives the AES-128-GCM cipher and nonce of RFC 8291
// section 3.4 from the ECDH secret.
func contentKeys(secret, auth, uaPublic, asPublic, salt []byte) (cipher.AEAD, []byte, error) {
	info := append(append([]byte("WebPush: info\x00"), uaPublic...), asPublic...)
	ikm, err := hkdf.Key(sha256.New, secret, auth, string(info), 32)
	if err != nil {
		return nil, nil, err
	}
	prk, err := hkdf.Extract(sha256.New, ikm, salt)
	if err != nil {
		return nil, nil, err
	}
	cek, err := hkdf.Expand(sha256.New, prk, "Content-Encoding: aes128gcm\x00", 16)
	if err != nil {
		return nil, nil, err
	}
	nonce, err := hkdf.Expand(sha256.New, prk, "Content-Encoding: nonce\x00", 12)
	if err != nil {
		return nil, nil, err
	}
	block, err := aes.NewCipher(cek)
	if err != nil {
		return nil, nil, err
	}
	gcm, err := cipher.NewGCM(block)
	return gcm, nonce, err
}

// Decrypt is the browser's side of Encrypt: it decrypts a one-record
// aes128gcm body with the subscription's private key and auth secret.
// Natter uses it in tests and tools only.
func Decrypt(body []byte, ua *ecdh.PrivateKey, auth []byte) ([]byte, error) {
	if len(body) < 21 {
		return nil, errors.New("webpush: body shorter than its header")
	}
	salt, idLen := body[:16], int(body[20])
	if len(body) < 21+idLen {
		return nil, errors.New("webpush: body shorter than its key id")
	}
	asPublic := body[21 : 21+idLen]
	as, err := ecdh.P256().NewPublicKey(asPublic)
	if err != nil {
		return nil, fmt.Errorf("webpush: key id is not a P-256 public key: %w", err)
	}
	secret, err := ua.ECDH(as)
	if err != nil {
		return nil, err
	}
	gcm, nonce, err := contentKeys(secret, auth, ua.PublicKey().Bytes(), asPublic, salt)
	if err != nil {
		return nil, err
	}
	plain, err := gcm.Open(nil, nonce, body[21+idLen:], nil)
	if err != nil {
		return nil, err
	}
	end := bytes.LastIndexByte(plain, 2)
	if end < 0 || len(bytes.Trim(plain[end+1:], "\x00")) != 0 {
		return nil, errors.New("webpush: no last-record delimiter")
	}
	return plain[:end], nil
}

// VAPID signs the JWTs that identify this server to Web Push services
// (RFC 8292).
type VAPID struct {
	key     *ecdsa.PrivateKey
	public  string // base64url of the uncompressed public key
	subject string
}

// NewVAPID returns a signer for the P-256 private key raw (a 32-byte
// scalar) with contact subject (a mailto: or https: URI).
func NewVAPID(raw []byte, subject string) (*VAPID, error) {
	key, err := ecdsa.ParseRawPrivateKey(elliptic.P256(), raw)
	if err != nil {
		return nil, fmt.Errorf("vapid: %w", err)
	}
	pub, err := key.PublicKey.Bytes()
	if err != nil {
		return nil, fmt.Errorf("vapid: %w", err)
	}
	return &VAPID{key: key, public: base64.RawURLEncoding.EncodeToString(pub), subject: subject}, nil
}

// NewVAPIDKey returns a fresh VAPID private key as a 32-byte scalar.
func NewVAPIDKey() ([]byte, error) {
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	return key.Bytes()
}

// PublicKey returns the public key as browsers want it for
// pushManager.subscribe: base64url, uncompressed point, no padding.
func (v *VAPID) PublicKey() string { return v.public }

// Authorization returns the Authorization header value for a request to
// endpoint: "vapid t=<JWT>,k=<public key>", the JWT's audience being the
// endpoint's origin and its expiry 12 hours after now.
func (v *VAPID) Authorization(endpoint string, now time.Time) (string, error) {
	u, err := url.Parse(endpoint)
	if err != nil || u.Host == "" {
		return "", fmt.Errorf("vapid: endpoint is not an absolute URL")
	}
	claims := jwt.MapClaims{"aud": u.Scheme + "://" + u.Host, "exp": now.Add(12 * time.Hour).Unix(), "sub": v.subject}
	t, err := jwt.NewWithClaims(jwt.SigningMethodES256, claims).SignedString(v.key)
	if err != nil {
		return "", fmt.Errorf("vapid: %w", err)
	}
	return "vapid t=" + t + ",k=" + v.public, nil
}

// WebPushOptions configure a WebPush sender. Zero values are documented.
type WebPushOptions struct {
	TTL    time.Duration    // how long the push service keeps an undelivered notification; zero means 12h
	Client *http.Client     // nil means a client with a 10s timeout that connects to public addresses only
	Now    func() time.Time // nil means time.Now
}

// WebPush is the Web Push Sender.
type WebPush struct {
	vapid *VAPID
	opts  WebPushOptions
}

// NewWebPush returns a Web Push sender signing with vapid.
func NewWebPush(vapid *VAPID, opts WebPushOptions) *WebPush {
	if opts.TTL <= 0 {
		opts.TTL = 12 * time.Hour
	}
	if opts.Client == nil {
		opts.Client = NewClient(false)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &WebPush{vapid: vapid, opts: opts}
}

// Send implements Sender: it POSTs the encrypted payload to the
// subscription's endpoint. 201 (or any 2xx) is success, 404 and 410 mean
// gone, 429 and 5xx are retryable.
func (w *WebPush) Send(ctx context.Context, sub chat.PushSubscription, p Payload) error {
	plain, err := json.Marshal(p)
	if err != nil {
		return err
	}
	body, err := Encrypt(plain, sub.P256dh, sub.Auth)
	if err != nil {
		return err
	}
	authz, err := w.vapid.Authorization(sub.Endpoint, w.opts.Now())
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, sub.Endpoint, bytes.NewReader(body))
	if err != nil {
		return withoutURL("webpush", err)
	}
	req.Header.Set("Authorization", authz)
	req.Header.Set("Content-Encoding", "aes128gcm")
	req.Header.Set("Content-Type", "application/octet-stream")
	req.Header.Set("TTL", strconv.FormatInt(int64(w.opts.TTL/time.Second), 10))
	req.Header.Set("Urgency", "high")
	// A newer notification of the conversation replaces an undelivered one.
	req.Header.Set("Topic", "c"+p.Conv)
	res, err := w.opts.Client.Do(req)
	if err != nil {
		return retryable(nil, withoutURL("webpush", err))
	}
	defer res.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(res.Body, 64<<10))
	switch {
	case res.StatusCode/100 == 2:
		return nil
	case res.StatusCode == http.StatusNotFound || res.StatusCode == http.StatusGone:
		return ErrGone
	case transient(res.StatusCode):
		return retryable(res, statusError("push service", res, ""))
	}
	return statusError("push service", res, "")
}
