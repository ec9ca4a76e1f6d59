package sqlite_test

import (
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/natter-chat/natter/internal/chat"
	"github.com/natter-chat/natter/internal/chattest"
	"github.com/natter-chat/natter/internal/core"
	"github.com/natter-chat/natter/internal/searchtext"
)

func TestSearchIndex(t *testing.T) {
	chattest.TestSearchIndex(t, func(t testing.TB) (chat.Store, chat.SearchIndex) {
		s := openAt(t, filepath.Join(t.TempDir(), "natter.db"))
		return s, s
	})
}

func TestSearchIndex_Rebuild(t *testing.T) {
	t.Run("indexing again from position 0 replaces every document once", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "natter.db")
		s := openAt(t, path)
		ids := chattest.NewIDs()
		alice := chattest.MustCreateUser(t, s, ids, "alice").ID
		bob := chattest.MustCreateUser(t, s, ids, "bob").ID
		g := chattest.MustCreateGroup(t, s, ids, alice, bob).ID
		var sent []chat.Message
		for i, text := range []string{"apple one", "apple two", "apple three", "apple four", "apple five"} {
			sent = append(sent, chattest.MustAppend(t, s, ids, g, alice, text, chattest.At(time.Duration(i)*time.Second)))
		}
		x := core.NewIndexer(s, core.SearchOptions{Batch: 2}, nil)
		if err := x.CatchUp(t.Context()); err != nil {
			t.Fatalf("CatchUp: %v", err)
		}
		if _, err := s.EditMessage(t.Context(), g, sent[1].ID, "banana two", nil, chattest.At(time.Minute)); err != nil {
			t.Fatalf("EditMessage: %v", err)
		}
		if _, err := s.DeleteMessage(t.Context(), g, sent[2].ID, chattest.At(time.Minute)); err != nil {
			t.Fatalf("DeleteMessage: %v", err)
		}
		if err := x.CatchUp(t.Context()); err != nil {
			t.Fatalf("CatchUp: %v", err)
		}
		db := openRaw(t, path)
		if _, err := db.ExecContext(t.Context(), `UPDATE search_cursor SET pos = 0`); err != nil {
			t.Fatalf("resetting the cursor: %v", err)
		}
		if err := x.CatchUp(t.Context()); err != nil {
			t.Fatalf("CatchUp after the reset: %v", err)
		}

		for _, c := range []struct {
			query string
			want  []string
		}{
			{"apple", []string{"apple five", "apple four", "apple one"}},
			{"banana", []string{"banana two"}},
			{"three", nil},
		} {
			hits, err := s.SearchMessages(t.Context(), chat.SearchQuery{User: bob, Terms: searchtext.QueryTerms(c.query), Limit: 10})
			if err != nil {
				t.Fatalf("SearchMessages(%q): %v", c.query, err)
			}
			var got []string
			for _, h := range hits {
				got = append(got, h.Message.Text)
			}
			slices.Sort(got)
			if !slices.Equal(got, c.want) {
				t.Errorf("search %q = %q, want %q", c.query, got, c.want)
			}
		}
		var docs int
		if err := db.QueryRowContext(t.Context(), `SELECT count(*) FROM message_search`).Scan(&docs); err != nil || docs != 4 {
			t.Errorf("documents in the index: %d, %v; want 4 (one per live message)", docs, err)
		}
		if _, err := db.ExecContext(t.Context(), `INSERT INTO message_search (message_search) VALUES ('integrity-check')`); err != nil {
			t.Errorf("FTS5 integrity check: %v", err)
		}
	})
}
