package client

import (
	"context"
	"net/http"
	"net/url"
	"strconv"

	"github.com/natter-chat/natter/internal/protocol"
)

// Search result types, re-exported like the others (see types.go).
type (
	SearchResponse = protocol.SearchResponse
	SearchResult   = protocol.SearchResult
)

// SearchQuery is a message search: Query's words must all match.
type SearchQuery struct {
	Query  string
	Conv   string // only this conversation; "" for all of the user's
	Limit  int    // results per page; zero means the server's default (20)
	Cursor string // "" for the first page, else the previous page's NextCursor
}

// Search finds messages the user can read (GET /v1/search), best first.
// Messages become searchable shortly after they are sent (the server
// indexes in the background).
// Errors: invalid_argument (empty or too long query, bad limit or
// cursor), not_found (Conv is not one of the user's conversations).
func (c *Client) Search(ctx context.Context, q SearchQuery) (SearchResponse, error) {
	v := url.Values{"q": {q.Query}}
	if q.Conv != "" {
		v.Set("conv", q.Conv)
	}
	if q.Limit > 0 {
		v.Set("limit", strconv.Itoa(q.Limit))
	}
	if q.Cursor != "" {
		v.Set("cursor", q.Cursor)
	}
	var r SearchResponse
	err := c.do(ctx, http.MethodGet, "/v1/search", v, nil, &r)
	return r, err
}
