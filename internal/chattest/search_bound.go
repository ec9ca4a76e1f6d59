package chattest

import (
	"testing"
	"time"

	"github.com/natter-chat/natter/internal/chat"
	"github.com/natter-chat/natter/internal/core"
)

// searchRanked is how many of the newest matches a user can read a search
// ranks (docs/protocol.md, "Message search"): older matches are not
// returned, however well they would rank.
const searchRanked = 5000

// testSearchNewestMatches stores one message that would rank first and,
// after it, searchRanked weaker matches in a conversation alice is not in.
func testSearchNewestMatches(t *testing.T, f *searchFixture) {
	best := f.send(t, "needle needle needle hay")
	other := MustCreateGroup(t, f.s, f.ids, f.carol, f.bob).ID
	drafts := make([]chat.Draft, 0, 500)
	for i := range searchRanked {
		f.clock += time.Millisecond
		id := chat.MessageID(f.ids.NextID())
		drafts = append(drafts, chat.Draft{ID: id, Conv: other, Sender: f.carol, ClientID: "n" + id.String(),
			Text: "needle hay hay hay", SentAt: At(f.clock)})
		if len(drafts) == cap(drafts) || i == searchRanked-1 {
			res, err := f.s.AppendMessages(t.Context(), drafts)
			mustNot(t, "AppendMessages", err)
			for _, r := range res {
				mustNot(t, "AppendMessages", r.Err)
			}
			drafts = drafts[:0]
		}
	}
	// The fixture's indexer takes 3 messages a batch; this one, the default.
	mustNot(t, "CatchUp", core.NewIndexer(f.idx, core.SearchOptions{}, nil).CatchUp(t.Context()))

	first := func(q chat.SearchQuery) []chat.SearchHit {
		t.Helper()
		q.Terms, q.Limit = []string{"needle"}, 100
		hits := f.query(t, q)
		if len(hits) == 0 {
			t.Fatalf("no results for %+v", q)
		}
		return hits
	}
	hits := first(chat.SearchQuery{User: f.alice})
	wantEqual(t, "alice's results: the matches she cannot read take none of the newest places", []chat.MessageID{best.ID}, hitIDs(hits))
	hits = first(chat.SearchQuery{User: f.bob})
	wantEqual(t, "bob's first page: results", 100, len(hits))
	for _, h := range hits {
		if h.Message.ID == best.ID {
			t.Errorf("bob found %q, older than the newest %d matches he can read", best.Text, searchRanked)
		}
	}
	hits = first(chat.SearchQuery{User: f.bob, Conv: f.group})
	wantEqual(t, "bob's results in the group: other conversations' matches take none of its places", []chat.MessageID{best.ID}, hitIDs(hits))
}

func hitIDs(hits []chat.SearchHit) []chat.MessageID {
	out := []chat.MessageID{}
	for _, h := range hits {
		out = append(out, h.Message.ID)
	}
	return out
}
