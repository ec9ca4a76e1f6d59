package push

import (
	"bytes"
	"context"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"github.com/natter-chat/natter/internal/chat"
)

// FCMScope is the OAuth scope FCM's HTTP v1 API needs.
const FCMScope = "https://www.googleapis.com/auth/firebase.messaging"

// FCMOptions configure the FCM sender. Project and Token are required.
type FCMOptions struct {
	URL     string // the FCM base URL; empty means https://fcm.googleapis.com
	Project string // the Firebase project id
	// Token returns an OAuth 2 access token; renew asks for a fresh one
	// (the last was refused). See TokenFromFile.
	Token  func(ctx context.Context, renew bool) (string, error)
	Client *http.Client // nil means NewClient(false)
}

// FCM is the Firebase Cloud Messaging (HTTP v1) Sender.
type FCM struct {
	opts FCMOptions
}

// NewFCM returns an FCM sender.
func NewFCM(opts FCMOptions) (*FCM, error) {
	if opts.Project == "" || opts.Token == nil {
		return nil, errors.New("fcm: project and token are required")
	}
	if opts.URL == "" {
		opts.URL = "https://fcm.googleapis.com"
	}
	opts.URL = strings.TrimRight(opts.URL, "/")
	if opts.Client == nil {
		opts.Client = NewClient(false)
	}
	return &FCM{opts: opts}, nil
}

type fcmMessage struct {
	Message struct {
		Token        string            `json:"token"`
		Notification fcmNotification   `json:"notification"`
		Data         map[string]string `json:"data"`
		Android      struct {
			CollapseKey string `json:"collapse_key"`
			Priority    string `json:"priority"`
		} `json:"android"`
	} `json:"message"`
}

type fcmNotification struct {
	Title string `json:"title"`
	Body  string `json:"body,omitempty"`
}

// Send implements Sender: POST /v1/projects/<project>/messages:send. 404
// (UNREGISTERED) means gone; 429 and 5xx are retryable; 401 renews the
// access token and is retryable.
func (f *FCM) Send(ctx context.Context, sub chat.PushSubscription, p Payload) error {
	var m fcmMessage
	m.Message.Token = sub.Endpoint
	m.Message.Notification = fcmNotification{Title: p.Title, Body: p.Body}
	m.Message.Data = map[string]string{"conv": p.Conv, "message_id": p.MessageID, "count": strconv.Itoa(p.Count)}
	m.Message.Android.CollapseKey = "conv-" + p.Conv
	m.Message.Android.Priority = "high"
	body, err := json.Marshal(m)
	if err != nil {
		return err
	}
	token, err := f.opts.Token(ctx, false)
	if err != nil {
		return retryable(nil, fmt.Errorf("fcm: access token: %w", err))
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost,
		f.opts.URL+"/v1/projects/"+url.PathEscape(f.opts.Project)+"/messages:send", bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", "Bearer "+token)
	req.Header.Set("Content-Type", "application/json")
	res, err := f.opts.Client.Do(req)
	if err != nil {
		return retryable(nil, withoutURL("fcm", err))
	}
	defer res.Body.Close()
	var answer struct {
		Error struct {
			Status string `json:"status"`
		} `json:"error"`
	}
	_ = json.NewDecoder(io.LimitReader(res.Body, 64<<10)).Decode(&answer)
	switch {
	case res.StatusCode == http.StatusOK:
		return nil
	case res.StatusCode == http.StatusNotFound:
		return ErrGone
	case res.StatusCode == http.StatusUnauthorized:
		if _, err := f.opts.Token(ctx, true); err != nil {
			return retryable(nil, fmt.Errorf("fcm: access token: %w", err))
		}
		return retryable(res, statusError("FCM", res, answer.Error.Status))
	case transient(res.StatusCode):
		return retryable(res, statusError("FCM", res, answer.Error.Status))
	}
	return statusError("FCM", res, answer.Error.Status)
}

// TokenFromFile returns an FCM access token source for the file at path:
// a Google service account key (JSON with "type": "service_account"), for
// which it runs the OAuth 2 JWT bearer flow against the key's token_uri
// and caches the token until a minute before it expires; or, for any other
// file, a static access token (the file's trimmed contents, re-read at
// most once a minute, so that an outside process can rotate it).
func TokenFromFile(path string, client *http.Client, now func() time.Time) (func(ctx context.Context, renew bool) (string, error), error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("fcm token file: %w", err)
	}
	if client == nil {
		client = &http.Client{Timeout: 10 * time.Second}
	}
	if now == nil {
		now = time.Now
	}
	var sa serviceAccount
	if json.Unmarshal(data, &sa) == nil && sa.Type == "service_account" {
		key, err := jwt.ParseRSAPrivateKeyFromPEM([]byte(sa.PrivateKey))
		if err != nil {
			return nil, fmt.Errorf("fcm service account: private_key: %w", err)
		}
		if sa.ClientEmail == "" || sa.TokenURI == "" {
			return nil, errors.New("fcm service account: client_email and token_uri are required")
		}
		c := &tokenCache{now: now, fetch: func(ctx context.Context) (string, time.Duration, error) {
			return sa.exchange(ctx, client, key, now())
		}}
		return c.get, nil
	}
	if strings.TrimSpace(string(data)) == "" {
		return nil, errors.New("fcm token file is empty")
	}
	c := &tokenCache{now: now, fetch: func(context.Context) (string, time.Duration, error) {
		data, err := os.ReadFile(path)
		if err != nil {
			return "", 0, err
		}
		return strings.TrimSpace(string(data)), time.Minute, nil
	}}
	return c.get, nil
}

