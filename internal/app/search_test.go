package app_test

import (
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/natter-chat/natter/client"
	"github.com/natter-chat/natter/internal/app"
)

// fastIndexing makes the search indexer look for changes every 20ms.
func fastIndexing(cfg *app.Config) { cfg.SearchInterval = 20 * time.Millisecond }

// searchTexts returns the texts of c's results for q (first page of 100).
func searchTexts(t testing.TB, c *client.Client, q client.SearchQuery) []string {
	t.Helper()
	q.Limit = 100
	res, err := c.Search(ctxT(t), q)
	if err != nil {
		t.Fatalf("Search(%q): %v", q.Query, err)
	}
	out := []string{}
	for _, r := range res.Results {
		out = append(out, r.Message.Text)
	}
	return out
}

// waitSearch polls until c's search for query finds exactly n messages:
// indexing runs in the background, so a sent message becomes searchable
// shortly after its send returns.
func waitSearch(t testing.TB, c *client.Client, query string, n int) []string {
	t.Helper()
	var got []string
	eventually(t, 20*time.Second, "search "+query+" finds the indexed messages", func() bool {
		got = searchTexts(t, c, client.SearchQuery{Query: query})
		return len(got) == n
	})
	return got
}

func TestSearch_Messages(t *testing.T) {
	n := startNode(t, "", fastIndexing)
	alice, _ := n.user(t, "alice")
	bob, bobID := n.user(t, "bob")
	mallory, _ := n.user(t, "mallory")
	group, err := alice.CreateGroup(ctxT(t), "lunch", []string{bobID})
	if err != nil {
		t.Fatalf("CreateGroup: %v", err)
	}
	for _, text := range []string{"Rendez-vous au Café à midi", "東京都で会いましょう", "nothing to see"} {
		if _, err := alice.Send(ctxT(t), group.ID, "c-"+text, text); err != nil {
			t.Fatalf("Send: %v", err)
		}
	}

	t.Run("members find messages, accents folded, with highlights", func(t *testing.T) {
		waitSearch(t, bob, "cafe", 1)
		res, err := bob.Search(ctxT(t), client.SearchQuery{Query: "CAFE midi", Conv: group.ID})
		if err != nil {
			t.Fatalf("Search: %v", err)
		}
		if len(res.Results) != 1 || res.NextCursor != "" {
			t.Fatalf("results = %+v, want one and no next page", res)
		}
		r := res.Results[0]
		if r.Message.Conv != group.ID || r.Snippet != "Rendez-vous au Café à midi" {
			t.Errorf("result = %+v", r)
		}
		var marked []string
		for _, h := range r.Highlights {
			marked = append(marked, string([]rune(r.Snippet)[h[0]:h[1]]))
		}
		if strings.Join(marked, ",") != "Café,midi" {
			t.Errorf("highlighted %q, want Café and midi", marked)
		}
	})
	t.Run("a CJK word inside a sentence is found", func(t *testing.T) {
		// Indexed in the background, possibly in a later batch than "cafe".
		if got := waitSearch(t, bob, "東京", 1); got[0] != "東京都で会いましょう" {
			t.Errorf("results = %q", got)
		}
	})
	t.Run("a stranger finds nothing and may not name the conversation", func(t *testing.T) {
		if got := searchTexts(t, mallory, client.SearchQuery{Query: "cafe"}); len(got) != 0 {
			t.Errorf("mallory found %q", got)
		}
		_, err := mallory.Search(ctxT(t), client.SearchQuery{Query: "cafe", Conv: group.ID})
		if client.ErrorCode(err) != "not_found" {
			t.Errorf("search in a conversation mallory is not in: %v, want not_found", err)
		}
	})
}

func TestSearch_EditsDeletesAndRemovals(t *testing.T) {
	n := startNode(t, "", fastIndexing)
	alice, _ := n.user(t, "alice")
	bob, bobID := n.user(t, "bob")
	group, err := alice.CreateGroup(ctxT(t), "g", []string{bobID})
	if err != nil {
		t.Fatalf("CreateGroup: %v", err)
	}
	sent, err := alice.Send(ctxT(t), group.ID, "c1", "the walrus sings")
	if err != nil {
		t.Fatalf("Send: %v", err)
	}
	if _, err := alice.Send(ctxT(t), group.ID, "c2", "the walrus dances"); err != nil {
		t.Fatalf("Send: %v", err)
	}
	waitSearch(t, bob, "walrus", 2)

	if _, err := alice.Edit(ctxT(t), group.ID, sent.Message.ID, "the narwhal sings"); err != nil {
		t.Fatalf("Edit: %v", err)
	}
	waitSearch(t, bob, "narwhal", 1)
	if got := searchTexts(t, bob, client.SearchQuery{Query: "walrus"}); len(got) != 1 || got[0] != "the walrus dances" {
		t.Errorf("after the edit, walrus finds %q", got)
	}

	if _, err := alice.Delete(ctxT(t), group.ID, sent.Message.ID); err != nil {
		t.Fatalf("Delete: %v", err)
	}
	// A deleted message is never returned, even before the indexer runs.
	if got := searchTexts(t, bob, client.SearchQuery{Query: "narwhal"}); len(got) != 0 {
		t.Errorf("after the delete, narwhal finds %q", got)
	}

	if err := alice.RemoveMember(ctxT(t), group.ID, bobID); err != nil {
		t.Fatalf("RemoveMember: %v", err)
	}
	if got := searchTexts(t, bob, client.SearchQuery{Query: "walrus"}); len(got) != 0 {
		t.Errorf("a removed member finds %q", got)
	}
	if got := searchTexts(t, alice, client.SearchQuery{Query: "walrus"}); len(got) != 1 {
		t.Errorf("alice finds %q, want the remaining message", got)
	}
}

