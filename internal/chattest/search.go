package chattest

import (
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/natter-chat/natter/internal/chat"
	"github.com/natter-chat/natter/internal/core"
	"github.com/natter-chat/natter/internal/searchtext"
)

// TestSearchIndex runs the chat.SearchIndex conformance suite, driving the
// index with the real indexer (core.Indexer) and real queries (package
// searchtext). open must return a fresh, empty store and its search index
// (usually the same value) and close them when t ends; it is called once
// per subtest, from parallel subtests.
func TestSearchIndex(t *testing.T, open func(t testing.TB) (chat.Store, chat.SearchIndex)) {
	for _, c := range []struct {
		name string
		test func(t *testing.T, f *searchFixture)
	}{
		{"more matches rank higher", testSearchRanking},
		{"pages have no duplicates and no gaps", testSearchPaging},
		{"accents are folded both ways", testSearchAccents},
		{"CJK words are found inside longer runs", testSearchCJK},
		{"edits are reflected", testSearchEdits},
		{"deleted messages are never found", testSearchDeletes},
		{"strangers never find a conversation's messages", testSearchStrangers},
		{"a removed member no longer finds the conversation's messages", testSearchRemovedMember},
		{"a search can be limited to one conversation", testSearchOneConversation},
		{"a new indexer resumes at the stored cursor", testSearchCursorPersists},
		{"an update from a stale cursor writes nothing", testSearchStaleCursor},
		{"concurrent indexers index every message", testSearchConcurrentIndexers},
		{"AsOf leaves out documents of later changes", testSearchAsOf},
		{"only the newest 5,000 matches the user can read are ranked", testSearchNewestMatches},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			s, idx := open(t)
			c.test(t, newSearchFixture(t, s, idx))
		})
	}
}

// searchFixture is a store with three users: alice and bob share a group,
// carol is in none.
type searchFixture struct {
	s                 chat.Store
	idx               chat.SearchIndex
	ids               *IDs
	indexer           *core.Indexer
	alice, bob, carol chat.UserID
	group             chat.ConversationID
	clock             time.Duration
}

func newSearchFixture(t *testing.T, s chat.Store, idx chat.SearchIndex) *searchFixture {
	f := &searchFixture{s: s, idx: idx, ids: NewIDs()}
	// A small batch, so that every test crosses batch boundaries.
	f.indexer = core.NewIndexer(idx, core.SearchOptions{Batch: 3}, nil)
	f.alice = MustCreateUser(t, s, f.ids, "alice").ID
	f.bob = MustCreateUser(t, s, f.ids, "bob").ID
	f.carol = MustCreateUser(t, s, f.ids, "carol").ID
	f.group = MustCreateGroup(t, s, f.ids, f.alice, f.bob).ID
	return f
}

// send appends a message from alice to the group.
func (f *searchFixture) send(t *testing.T, text string) chat.Message {
	t.Helper()
	return f.sendTo(t, f.group, f.alice, text)
}

func (f *searchFixture) sendTo(t *testing.T, conv chat.ConversationID, sender chat.UserID, text string) chat.Message {
	t.Helper()
	f.clock += time.Second
	return MustAppend(t, f.s, f.ids, conv, sender, text, At(f.clock))
}

// index brings the index up to date.
func (f *searchFixture) index(t *testing.T) {
	t.Helper()
	mustNot(t, "CatchUp", f.indexer.CatchUp(t.Context()))
}

// search returns the texts of user's results for query, all pages of at
// most 100.
func (f *searchFixture) search(t *testing.T, user chat.UserID, query string) []string {
	t.Helper()
	return hitTexts(f.query(t, chat.SearchQuery{User: user, Terms: searchtext.QueryTerms(query), Limit: 100}))
}

func (f *searchFixture) query(t *testing.T, q chat.SearchQuery) []chat.SearchHit {
	t.Helper()
	hits, err := f.idx.SearchMessages(t.Context(), q)
	mustNot(t, "SearchMessages", err)
	return hits
}