// tokenCache keeps an access token until it expires.
type tokenCache struct {
	now   func() time.Time
	fetch func(ctx context.Context) (token string, ttl time.Duration, err error)

	mu      sync.Mutex
	token   string    // guarded by mu
	expires time.Time // guarded by mu
}

func (c *tokenCache) get(ctx context.Context, renew bool) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.token != "" && !renew && c.now().Before(c.expires) {
		return c.token, nil
	}
	token, ttl, err := c.fetch(ctx)
	if err != nil {
		return "", err
	}
	c.token, c.expires = token, c.now().Add(ttl)
	return token, nil
}

type serviceAccount struct {
	Type        string `json:"type"`
	ClientEmail string `json:"client_email"`
	PrivateKey  string `json:"private_key"`
	TokenURI    string `json:"token_uri"`
}

// exchange runs the JWT bearer grant (RFC 7523) and returns the access
// token and how long to keep it.
func (sa serviceAccount) exchange(ctx context.Context, client *http.Client, key *rsa.PrivateKey, now time.Time) (string, time.Duration, error) {
	assertion, err := jwt.NewWithClaims(jwt.SigningMethodRS256, jwt.MapClaims{
		"iss": sa.ClientEmail, "scope": FCMScope, "aud": sa.TokenURI,
		"iat": now.Unix(), "exp": now.Add(time.Hour).Unix(),
	}).SignedString(key)
	if err != nil {
		return "", 0, err
	}
	form := url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:jwt-bearer"}, "assertion": {assertion}}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, sa.TokenURI, strings.NewReader(form.Encode()))
	if err != nil {
		return "", 0, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	res, err := client.Do(req)
	if err != nil {
		return "", 0, err
	}
	defer res.Body.Close()
	if res.StatusCode != http.StatusOK {
		return "", 0, fmt.Errorf("token endpoint answered %d", res.StatusCode)
	}
	var tok struct {
		AccessToken string `json:"access_token"`
		ExpiresIn   int64  `json:"expires_in"`
	}
	if err := json.NewDecoder(io.LimitReader(res.Body, 64<<10)).Decode(&tok); err != nil || tok.AccessToken == "" {
		return "", 0, errors.New("token endpoint gave no access_token")
	}
	ttl := max(time.Duration(tok.ExpiresIn)*time.Second-time.Minute, 0)
	return tok.AccessToken, ttl, nil
}
