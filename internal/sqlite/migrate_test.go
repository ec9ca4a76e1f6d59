package sqlite

import (
	"database/sql"
	"path/filepath"
	"testing"
	"time"

	"github.com/natter-chat/natter/internal/chat"
)

func TestMigrate_Positions(t *testing.T) {
	t.Run("0002 gives existing rows increasing positions and starts the counter after them", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "natter.db")
		db, err := sql.Open("sqlite", "file:"+path+"?_pragma=foreign_keys(1)")
		if err != nil {
			t.Fatalf("sql.Open: %v", err)
		}
		migrations, err := loadMigrations()
		if err != nil {
			t.Fatalf("loadMigrations: %v", err)
		}
		now := func() time.Time { return time.UnixMilli(0) }
		if err := migrate(t.Context(), db, migrations[:1], now); err != nil {
			t.Fatalf("migrate to 0001: %v", err)
		}
		// Two conversations; message ids deliberately not in seq order.
		for _, stmt := range []string{
			`INSERT INTO users (id, username, password_hash, created_at) VALUES (1, 'alice', 'h', 0), (2, 'bob', 'h', 0)`,
			`INSERT INTO conversations (id, kind, title, created_by, created_at, last_seq, last_activity_at)
				VALUES (10, 'group', 'a', 1, 0, 3, 0), (20, 'group', 'b', 2, 0, 2, 0)`,
			`INSERT INTO members (conv_id, user_id, role, joined_at, read_seq)
				VALUES (10, 1, 'owner', 0, 0), (10, 2, 'member', 0, 2), (20, 2, 'owner', 0, 0)`,
			`INSERT INTO messages (id, conv_id, seq, sender_id, client_id, text, sent_at)
				VALUES (105, 10, 1, 1, 'a', 'one', 0), (101, 10, 2, 2, 'b', 'two', 0), (103, 10, 3, 1, 'c', 'three', 0),
				(102, 20, 1, 2, 'd', 'uno', 0), (104, 20, 2, 2, 'e', 'dos', 0)`,
		} {
			if _, err := db.ExecContext(t.Context(), stmt); err != nil {
				t.Fatalf("%s: %v", stmt, err)
			}
		}
		if err := db.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}

		s, err := Open(t.Context(), path, Options{})
		if err != nil {
			t.Fatalf("Open: %v", err)
		}
		t.Cleanup(func() { s.Close() })
		if pos, err := s.Position(t.Context()); err != nil || pos != 10 {
			t.Fatalf("Position = %d, %v; want 10 (2 conversations, 3 members, 5 messages)", pos, err)
		}
		changes, err := s.ListChanges(t.Context(), 2, 0, 100)
		if err != nil {
			t.Fatalf("ListChanges: %v", err)
		}
		if len(changes.Changes) != 10 {
			t.Fatalf("bob has %d changes, want all 10: %+v", len(changes.Changes), changes.Changes)
		}
		// Within a conversation: the conversation, then its members, then
		// its messages in seq order.
		last := map[chat.ConversationID]struct {
			kind chat.ChangeKind
			seq  int64
		}{}
		for i, c := range changes.Changes {
			if c.Pos != int64(i+1) {
				t.Errorf("change %d has Pos %d, want %d", i, c.Pos, i+1)
			}
			var conv chat.ConversationID
			var seq int64
			switch c.Kind {
			case chat.ChangeConversation:
				conv = c.Conversation.ID
			case chat.ChangeMember:
				conv = c.Member.Conv
			case chat.ChangeMessage:
				conv, seq = c.Message.Conv, c.Message.Seq
			}
			prev, seen := last[conv]
			if c.Kind == chat.ChangeConversation && seen || c.Kind != chat.ChangeConversation && !seen ||
				prev.kind == chat.ChangeMessage && (c.Kind != chat.ChangeMessage || seq <= prev.seq) {
				t.Errorf("change %d (%s of %v, seq %d) comes after a %s of seq %d", i, c.Kind, conv, seq, prev.kind, prev.seq)
			}
			last[conv] = struct {
				kind chat.ChangeKind
				seq  int64
			}{c.Kind, seq}
		}
		m, err := s.UpdateReadSeq(t.Context(), 10, 1, 1)
		if err != nil || m.Pos != 11 {
			t.Errorf("first write after the migration: Pos %d, %v; want 11", m.Pos, err)
		}
	})
}