func sortedTexts(texts []string) []string {
	return slices.Sorted(slices.Values(texts))
}

func hitTexts(hits []chat.SearchHit) []string {
	out := []string{}
	for _, h := range hits {
		out = append(out, h.Message.Text)
	}
	return out
}

func testSearchRanking(t *testing.T, f *searchFixture) {
	// Five words each, so that length plays no part.
	f.send(t, "apple banana cherry date elder")
	f.send(t, "apple apple apple date elder")
	f.send(t, "fig grape honey date elder")
	f.send(t, "apple apple banana date elder")
	f.index(t)
	hits := f.query(t, chat.SearchQuery{User: f.alice, Terms: []string{"apple"}, Limit: 10})
	wantEqual(t, "results, best first", []string{
		"apple apple apple date elder", "apple apple banana date elder", "apple banana cherry date elder",
	}, hitTexts(hits))
	for i := 1; i < len(hits); i++ {
		if hits[i].Rank >= hits[i-1].Rank {
			t.Errorf("rank %d = %v, not below rank %d = %v", i, hits[i].Rank, i-1, hits[i-1].Rank)
		}
	}
	wantEqual(t, "every term must match", []string{"apple apple banana date elder", "apple banana cherry date elder"},
		f.search(t, f.alice, "banana apple"))
}

func testSearchPaging(t *testing.T, f *searchFixture) {
	var want []string
	for i := range 8 {
		text := "pear " + string(rune('a'+i))
		f.send(t, text)
		want = append(want, text)
	}
	f.index(t)
	all := hitTexts(f.query(t, chat.SearchQuery{User: f.alice, Terms: []string{"pear"}, Limit: 100}))
	var paged []string
	for offset := 0; ; offset += 3 {
		page := hitTexts(f.query(t, chat.SearchQuery{User: f.alice, Terms: []string{"pear"}, Offset: offset, Limit: 3}))
		paged = append(paged, page...)
		if len(page) < 3 {
			break
		}
	}
	wantEqual(t, "pages in order", all, paged)
	seen := map[string]bool{}
	for _, text := range paged {
		if seen[text] {
			t.Errorf("%q is on two pages", text)
		}
		seen[text] = true
	}
	if len(seen) != len(want) {
		t.Errorf("pages hold %d messages, want %d", len(seen), len(want))
	}
	wantEqual(t, "equal ranks: newest first", want[len(want)-1], all[0])
}

func testSearchAccents(t *testing.T, f *searchFixture) {
	f.send(t, "un café noir")
	f.send(t, "a CAFE au lait")
	f.send(t, "Crème brûlée")
	f.index(t)
	for _, q := range []string{"cafe", "café", "CAFÉ", "Cafe\u0301"} {
		got := f.search(t, f.alice, q)
		wantEqual(t, "results for "+q, []string{"a CAFE au lait", "un café noir"}, sortedTexts(got))
	}
	wantEqual(t, "brulee", []string{"Crème brûlée"}, f.search(t, f.alice, "creme BRULEE"))
}

func testSearchCJK(t *testing.T, f *searchFixture) {
	f.send(t, "私は東京都に住んでいます")
	f.send(t, "昨日京都に行きました")
	f.send(t, "我们明天在北京见面吧")
	f.send(t, "서울에서 만나요")
	f.index(t)
	for _, c := range []struct {
		query string
		want  []string
	}{
		{"東京", []string{"私は東京都に住んでいます"}},
		{"京都", []string{"昨日京都に行きました", "私は東京都に住んでいます"}},
		{"住んで", []string{"私は東京都に住んでいます"}},
		{"北京", []string{"我们明天在北京见面吧"}},
		{"见面", []string{"我们明天在北京见面吧"}},
		{"서울", []string{"서울에서 만나요"}},
		{"大阪", []string{}},
	} {
		wantEqual(t, "results for "+c.query, c.want, sortedTexts(f.search(t, f.alice, c.query)))
	}
}

