package push

import (
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/x509"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/natter-chat/natter/internal/chat"
)

// APNsOptions configure the APNs sender. Key, KeyID, TeamID and Topic are
// required.
type APNsOptions struct {
	URL    string            // the APNs base URL; empty means https://api.push.apple.com
	Key    *ecdsa.PrivateKey // the provider token signing key (the .p8 file from Apple)
	KeyID  string            // its key id
	TeamID string            // the developer team id (the token's issuer)
	Topic  string            // the app's bundle id (apns-topic)
	Client *http.Client      // nil means NewClient(false); APNs needs HTTP/2, which it negotiates over TLS
	Now    func() time.Time  // nil means time.Now
}

// APNs is the Apple Push Notification service Sender (HTTP/2 provider
// API with token-based authentication).
type APNs struct {
	opts APNsOptions

	mu      sync.Mutex
	token   string    // the current provider token; guarded by mu
	tokenAt time.Time // when it was signed; guarded by mu
}

// ParseAPNsKey parses the PKCS #8 PEM (.p8) key Apple hands out.
func ParseAPNsKey(pemBytes []byte) (*ecdsa.PrivateKey, error) {
	block, _ := pem.Decode(pemBytes)
	if block == nil {
		return nil, errors.New("apns: the key file is not PEM")
	}
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("apns: %w", err)
	}
	ec, ok := k.(*ecdsa.PrivateKey)
	if !ok {
		return nil, errors.New("apns: the key is not an ECDSA key")
	}
	return ec, nil
}

// NewAPNs returns an APNs sender.
func NewAPNs(opts APNsOptions) (*APNs, error) {
	if opts.Key == nil || opts.KeyID == "" || opts.TeamID == "" || opts.Topic == "" {
		return nil, errors.New("apns: key, key id, team id and topic are all required")
	}
	if opts.URL == "" {
		opts.URL = "https://api.push.apple.com"
	}
	opts.URL = strings.TrimRight(opts.URL, "/")
	if opts.Client == nil {
		opts.Client = NewClient(false)
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	return &APNs{opts: opts}, nil
}

// providerToken returns a provider token, signing a new one when the
// current one is 40 minutes old (APNs refuses tokens older than an hour
// and signing more often than every 20 minutes) or when renew is set.
func (a *APNs) providerToken(renew bool) (string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	now := a.opts.Now()
	if a.token != "" && !renew && now.Sub(a.tokenAt) < 40*time.Minute {
		return a.token, nil
	}
	t := jwt.NewWithClaims(jwt.SigningMethodES256, jwt.MapClaims{"iss": a.opts.TeamID, "iat": now.Unix()})
	t.Header["kid"] = a.opts.KeyID
	s, err := t.SignedString(a.opts.Key)
	if err != nil {
		return "", fmt.Errorf("apns: %w", err)
	}
	a.token, a.tokenAt = s, now
	return s, nil
}

type apnsAlert struct {
	Title string `json:"title"`
	Body  string `json:"body,omitempty"`
}

type apnsBody struct {
	APS struct {
		Alert    apnsAlert `json:"alert"`
		Sound    string    `json:"sound"`
		ThreadID string    `json:"thread-id"`
	} `json:"aps"`
	Natter Payload `json:"natter"`
}

// Send implements Sender: POST /3/device/<token>. 410, or 400 with reason
// BadDeviceToken, means gone; 429 and 5xx are retryable; 403
// ExpiredProviderToken renews the provider token and is retryable.
func (a *APNs) Send(ctx context.Context, sub chat.PushSubscription, p Payload) error {
	var b apnsBody
	b.APS.Alert = apnsAlert{Title: p.Title, Body: p.Body}
	b.APS.Sound = "default"
	b.APS.ThreadID = "conv-" + p.Conv
	b.Natter = p
	body, err := json.Marshal(b)
	if err != nil {
		return err
	}
	token, err := a.providerToken(false)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, a.opts.URL+"/3/device/"+url.PathEscape(sub.Endpoint), bytes.NewReader(body))
	if err != nil {
		return withoutURL("apns", err)
	}
	req.Header.Set("authorization", "bearer "+token)
	req.Header.Set("apns-topic", a.opts.Topic)
	req.Header.Set("apns-push-type", "alert")
	req.Header.Set("apns-priority", "10")
	req.Header.Set("apns-collapse-id", "conv-"+p.Conv)
	req.Header.Set("apns-expiration", fmt.Sprint(a.opts.Now().Add(12*time.Hour).Unix()))
	req.Header.Set("content-type", "application/json")
	res, err := a.opts.Client.Do(req)
	if err != nil {
		return retryable(nil, withoutURL("apns", err))
	}
	defer res.Body.Close()
	var answer struct {
		Reason string `json:"reason"`
	}
	_ = json.NewDecoder(io.LimitReader(res.Body, 64<<10)).Decode(&answer)
	switch {
	case res.StatusCode == http.StatusOK:
		return nil
	case res.StatusCode == http.StatusGone,
		res.StatusCode == http.StatusBadRequest && (answer.Reason == "BadDeviceToken" || answer.Reason == "DeviceTokenNotForTopic"):
		return ErrGone
	case res.StatusCode == http.StatusForbidden && answer.Reason == "ExpiredProviderToken":
		if _, err := a.providerToken(true); err != nil {
			return err
		}
		return retryable(res, statusError("APNs", res, answer.Reason))
	case transient(res.StatusCode):
		return retryable(res, statusError("APNs", res, answer.Reason))
	}
	return statusError("APNs", res, answer.Reason)
}
