package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Options configure a Client.
type Options struct {
	// HTTPClient sends the REST requests. Nil means a client with a 30s
	// request timeout and its own connection pool. Programs that create many
	// Clients (one per user) should share one HTTPClient.
	HTTPClient *http.Client
	// Device names this login in the user's session list, e.g. "laptop".
	// Empty means none.
	Device string
}

// Tokens are the credentials of one login. Register, Login and Refresh
// store them in the Client; Tokens and SetTokens let a program persist and
// reuse them.
type Tokens struct {
	SessionID       string
	AccessToken     string
	AccessExpiresAt time.Time
	RefreshToken    string
}

// Client talks to one Natter server over REST, and opens real-time
// connections to it with Connect. It is safe for concurrent use.
type Client struct {
	base   string // scheme://host[:port][/prefix], no trailing slash
	badURL error  // non-nil when New was given a URL it cannot use
	http   *http.Client
	device string

	// refreshMu serializes Refresh, so that two goroutines never present
	// the same refresh token (the server would take the second use for a
	// theft and revoke the login).
	refreshMu sync.Mutex

	mu     sync.Mutex // guards tokens
	tokens Tokens
}

// New returns a Client for the server at baseURL, e.g.
// "http://127.0.0.1:8080". A baseURL that is not an http(s) URL makes
// every request fail with an error saying so.
func New(baseURL string, opts Options) *Client {
	c := &Client{base: strings.TrimRight(baseURL, "/"), http: opts.HTTPClient, device: opts.Device}
	if c.http == nil {
		c.http = NewHTTPClient()
	}
	u, err := url.Parse(c.base)
	switch {
	case err != nil:
		c.badURL = err
	case u.Scheme != "http" && u.Scheme != "https", u.Host == "":
		c.badURL = fmt.Errorf("base URL %q is not an http:// or https:// URL", baseURL)
	}
	return c
}