func testSearchEdits(t *testing.T, f *searchFixture) {
	m := f.send(t, "the walrus is here")
	f.index(t)
	wantEqual(t, "before the edit", []string{"the walrus is here"}, f.search(t, f.alice, "walrus"))
	_, err := f.s.EditMessage(t.Context(), f.group, m.ID, "the narwhal is here", nil, At(time.Hour))
	mustNot(t, "EditMessage", err)
	f.index(t)
	wantEqual(t, "the old word", []string{}, f.search(t, f.alice, "walrus"))
	wantEqual(t, "the new word", []string{"the narwhal is here"}, f.search(t, f.alice, "narwhal"))
	_, err = f.s.EditMessage(t.Context(), f.group, m.ID, "🙂", nil, At(2*time.Hour))
	mustNot(t, "EditMessage", err)
	f.index(t)
	wantEqual(t, "after an edit to nothing searchable", []string{}, f.search(t, f.alice, "narwhal"))
}

func testSearchDeletes(t *testing.T, f *searchFixture) {
	m := f.send(t, "secret plans")
	f.send(t, "public plans")
	f.index(t)
	_, err := f.s.DeleteMessage(t.Context(), f.group, m.ID, At(time.Hour))
	mustNot(t, "DeleteMessage", err)
	wantEqual(t, "before the indexer saw the delete", []string{"public plans"}, f.search(t, f.alice, "plans"))
	f.index(t)
	wantEqual(t, "after", []string{"public plans"}, f.search(t, f.alice, "plans"))
	wantEqual(t, "the deleted word", []string{}, f.search(t, f.alice, "secret"))
}

func testSearchStrangers(t *testing.T, f *searchFixture) {
	f.send(t, "members only")
	f.index(t)
	wantEqual(t, "a member", []string{"members only"}, f.search(t, f.bob, "members"))
	wantEqual(t, "a stranger", []string{}, f.search(t, f.carol, "members"))
	hits := f.query(t, chat.SearchQuery{User: f.carol, Conv: f.group, Terms: []string{"members"}, Limit: 10})
	wantEqual(t, "a stranger naming the conversation", []string{}, hitTexts(hits))
}

func testSearchRemovedMember(t *testing.T, f *searchFixture) {
	f.send(t, "before bob left")
	f.index(t)
	wantEqual(t, "while a member", []string{"before bob left"}, f.search(t, f.bob, "left"))
	_, err := f.s.RemoveMember(t.Context(), f.group, f.bob)
	mustNot(t, "RemoveMember", err)
	wantEqual(t, "after removal", []string{}, f.search(t, f.bob, "left"))
	f.index(t)
	wantEqual(t, "after removal and indexing", []string{}, f.search(t, f.bob, "left"))
}

func testSearchOneConversation(t *testing.T, f *searchFixture) {
	other := MustCreateGroup(t, f.s, f.ids, f.alice, f.carol).ID
	f.send(t, "lunch in the group")
	f.sendTo(t, other, f.carol, "lunch with carol")
	f.index(t)
	wantEqual(t, "everywhere", []string{"lunch in the group", "lunch with carol"}, sortedTexts(f.search(t, f.alice, "lunch")))
	hits := f.query(t, chat.SearchQuery{User: f.alice, Conv: other, Terms: []string{"lunch"}, Limit: 10})
	wantEqual(t, "in one conversation", []string{"lunch with carol"}, hitTexts(hits))
	if len(hits) == 1 && (hits[0].Message.Conv != other || hits[0].Message.Sender != f.carol || hits[0].Message.Seq != 1) {
		t.Errorf("hit message = %+v, want the stored message", hits[0].Message)
	}
}