func TestSearch_Paging(t *testing.T) {
	n := startNode(t, "", fastIndexing)
	alice, _ := n.user(t, "alice")
	group, err := alice.CreateGroup(ctxT(t), "g", nil)
	if err != nil {
		t.Fatalf("CreateGroup: %v", err)
	}
	for i := range 7 {
		id := string(rune('a' + i))
		if _, err := alice.Send(ctxT(t), group.ID, "c"+id, "kiwi number "+id); err != nil {
			t.Fatalf("Send: %v", err)
		}
	}
	waitSearch(t, alice, "kiwi", 7)
	seen := map[string]bool{}
	q := client.SearchQuery{Query: "kiwi", Limit: 3}
	for pages := 1; ; pages++ {
		res, err := alice.Search(ctxT(t), q)
		if err != nil {
			t.Fatalf("Search page %d: %v", pages, err)
		}
		for _, r := range res.Results {
			if seen[r.Message.ID] {
				t.Errorf("message %s on two pages", r.Message.ID)
			}
			seen[r.Message.ID] = true
		}
		if res.NextCursor == "" {
			if pages != 3 {
				t.Errorf("%d pages, want 3", pages)
			}
			break
		}
		if pages > 5 {
			t.Fatal("paging does not end")
		}
		q.Cursor = res.NextCursor
	}
	if len(seen) != 7 {
		t.Errorf("pages held %d messages, want 7", len(seen))
	}
}

func TestSearch_BadInput(t *testing.T) {
	n := startNode(t, "", fastIndexing)
	alice, _ := n.user(t, "alice")
	token := alice.Tokens().AccessToken
	for _, c := range []struct {
		name, query string
		status      int
		code        string
	}{
		{"no q", "", 400, "invalid_argument"},
		{"blank q", "q=%20%20", 400, "invalid_argument"},
		{"q too long", "q=" + strings.Repeat("a", 300), 400, "invalid_argument"},
		{"q without words", "q=" + url.QueryEscape("?! 🙂"), 400, "invalid_argument"},
		{"q not UTF-8", "q=%ff%fe", 400, "invalid_argument"},
		{"limit too high", "q=x&limit=1000", 400, "invalid_argument"},
		{"limit not a number", "q=x&limit=ten", 400, "invalid_argument"},
		{"conv not an id", "q=x&conv=abc", 400, "invalid_argument"},
		{"unknown conv", "q=x&conv=12345", 404, "not_found"},
		{"forged cursor", "q=x&cursor=bm9wZQ", 400, "invalid_argument"},
	} {
		t.Run(c.name, func(t *testing.T) {
			status, body := rawRequest(t, "GET", n.URL+"/v1/search?"+c.query, token, "")
			var e struct {
				Error struct{ Code, Message string }
			}
			if err := json.Unmarshal([]byte(body), &e); err != nil || status != c.status || e.Error.Code != c.code || e.Error.Message == "" {
				t.Errorf("status %d, body %s; want %d with code %s", status, body, c.status, c.code)
			}
		})
	}
	t.Run("without a token", func(t *testing.T) {
		if status, _ := rawRequest(t, "GET", n.URL+"/v1/search?q=x", "", ""); status != 401 {
			t.Errorf("status %d, want 401", status)
		}
	})
}

func TestSearch_Cluster(t *testing.T) {
	eachNATS(t, func(t *testing.T, c *cluster) {
		// Both nodes run an indexer over the one PostgreSQL index.
		n1, n2 := c.start(t, fastIndexing), c.start(t, fastIndexing)
		alice, _ := n1.user(t, "alice")
		bob, bobID := n2.user(t, "bob")
		mallory, _ := n2.user(t, "mallory")
		group, err := alice.CreateGroup(ctxT(t), "g", []string{bobID})
		if err != nil {
			t.Fatalf("CreateGroup: %v", err)
		}
		var want []string
		for i := range 30 {
			text := "crème brûlée number " + string(rune('a'+i))
			if _, err := alice.Send(ctxT(t), group.ID, "c"+text, text); err != nil {
				t.Fatalf("Send: %v", err)
			}
			want = append(want, text)
		}
		got := waitSearch(t, bob, "creme brulee", len(want))
		seen := map[string]bool{}
		for _, text := range got {
			seen[text] = true
		}
		if len(seen) != len(want) {
			t.Errorf("found %d distinct messages, want %d", len(seen), len(want))
		}
		if got := searchTexts(t, mallory, client.SearchQuery{Query: "creme"}); len(got) != 0 {
			t.Errorf("mallory found %q", got)
		}
	})
}
