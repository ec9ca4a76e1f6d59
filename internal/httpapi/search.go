package httpapi

import (
	"net/http"

	"github.com/natter-chat/natter/internal/chat"
	"github.com/natter-chat/natter/internal/core"
	"github.com/natter-chat/natter/internal/protocol"
	"github.com/natter-chat/natter/internal/searchtext"
)

// search serves GET /v1/search?q=WORDS[&conv=ID][&limit=N][&cursor=TOKEN].
func (a *API) search(w http.ResponseWriter, r *http.Request, p core.Principal) error {
	q := r.URL.Query()
	req := core.SearchRequest{Query: q.Get("q"), Cursor: q.Get("cursor")}
	if s := q.Get("conv"); s != "" {
		id, err := chat.ParseID("conv", s)
		if err != nil {
			return err
		}
		req.Conv = chat.ConversationID(id)
	}
	limit, _, err := queryInt(r, "limit")
	if err != nil {
		return err
	}
	req.Limit = int(min(limit, core.MaxSearchLimit+1))
	page, err := a.svc.Search(r.Context(), p, req)
	if err != nil {
		return err
	}
	out := protocol.SearchResponse{Results: make([]protocol.SearchResult, len(page.Results)), NextCursor: page.NextCursor}
	for i, res := range page.Results {
		out.Results[i] = protocol.SearchResult{
			Message: protocol.FromMessage(res.Message), Snippet: res.Snippet,
			Highlights: highlights(res.Highlights), Rank: res.Rank,
		}
	}
	writeJSON(w, http.StatusOK, out)
	return nil
}

// highlights converts highlights to their wire form, [start, end) pairs.
func highlights(hs []searchtext.Highlight) [][2]int {
	out := make([][2]int, len(hs))
	for i, h := range hs {
		out[i] = [2]int{h.Start, h.End}
	}
	return out
}