func testSearchCursorPersists(t *testing.T, f *searchFixture) {
	var last chat.Message
	for i := range 5 {
		last = f.send(t, "batch message "+string(rune('a'+i)))
	}
	f.index(t)
	cursor, err := f.idx.SearchCursor(t.Context())
	mustNot(t, "SearchCursor", err)
	wantEqual(t, "cursor after indexing", last.Pos, cursor)

	restarted := core.NewIndexer(f.idx, core.SearchOptions{Batch: 3}, nil)
	n, err := restarted.IndexOnce(t.Context())
	mustNot(t, "IndexOnce", err)
	wantEqual(t, "messages indexed again after a restart", 0, n)
	next := f.send(t, "after the restart")
	n, err = restarted.IndexOnce(t.Context())
	mustNot(t, "IndexOnce", err)
	wantEqual(t, "messages indexed after a new send", 1, n)
	cursor, err = f.idx.SearchCursor(t.Context())
	mustNot(t, "SearchCursor", err)
	wantEqual(t, "cursor after the new send", next.Pos, cursor)
	wantEqual(t, "earlier messages", 5, len(f.search(t, f.alice, "batch message")))
	wantEqual(t, "the new message", []string{"after the restart"}, f.search(t, f.alice, "restart"))
}

func testSearchStaleCursor(t *testing.T, f *searchFixture) {
	m := f.send(t, "real words")
	f.index(t)
	ok, err := f.idx.UpdateSearchIndex(t.Context(), m.Pos-1, m.Pos+10,
		[]chat.SearchDoc{{Message: m.ID, Conv: f.group, Pos: m.Pos, Terms: []string{"ghost"}}})
	mustNot(t, "UpdateSearchIndex", err)
	wantEqual(t, "updated from a stale cursor", false, ok)
	cursor, err := f.idx.SearchCursor(t.Context())
	mustNot(t, "SearchCursor", err)
	wantEqual(t, "cursor", m.Pos, cursor)
	wantEqual(t, "the stale document", []string{}, f.search(t, f.alice, "ghost"))
	wantEqual(t, "the real document", []string{"real words"}, f.search(t, f.alice, "real"))
}

func testSearchConcurrentIndexers(t *testing.T, f *searchFixture) {
	var want []string
	var last chat.Message
	for i := range 20 {
		text := "plum number " + string(rune('a'+i))
		last = f.send(t, text)
		want = append(want, text)
	}
	var wg sync.WaitGroup
	errs := make([]error, 3)
	for i := range errs {
		x := core.NewIndexer(f.idx, core.SearchOptions{Batch: 2}, nil)
		wg.Go(func() {
			// An indexer that loses a race indexes nothing that round;
			// each goes on until the index is current.
			for range 100 {
				if _, errs[i] = x.IndexOnce(t.Context()); errs[i] != nil {
					return
				}
				cursor, err := f.idx.SearchCursor(t.Context())
				if err != nil || cursor >= last.Pos {
					errs[i] = err
					return
				}
			}
		})
	}
	wg.Wait()
	for _, err := range errs {
		mustNot(t, "IndexOnce", err)
	}
	wantEqual(t, "every message found once", sortedTexts(want), sortedTexts(f.search(t, f.alice, "plum")))
}

func testSearchAsOf(t *testing.T, f *searchFixture) {
	f.send(t, "kiwi one")
	f.index(t)
	asOf, err := f.idx.SearchCursor(t.Context())
	mustNot(t, "SearchCursor", err)
	f.send(t, "kiwi two")
	f.index(t)
	hits := f.query(t, chat.SearchQuery{User: f.alice, Terms: []string{"kiwi"}, AsOf: asOf, Limit: 10})
	wantEqual(t, "as of the first page", []string{"kiwi one"}, hitTexts(hits))
	wantEqual(t, "now", []string{"kiwi one", "kiwi two"}, sortedTexts(f.search(t, f.alice, "kiwi")))
}