// NewHTTPClient returns the HTTP client New uses by default: a 30s request
// timeout and a pool that keeps up to 64 idle connections per host.
func NewHTTPClient() *http.Client {
	tr := &http.Transport{
		Proxy:                 http.ProxyFromEnvironment,
		DialContext:           (&net.Dialer{Timeout: 10 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		MaxIdleConns:          256,
		MaxIdleConnsPerHost:   64,
		IdleConnTimeout:       90 * time.Second,
		TLSHandshakeTimeout:   10 * time.Second,
		ResponseHeaderTimeout: 30 * time.Second,
		ForceAttemptHTTP2:     true,
	}
	return &http.Client{Timeout: 30 * time.Second, Transport: tr}
}

// Tokens returns the credentials of the current login (zero before one).
func (c *Client) Tokens() Tokens {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.tokens
}

// SetTokens replaces the credentials, e.g. with ones saved by an earlier
// run. Later requests and Connect use them.
func (c *Client) SetTokens(t Tokens) {
	c.mu.Lock()
	c.tokens = t
	c.mu.Unlock()
}

func (c *Client) accessToken() string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.tokens.AccessToken
}

func (c *Client) storeAuth(a AuthResponse) {
	c.SetTokens(Tokens{SessionID: a.SessionID, AccessToken: a.AccessToken, AccessExpiresAt: a.AccessExpiresAt, RefreshToken: a.RefreshToken})
}

// Register creates an account and logs it in (POST /v1/accounts).
// Errors: username_taken, invalid_username, weak_password, rate_limited.
func (c *Client) Register(ctx context.Context, username, password string) (AuthResponse, error) {
	var a AuthResponse
	req := CredentialsRequest{Username: username, Password: password, Device: c.device}
	if err := c.do(ctx, http.MethodPost, "/v1/accounts", nil, req, &a); err != nil {
		return AuthResponse{}, err
	}
	c.storeAuth(a)
	return a, nil
}

// Login starts a new session (POST /v1/sessions).
// Errors: invalid_credentials, rate_limited.
func (c *Client) Login(ctx context.Context, username, password string) (AuthResponse, error) {
	var a AuthResponse
	req := CredentialsRequest{Username: username, Password: password, Device: c.device}
	if err := c.do(ctx, http.MethodPost, "/v1/sessions", nil, req, &a); err != nil {
		return AuthResponse{}, err
	}
	c.storeAuth(a)
	return a, nil
}

// Refresh trades the stored refresh token for a new access and refresh
// token pair (POST /v1/sessions/refresh) and stores them; the old refresh
// token is dead afterwards. Concurrent calls are coalesced: a caller that
// waited while another refreshed gets the new tokens without a request
// (its AuthResponse then carries only the tokens and session id).
// Errors: unauthenticated (the login ended), refresh_token_reused (the
// login was revoked because an old refresh token was presented).
func (c *Client) Refresh(ctx context.Context) (AuthResponse, error) {
	seen := c.Tokens().RefreshToken
	c.refreshMu.Lock()
	defer c.refreshMu.Unlock()
	cur := c.Tokens()
	if cur.RefreshToken != seen && cur.RefreshToken != "" {
		return AuthResponse{SessionID: cur.SessionID, AccessToken: cur.AccessToken, AccessExpiresAt: cur.AccessExpiresAt, RefreshToken: cur.RefreshToken}, nil
	}
	if cur.RefreshToken == "" {
		return AuthResponse{}, errors.New("natter: refresh: no refresh token (log in first)")
	}
	var a AuthResponse
	if err := c.do(ctx, http.MethodPost, "/v1/sessions/refresh", nil, RefreshRequest{RefreshToken: cur.RefreshToken}, &a); err != nil {
		return AuthResponse{}, err
	}
	c.storeAuth(a)
	return a, nil
}

// Logout ends the current session (DELETE /v1/sessions/current) and
// forgets the tokens.
func (c *Client) Logout(ctx context.Context) error {
	if err := c.do(ctx, http.MethodDelete, "/v1/sessions/current", nil, nil, nil); err != nil {
		return err
	}
	c.SetTokens(Tokens{})
	return nil
}

// Sessions lists the user's live sessions (GET /v1/sessions).
func (c *Client) Sessions(ctx context.Context) ([]Session, error) {
	var r SessionsResponse
	err := c.do(ctx, http.MethodGet, "/v1/sessions", nil, nil, &r)
	return r.Sessions, err
}

// RevokeSession ends one of the user's sessions (DELETE /v1/sessions/{id}).
// Errors: not_found.
func (c *Client) RevokeSession(ctx context.Context, id string) error {
	return c.do(ctx, http.MethodDelete, "/v1/sessions/"+url.PathEscape(id), nil, nil, nil)
}

// Me returns the logged-in user (GET /v1/users/me).
func (c *Client) Me(ctx context.Context) (User, error) {
	var r UserResponse
	err := c.do(ctx, http.MethodGet, "/v1/users/me", nil, nil, &r)
	return r.User, err
}

// CreateDirect returns the direct conversation with the user whose id is
// other, creating it when it does not exist yet.
func (c *Client) CreateDirect(ctx context.Context, other string) (Conversation, error) {
	return c.createConversation(ctx, CreateConversationRequest{Kind: "direct", Members: []string{other}})
}

// CreateGroup creates a group conversation with the caller as owner and
// members (user ids; the caller need not be listed).
func (c *Client) CreateGroup(ctx context.Context, title string, members []string) (Conversation, error) {
	if members == nil {
		members = []string{}
	}
	return c.createConversation(ctx, CreateConversationRequest{Kind: "group", Title: title, Members: members})
}

func (c *Client) createConversation(ctx context.Context, req CreateConversationRequest) (Conversation, error) {
	var r ConversationResponse
	err := c.do(ctx, http.MethodPost, "/v1/conversations", nil, req, &r)
	return r.Conversation, err
}

// Conversations lists the user's conversations, most recent activity
// first (GET /v1/conversations).
func (c *Client) Conversations(ctx context.Context) ([]Conversation, error) {
	var r ConversationsResponse
	err := c.do(ctx, http.MethodGet, "/v1/conversations", nil, nil, &r)
	return r.Conversations, err
}

// Conversation returns one conversation of the user. Errors: not_found.
func (c *Client) Conversation(ctx context.Context, id string) (Conversation, error) {
	var r ConversationResponse
	err := c.do(ctx, http.MethodGet, convPath(id), nil, nil, &r)
	return r.Conversation, err
}

// AddMembers adds users to a group and returns the updated conversation.
// Errors: not_found, forbidden.
func (c *Client) AddMembers(ctx context.Context, conv string, members []string) (Conversation, error) {
	var r ConversationResponse
	err := c.do(ctx, http.MethodPost, convPath(conv)+"/members", nil, MembersRequest{Members: members}, &r)
	return r.Conversation, err
}

// RemoveMember removes user from conv; passing the caller's own id leaves
// the conversation. Errors: not_found, forbidden.
func (c *Client) RemoveMember(ctx context.Context, conv, user string) error {
	return c.do(ctx, http.MethodDelete, convPath(conv)+"/members/"+url.PathEscape(user), nil, nil, nil)
}

// SetRole changes a member's role in a group ("owner", "admin" or
// "member"); only owners may (PATCH /v1/conversations/{id}/members/{user}).
func (c *Client) SetRole(ctx context.Context, conv, user, role string) (Conversation, error) {
	var r ConversationResponse
	err := c.do(ctx, http.MethodPatch, convPath(conv)+"/members/"+url.PathEscape(user), nil, RoleRequest{Role: role}, &r)
	return r.Conversation, err
}

// HistoryQuery selects a page of messages. With Forward set or After > 0
// the page holds the messages after seq After in ascending seq order
// (Forward with After 0 starts at the first message); otherwise the
// newest messages (before seq Before when it is > 0) in descending order.
// Limit zero means the server's default page size.
type HistoryQuery struct {
	Before  int64
	After   int64
	Forward bool
	Limit   int
}

// History returns a page of a conversation's messages
// (GET /v1/conversations/{id}/messages). HasMore says whether another page
// exists in the same direction.
func (c *Client) History(ctx context.Context, conv string, q HistoryQuery) (MessagesResponse, error) {
	v := url.Values{}
	if q.Before > 0 {
		v.Set("before", strconv.FormatInt(q.Before, 10))
	}
	if q.After > 0 || q.Forward {
		v.Set("after", strconv.FormatInt(q.After, 10))
	}
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	var r MessagesResponse
	err := c.do(ctx, http.MethodGet, convPath(conv)+"/messages", v, nil, &r)
	return r, err
}

// Send stores a message (POST /v1/conversations/{id}/messages). clientID
// is the idempotency key: resending the same clientID returns the
// original message with Duplicate set, so a send whose outcome is unknown
// (timeout, dropped connection) can safely be retried.
// Errors: not_found, too_large, invalid_argument, rate_limited.
func (c *Client) Send(ctx context.Context, conv, clientID, text string) (MessageResponse, error) {
	var r MessageResponse
	err := c.do(ctx, http.MethodPost, convPath(conv)+"/messages", nil, SendRequest{ClientID: clientID, Text: text}, &r)
	return r, err
}

// MarkRead raises the user's read watermark in conv to seq
// (POST /v1/conversations/{id}/read). The server never lowers it.
func (c *Client) MarkRead(ctx context.Context, conv string, seq int64) (ReadResponse, error) {
	var r ReadResponse
	err := c.do(ctx, http.MethodPost, convPath(conv)+"/read", nil, ReadRequest{Seq: seq}, &r)
	return r, err
}

func convPath(id string) string { return "/v1/conversations/" + url.PathEscape(id) }

// maxResponseBody bounds a successful response body.
const maxResponseBody = 32 << 20

// do sends one request with the stored access token, and decodes a 2xx
// answer into out (when out is non-nil) or a non-2xx answer into an
// *Error.
func (c *Client) do(ctx context.Context, method, path string, query url.Values, in, out any) error {
	op := method + " " + path
	if c.badURL != nil {
		return fmt.Errorf("natter: %s: %w", op, c.badURL)
	}
	u := c.base + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return fmt.Errorf("natter: %s: encode request: %w", op, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return fmt.Errorf("natter: %s: %w", op, err)
	}
	req.Header.Set("Accept", "application/json")
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if tok := c.accessToken(); tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return fmt.Errorf("natter: %s: %w", op, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		return parseError(op, resp.StatusCode, resp.Header, b)
	}
	if out == nil || resp.StatusCode == http.StatusNoContent {
		_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, maxErrorBody))
		return nil
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, maxResponseBody)).Decode(out); err != nil {
		return fmt.Errorf("natter: %s: decode response: %w", op, err)
	}
	return nil
}
