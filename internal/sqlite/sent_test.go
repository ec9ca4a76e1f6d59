package sqlite_test

import (
	"fmt"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/natter-chat/natter/internal/chat"
	"github.com/natter-chat/natter/internal/chattest"
)

// The store finds a user's sent messages through the conversations the user
// is or was a member of (there is no index on sender): these tests walk
// every way a membership can stand.
func TestStore_SentMessages(t *testing.T) {
	type world struct {
		s          chatStore
		alice, bob chat.UserID
		mine       []chat.MessageID // alice's live messages, by conversation then seq
		theirs     []chat.MessageID // bob's messages
	}
	// build gives alice messages in a group she is still in, one she left,
	// one she left and rejoined (sending before and after), and one she
	// never joined; bob writes in all of them, and alice deletes one of
	// her own.
	build := func(t *testing.T) world {
		s := openAt(t, filepath.Join(t.TempDir(), "natter.db"))
		ids := chattest.NewIDs()
		w := world{s: s}
		w.alice = chattest.MustCreateUser(t, s, ids, "alice").ID
		w.bob = chattest.MustCreateUser(t, s, ids, "bob").ID
		stays := chattest.MustCreateGroup(t, s, ids, w.alice, w.bob).ID
		left := chattest.MustCreateGroup(t, s, ids, w.bob, w.alice).ID
		back := chattest.MustCreateGroup(t, s, ids, w.bob, w.alice).ID
		never := chattest.MustCreateGroup(t, s, ids, w.bob).ID
		clock := time.Duration(0)
		send := func(conv chat.ConversationID, sender chat.UserID, text string) chat.MessageID {
			clock += time.Second
			m := chattest.MustAppend(t, s, ids, conv, sender, text, chattest.At(clock))
			if sender == w.alice {
				w.mine = append(w.mine, m.ID)
			} else {
				w.theirs = append(w.theirs, m.ID)
			}
			return m.ID
		}
		for i := range 3 {
			send(stays, w.alice, "stays")
			send(stays, w.bob, "bob")
			if i == 1 {
				gone := send(stays, w.alice, "deleted")
				w.mine = w.mine[:len(w.mine)-1]
				if _, err := s.DeleteMessage(t.Context(), stays, gone, chattest.At(time.Hour)); err != nil {
					t.Fatalf("DeleteMessage: %v", err)
				}
			}
		}
		send(left, w.alice, "before leaving")
		send(left, w.bob, "bob")
		send(back, w.alice, "before leaving")
		send(never, w.bob, "bob")
		for _, conv := range []chat.ConversationID{left, back} {
			if _, err := s.RemoveMember(t.Context(), conv, w.alice); err != nil {
				t.Fatalf("RemoveMember: %v", err)
			}
		}
		send(left, w.bob, "bob after")
		send(back, w.bob, "bob while alice is away")
		if _, err := s.AddMembers(t.Context(), back, []chat.Member{{User: w.alice, Role: chat.RoleMember, JoinedAt: chattest.At(clock)}}); err != nil {
			t.Fatalf("AddMembers: %v", err)
		}
		send(back, w.alice, "after rejoining")
		return w
	}

	for _, limit := range []int{1, 2, 3, 100} {
		t.Run(fmt.Sprintf("ListSentMessages pages through every conversation, %d a page", limit), func(t *testing.T) {
			w := build(t)
			var got []chat.MessageID
			var cur chat.SentCursor
			for range 20 {
				page, err := w.s.ListSentMessages(t.Context(), w.alice, cur, limit)
				if err != nil {
					t.Fatalf("ListSentMessages: %v", err)
				}
				if len(page) > limit {
					t.Fatalf("page of %d, limit %d", len(page), limit)
				}
				for _, m := range page {
					if m.Sender != w.alice || !m.DeletedAt.IsZero() {
						t.Errorf("listed %+v", m)
					}
					got = append(got, m.ID)
				}
				if len(page) < limit {
					break
				}
				last := page[len(page)-1]
				cur = chat.SentCursor{Conv: last.Conv, Seq: last.Seq}
			}
			if diff := cmp.Diff(w.mine, got); diff != "" {
				t.Errorf("alice's messages (-want +got):\n%s", diff)
			}
		})
	}

	t.Run("TombstoneSent reaches every conversation and only the sender's messages", func(t *testing.T) {
		w := build(t)
		tombstoned := map[chat.MessageID]bool{}
		for range 20 {
			page, err := w.s.TombstoneSent(t.Context(), w.alice, chattest.At(2*time.Hour), 2)
			if err != nil {
				t.Fatalf("TombstoneSent: %v", err)
			}
			if len(page) == 0 {
				break
			}
			for _, m := range page {
				if tombstoned[m.ID] {
					t.Errorf("message %v tombstoned twice", m.ID)
				}
				tombstoned[m.ID] = true
			}
		}
		if len(tombstoned) != len(w.mine) {
			t.Errorf("tombstoned %d messages, want alice's %d", len(tombstoned), len(w.mine))
		}
		for _, id := range w.mine {
			if !tombstoned[id] {
				t.Errorf("alice's message %v was not tombstoned", id)
			}
		}
		left, err := w.s.ListSentMessages(t.Context(), w.alice, chat.SentCursor{}, 100)
		if err != nil || len(left) != 0 {
			t.Errorf("ListSentMessages after TombstoneSent = %d messages, %v; want none", len(left), err)
		}
		bobs, err := w.s.ListSentMessages(t.Context(), w.bob, chat.SentCursor{}, 100)
		if err != nil || len(bobs) != len(w.theirs) {
			t.Errorf("bob's messages after alice's were tombstoned: %d, %v; want all %d", len(bobs), err, len(w.theirs))
		}
	})
}

// chatStore is what these tests use of the SQLite store.
type chatStore interface {
	chat.Store
	chat.PeopleStore
}
