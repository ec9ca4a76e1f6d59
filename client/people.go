package client

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"

	"github.com/natter-chat/natter/internal/protocol"
)

// Profiles, contacts, blocks, data export and account deletion.
type (
	Profile          = protocol.Profile
	ProfileRequest   = protocol.ProfileRequest
	ProfileResponse  = protocol.ProfileResponse
	ProfilesResponse = protocol.ProfilesResponse
	Related          = protocol.Related
)

// Profile returns a user's profile (GET /v1/users/{id}). A deleted
// account comes back with Deleted set.
func (c *Client) Profile(ctx context.Context, id string) (Profile, error) {
	var r ProfileResponse
	err := c.do(ctx, http.MethodGet, "/v1/users/"+url.PathEscape(id), nil, nil, &r)
	return r.User, err
}

// UpdateProfile changes the caller's profile (PATCH /v1/users/me/profile):
// nil fields stay, "" clears one.
func (c *Client) UpdateProfile(ctx context.Context, req ProfileRequest) (Profile, error) {
	var r ProfileResponse
	err := c.do(ctx, http.MethodPatch, "/v1/users/me/profile", nil, req, &r)
	return r.User, err
}

// SearchPeople finds users by username or display-name prefix
// (GET /v1/users?q=), a page at a time: pass the previous answer's Next
// as after.
func (c *Client) SearchPeople(ctx context.Context, prefix, after string, limit int) (ProfilesResponse, error) {
	v := url.Values{"q": {prefix}}
	if after != "" {
		v.Set("after", after)
	}
	if limit > 0 {
		v.Set("limit", strconv.Itoa(limit))
	}
	var r ProfilesResponse
	err := c.do(ctx, http.MethodGet, "/v1/users", v, nil, &r)
	return r, err
}

// Contacts lists the caller's contacts, oldest first (GET /v1/contacts).
func (c *Client) Contacts(ctx context.Context) ([]Related, error) {
	var r protocol.ContactsResponse
	err := c.do(ctx, http.MethodGet, "/v1/contacts", nil, nil, &r)
	return r.Contacts, err
}

// AddContact adds a user to the caller's contacts (PUT /v1/contacts/{id}).
func (c *Client) AddContact(ctx context.Context, user string) error {
	return c.do(ctx, http.MethodPut, "/v1/contacts/"+url.PathEscape(user), nil, nil, nil)
}

// RemoveContact removes a user from the caller's contacts.
func (c *Client) RemoveContact(ctx context.Context, user string) error {
	return c.do(ctx, http.MethodDelete, "/v1/contacts/"+url.PathEscape(user), nil, nil, nil)
}

// Blocks lists the users the caller blocked, oldest first (GET /v1/blocks).
func (c *Client) Blocks(ctx context.Context) ([]Related, error) {
	var r protocol.BlocksResponse
	err := c.do(ctx, http.MethodGet, "/v1/blocks", nil, nil, &r)
	return r.Blocks, err
}

// Block blocks a user (PUT /v1/blocks/{id}): they can no longer create a
// direct conversation with the caller nor send in one (code "blocked").
func (c *Client) Block(ctx context.Context, user string) error {
	return c.do(ctx, http.MethodPut, "/v1/blocks/"+url.PathEscape(user), nil, nil, nil)
}

// Unblock lifts a block (DELETE /v1/blocks/{id}).
func (c *Client) Unblock(ctx context.Context, user string) error {
	return c.do(ctx, http.MethodDelete, "/v1/blocks/"+url.PathEscape(user), nil, nil, nil)
}

// DeleteAccount deletes the caller's account for good (DELETE
// /v1/users/me), after checking password again. The client's tokens stop
// working.
func (c *Client) DeleteAccount(ctx context.Context, password string) error {
	return c.do(ctx, http.MethodDelete, "/v1/users/me", nil, protocol.DeleteAccountRequest{Password: password}, nil)
}

// Export downloads the caller's data as a ZIP archive (GET
// /v1/users/me/export) and copies it to w, returning the bytes written.
// An archive cut short by the server fails with an error.
func (c *Client) Export(ctx context.Context, w io.Writer) (int64, error) {
	const op = "GET /v1/users/me/export"
	if c.badURL != nil {
		return 0, fmt.Errorf("natter: %s: %w", op, c.badURL)
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.base+"/v1/users/me/export", nil)
	if err != nil {
		return 0, fmt.Errorf("natter: %s: %w", op, err)
	}
	if tok := c.accessToken(); tok != "" {
		req.Header.Set("Authorization", "Bearer "+tok)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return 0, fmt.Errorf("natter: %s: %w", op, err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b, _ := io.ReadAll(io.LimitReader(resp.Body, maxErrorBody))
		return 0, parseError(op, resp.StatusCode, resp.Header, b)
	}
	n, err := io.Copy(w, resp.Body)
	if err != nil {
		return n, fmt.Errorf("natter: %s: %w", op, err)
	}
	return n, nil
}
